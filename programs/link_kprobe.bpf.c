/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kprobe kinds for the link tests (kernels with CONFIG_KPROBES): each
 * counts, in its slot of `counts`, its runs in the thread whose id the
 * test writes in `target_tid`. getppid() triggers all three.
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
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

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

SEC("ksyscall/getppid")
int on_getppid(struct pt_regs *ctx)
{
	count(0);
	return 0;
}

SEC("kretsyscall/getppid")
int on_getppid_ret(struct pt_regs *ctx)
{
	count(1);
	return 0;
}

SEC("kprobe.multi/*sys_getppid")
int on_getppid_multi(struct pt_regs *ctx)
{
	count(2);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
