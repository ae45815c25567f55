/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Programs with a BTF attach target that need no trampoline: the loader
 * finds each target's BTF id in the kernel's BTF (attach_btf_id) — the
 * btf_trace_<tracepoint> typedef for tp_btf, the bpf_iter_<name> function
 * for iter. The verifier types each program's context from that target:
 * the sched_switch tracepoint's arguments are (bool preempt, struct
 * task_struct *prev, struct task_struct *next[, unsigned int prev_state
 * from 5.18]), so reading prev and next loads only against it.
 */
#include "rawbpf.h"

__u64 switches;

SEC("tp_btf/sched_switch")
int on_sched_switch(__u64 *ctx)
{
	if (ctx[1] != ctx[2])
		switches += 1;
	return 0;
}

SEC("iter/task")
int each_task(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
