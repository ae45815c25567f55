/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Typed __ksym externs: per-CPU kernel variables found in vmlinux BTF. The
 * loader turns each ld_imm64 of one into BPF_PSEUDO_BTF_ID with the
 * kernel's BTF id of the VAR; bpf_this_cpu_ptr and bpf_per_cpu_ptr take
 * them. A weak one the kernel lacks reads as NULL.
 *
 * The kernel looks the variable up in kallsyms too, so this loads only on
 * kernels with CONFIG_KALLSYMS_ALL (Debian's); elsewhere the verifier says
 * "ldimm64 failed to find the address for kernel symbol 'bpf_prog_active'"
 * — which also shows that the BTF id named the right VAR.
 *
 * struct rq is ours and minimal: the loader checks that it is a struct, as
 * libbpf does, and the program reads no field of it.
 *
 * use_ksyms stores what it saw in .bss (struct ksyms_seen) and returns 0.
 */
#include "rawbpf.h"

struct rq {
	int __opaque;
};

extern const int bpf_prog_active __ksym;
extern const struct rq runqueues __ksym;
extern const int rawbpf_no_such_variable __ksym __weak;

struct ksyms_seen {
	__u64 prog_active;
	__u64 runqueue_found;
	__u64 missing_variable_address;
};

struct ksyms_seen seen;

SEC("tc")
int use_ksyms(struct __sk_buff *skb)
{
	const int *active = bpf_this_cpu_ptr(&bpf_prog_active);

	seen.prog_active = *active;
	seen.runqueue_found = bpf_per_cpu_ptr(&runqueues, 0) != NULL;
	seen.missing_variable_address = (__u64)&rawbpf_no_such_variable;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
