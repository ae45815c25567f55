/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Relocations no kernel can satisfy, each behind a guard that the loader
 * resolves to 0: the loader poisons the unsatisfiable instructions and the
 * verifier, seeing the guard is constant, never reaches them, so the
 * program loads. core_guards (.bss) keeps ABSENT where the guarded values
 * would have gone. (The same field without its guard: core_unguarded.bpf.c.)
 */
#include "rawbpf.h"

#define ABSENT ((__u64)-1)

struct task_struct___missing {
	int rawbpf_no_such_field;
} __attribute__((preserve_access_index));

struct rawbpf_no_such_type {
	int x;
};

enum bpf_prog_type___missing {
	BPF_PROG_TYPE_RAWBPF_NONE = 1,
};

struct core_guards {
	__u64 field_exists;
	__u64 field_offset;
	__u64 type_exists;
	__u64 type_size;
	__u64 enum_exists;
	__u64 enum_value;
	__u64 runs;
};

struct core_guards core_guards;

SEC("tc")
int guarded_missing(struct __sk_buff *skb)
{
	struct core_guards *out = &core_guards;

	out->field_exists = bpf_core_field_exists(struct task_struct___missing, rawbpf_no_such_field);
	out->field_offset = ABSENT;
	if (bpf_core_field_exists(struct task_struct___missing, rawbpf_no_such_field))
		out->field_offset =
			bpf_core_field_offset(struct task_struct___missing, rawbpf_no_such_field);

	out->type_exists = bpf_core_type_exists(struct rawbpf_no_such_type);
	out->type_size = ABSENT;
	if (bpf_core_type_exists(struct rawbpf_no_such_type))
		out->type_size = bpf_core_type_size(struct rawbpf_no_such_type);

	out->enum_exists =
		bpf_core_enum_value_exists(enum bpf_prog_type___missing, BPF_PROG_TYPE_RAWBPF_NONE);
	out->enum_value = ABSENT;
	if (bpf_core_enum_value_exists(enum bpf_prog_type___missing, BPF_PROG_TYPE_RAWBPF_NONE))
		out->enum_value =
			bpf_core_enum_value(enum bpf_prog_type___missing, BPF_PROG_TYPE_RAWBPF_NONE);

	out->runs++;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
