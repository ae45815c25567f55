/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Trampoline programs: fentry, fexit and fmod_ret attach to a kernel
 * function, found by name in the kernel's BTF (attach_btf_id). The verifier
 * types the context from the function's prototype: arguments first, then
 * (fexit, fmod_ret) the return value.
 *
 * do_unlinkat(int dfd, struct filename *name) returns int (long before
 * 5.12); security_file_open(struct file *file) returns int, and fmod_ret
 * may attach to security_* functions even without error injection.
 */
#include "rawbpf.h"

__u64 unlinks;
__s64 last_dfd;
__s64 last_result;

SEC("fentry/do_unlinkat")
int on_unlinkat(__u64 *ctx)
{
	unlinks += 1;
	last_dfd = (int)ctx[0];
	return 0;
}

SEC("fexit/do_unlinkat")
int on_unlinkat_exit(__u64 *ctx)
{
	last_result = (int)ctx[2];
	return 0;
}

SEC("fmod_ret/security_file_open")
int keep_file_open_result(__u64 *ctx)
{
	/* 0: the kernel's own security_file_open() runs and decides. */
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
