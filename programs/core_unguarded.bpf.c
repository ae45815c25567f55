/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A relocation no kernel can satisfy, reached on every run: the loader
 * poisons the instruction, the verifier rejects the program, and the error
 * must say which relocation it was (task_struct, rawbpf_no_such_field), not
 * only the verifier's "invalid func". (Guarded, it loads: core_guarded.bpf.c.)
 */
#include "rawbpf.h"

struct task_struct___missing {
	int rawbpf_no_such_field;
} __attribute__((preserve_access_index));

SEC("tc")
int unguarded_missing(struct __sk_buff *skb)
{
	return bpf_core_field_offset(struct task_struct___missing, rawbpf_no_such_field);
}

char LICENSE[] SEC("license") = "GPL";
