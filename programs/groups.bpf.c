/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A group for `rawbpf attach OBJ --name GROUP` (tests/cli_groups.rs): one
 * load, several hooks, one shared `.bss`. The test writes its thread id in
 * `state.tid` through the group's pinned `.bss` map; on_tp (the
 * sys_enter_getppid tracepoint) and on_raw_tp (raw tracepoint sys_enter,
 * getppid's number only) count that thread's getppid() calls, each in its
 * own counter and both in `both`, so one getppid() adds 2 to `both` when the
 * two programs share the map. on_connect4 counts every IPv4 connect() in
 * the cgroup given with --cgroup and lets it through.
 * on_missing names a tracepoint no kernel has: attaching the whole object
 * fails there, for the all-or-nothing test.
 */
#include "rawbpf.h"

#define NR_GETPPID 110 /* x86-64 */

struct {
	__u32 tid;
	__u32 pad;
	__u64 tp;
	__u64 raw;
	__u64 both;
	__u64 connect4;
} state;

static __always_inline int mine(void)
{
	return state.tid && state.tid == (__u32)bpf_get_current_pid_tgid();
}

SEC("tp/syscalls/sys_enter_getppid")
int on_tp(void *ctx)
{
	if (mine()) {
		__sync_fetch_and_add(&state.tp, 1);
		__sync_fetch_and_add(&state.both, 1);
	}
	return 0;
}

SEC("raw_tp/sys_enter")
int on_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	if (ctx->args[1] == NR_GETPPID && mine()) {
		__sync_fetch_and_add(&state.raw, 1);
		__sync_fetch_and_add(&state.both, 1);
	}
	return 0;
}

SEC("cgroup/connect4")
int on_connect4(void *ctx)
{
	__sync_fetch_and_add(&state.connect4, 1);
	return 1;
}

SEC("tp/rawbpf_none/missing")
int on_missing(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
