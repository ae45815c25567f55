/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Trampoline programs: fentry, fexit and fmod_ret attach to a kernel
 * function, found by name in the kernel's BTF (attach_btf_id). The verifier
 * types the context from the function's prototype: arguments first, then
 * (fexit, fmod_ret) the return value.
 *
 * bpf_fentry_test1(int a) returns a + 1: the kernel keeps it for this (from
 * 5.5 on), and BPF_PROG_TEST_RUN of an fentry or fexit program calls it
 * with a = 1, so once attached both programs run and record what they saw.
 * security_file_open(struct file *file) returns int; fmod_ret may attach to
 * security_* functions even without error injection.
 */
#include "rawbpf.h"

struct {
	__u64 calls;
	__s64 arg;
	__s64 result;
} seen;

SEC("fentry/bpf_fentry_test1")
int on_test1(__u64 *ctx)
{
	seen.calls += 1;
	seen.arg = (int)ctx[0];
	return 0;
}

SEC("fexit/bpf_fentry_test1")
int on_test1_exit(__u64 *ctx)
{
	seen.result = (int)ctx[1];
	return 0;
}

SEC("fmod_ret/security_file_open")
int keep_file_open_result(__u64 *ctx)
{
	/* 0: the kernel's own security_file_open() runs and decides. */
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
