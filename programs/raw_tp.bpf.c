/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Programs that take no packet, for `rawbpf run` on a context alone.
 *
 * record_sys_enter (raw tracepoint sys_enter, whose arguments are the
 * registers and the syscall number) stores the pid (tgid) of the process
 * that runs it and its first argument in `seen` (.bss), counts its runs,
 * and returns 0x5eed. Under BPF_PROG_TEST_RUN the process that runs it is
 * the one that asked for the run, and the arguments are the context given.
 *
 * writable_noop is a writable raw tracepoint, a type the kernel loads but
 * cannot test-run.
 */
#include "rawbpf.h"

struct {
	__u64 pid;
	__u64 arg0;
	__u64 runs;
} seen;

SEC("raw_tp/sys_enter")
int record_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	seen.pid = bpf_get_current_pid_tgid() >> 32;
	seen.arg0 = ctx->args[0];
	__sync_fetch_and_add(&seen.runs, 1);
	return 0x5eed;
}

SEC("raw_tp.w/bpf_test_finish")
int writable_noop(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
