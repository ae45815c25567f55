/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One program per tracing kind rawbpf attaches by section, for the link
 * tests. Each counts, in its own slot of `counts`, the times it ran in the
 * thread whose id the test writes in `target_tid` after load (other
 * threads, other tests and other processes are not counted), so a test
 * triggers its event, reads its slot, detaches and sees the slot stay.
 *
 * on_libc_getppid probes libc's getppid(), the test's trigger for the
 * syscall kinds too; the others with a uprobe probe what the test names.
 * dump_tasks (a task iterator) writes a header line and the pid of every
 * task, read through CO-RE (task_struct is the kernel's).
 * on_missing names a tracepoint no kernel has, for the error test.
 */
#include "rawbpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} target_tid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

enum { TP, RAW_TP, TP_BTF, UPROBE, URETPROBE, PERF_EVENT, LIBC_UPROBE, UPROBE_MULTI };

static __always_inline void count(__u32 slot)
{
	__u32 zero = 0;
	__u32 *tid = bpf_map_lookup_elem(&target_tid, &zero);
	if (!tid || *tid != (__u32)bpf_get_current_pid_tgid())
		return;
	__u64 *c = bpf_map_lookup_elem(&counts, &slot);
	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("tp/syscalls/sys_enter_getppid")
int on_tp(void *ctx)
{
	count(TP);
	return 0;
}

SEC("raw_tp/sys_enter")
int on_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	count(RAW_TP);
	return 0;
}

SEC("tp_btf/sys_enter")
int on_tp_btf(__u64 *ctx)
{
	count(TP_BTF);
	return 0;
}

SEC("uprobe")
int on_uprobe(struct pt_regs *ctx)
{
	count(UPROBE);
	return 0;
}

SEC("uretprobe")
int on_uretprobe(struct pt_regs *ctx)
{
	count(URETPROBE);
	return 0;
}

/* A shared library named without a directory, and a function in it. */
SEC("uprobe/libc.so.6:getppid")
int on_libc_getppid(struct pt_regs *ctx)
{
	count(LIBC_UPROBE);
	return 0;
}

SEC("uprobe.multi")
int on_uprobe_multi(struct pt_regs *ctx)
{
	count(UPROBE_MULTI);
	return 0;
}

SEC("perf_event")
int on_sample(void *ctx)
{
	count(PERF_EVENT);
	return 0;
}

struct task_struct {
	int pid;
} __attribute__((preserve_access_index));

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
};

SEC("iter/task")
int dump_tasks(struct bpf_iter__task *ctx)
{
	static const char header[] = "rawbpf tasks\n";
	static const char fmt[] = "%d\n";
	void *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	__u64 pid;

	if (!task)
		return 0;
	if (ctx->meta->seq_num == 0)
		bpf_seq_write(seq, header, sizeof(header) - 1);
	pid = task->pid;
	bpf_seq_printf(seq, fmt, sizeof(fmt), &pid, sizeof(pid));
	return 0;
}

SEC("tp/rawbpf_none/missing")
int on_missing(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
