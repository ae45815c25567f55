/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helper calls behind CO-RE guards on enum bpf_func_id, as libbpf-tools
 * writes them (ksnoop: bpf_get_func_ip only where BPF_FUNC_get_func_ip
 * exists): the loader resolves each guard to the kernel's answer, and the
 * verifier, seeing a constant, never looks at the call it rules out. So
 * this loads on every kernel, and `check` must not count the calls a guard
 * rules out there:
 *  - bpf_ktime_get_coarse_ns (#160, 5.11) where the kernel has it, else
 *    the fallback bpf_ktime_get_ns;
 *  - helper #100000, which no kernel has, never (the fallback: ABSENT).
 * helper_guards (.bss) says which way each guard went. (The same helper
 * without its guard: core_helper_unguarded.bpf.c.)
 */
#include "rawbpf.h"

#define ABSENT ((__u64)-1)

/* The kernel's enum bpf_func_id, by name; the values are only ours. */
enum bpf_func_id___rawbpf {
	BPF_FUNC_ktime_get_coarse_ns = 160,
	BPF_FUNC_rawbpf_none = 100000,
};

static __u64 (* const bpf_ktime_get_coarse_ns)(void) = (void *)160;
static __u64 (* const bpf_rawbpf_none)(void) = (void *)100000;

struct helper_guards {
	__u64 coarse_exists; /* the guard's value: 1 from 5.11 */
	__u64 coarse_used;   /* 1 if bpf_ktime_get_coarse_ns ran, 0 for the fallback */
	__u64 time;          /* what the helper that ran said (nonzero) */
	__u64 none_exists;   /* 0 on every kernel */
	__u64 none;          /* ABSENT: helper #100000 never ran */
	__u64 runs;
};

struct helper_guards helper_guards;

SEC("tc")
int guarded_helpers(struct __sk_buff *skb)
{
	struct helper_guards *out = &helper_guards;

	out->coarse_exists =
		bpf_core_enum_value_exists(enum bpf_func_id___rawbpf, BPF_FUNC_ktime_get_coarse_ns);
	if (bpf_core_enum_value_exists(enum bpf_func_id___rawbpf, BPF_FUNC_ktime_get_coarse_ns)) {
		out->coarse_used = 1;
		out->time = bpf_ktime_get_coarse_ns();
	} else {
		out->coarse_used = 0;
		out->time = bpf_ktime_get_ns();
	}

	out->none_exists = bpf_core_enum_value_exists(enum bpf_func_id___rawbpf, BPF_FUNC_rawbpf_none);
	out->none = ABSENT;
	if (bpf_core_enum_value_exists(enum bpf_func_id___rawbpf, BPF_FUNC_rawbpf_none))
		out->none = bpf_rawbpf_none();

	out->runs++;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
