/* SPDX-License-Identifier: GPL-2.0 */
/*
 * BPF_CORE_READ on the kernel's live task_struct: a raw tracepoint program
 * reads the current task's pid and tgid, its group leader's pid (one more
 * pointer) and its parent's tgid (two more), at the offsets the running
 * kernel has. A test run of a raw tracepoint program runs in the task that
 * asked for it, so these are the loader process's own ids; the helper's
 * bpf_get_current_pid_tgid() says the same thing another way.
 */
#include "rawbpf.h"

/* Our own partial task_struct: members out of the kernel's order. */
struct task_struct {
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	int tgid;
	int pid;
} __attribute__((preserve_access_index));

struct core_pid {
	__u64 pid;
	__u64 tgid;
	__u64 leader_pid;
	__u64 parent_tgid;
	__u64 leader_parent_tgid;
	__u64 helper_pid;
	__u64 helper_tgid;
	__u64 runs;
};

struct core_pid core_pid;

SEC("raw_tp/sys_enter")
int read_current_pid(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();

	core_pid.pid = BPF_CORE_READ(task, pid);
	core_pid.tgid = BPF_CORE_READ(task, tgid);
	core_pid.leader_pid = BPF_CORE_READ(task, group_leader, pid);
	core_pid.parent_tgid = BPF_CORE_READ(task, real_parent, tgid);
	core_pid.leader_parent_tgid = BPF_CORE_READ(task, group_leader, real_parent, tgid);
	core_pid.helper_pid = (__u32)id;
	core_pid.helper_tgid = id >> 32;
	core_pid.runs++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
