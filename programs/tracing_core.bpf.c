/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tracing_many.bpf.c's twelve programs as libbpf-tools writes them: each
 * reads the current task through CO-RE (its tgid, and its parent's, as
 * execsnoop and opensnoop do) before it counts. Loading it needs the
 * kernel's BTF, as loading almost every public tracing object does; the
 * bench's multi-program attach times both (bench/src/links.rs).
 */
#include "rawbpf.h"

/* Our own partial task_struct: CO-RE finds the members where the kernel
 * has them. */
struct task_struct {
	struct task_struct *real_parent;
	int tgid;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 12);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

/* The last tgid and parent tgid each slot saw. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 12);
	__type(key, __u32);
	__type(value, __u64);
} last_task SEC(".maps");

static __always_inline int count(__u32 slot)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	__u64 ids = ((__u64)BPF_CORE_READ(task, real_parent, tgid) << 32) |
		    (__u32)BPF_CORE_READ(task, tgid);
	__u64 *c = bpf_map_lookup_elem(&counts, &slot);
	__u64 *t = bpf_map_lookup_elem(&last_task, &slot);

	if (t)
		*t = ids;
	if (c)
		__sync_fetch_and_add(c, 1);
	return 0;
}

#include "tracing_twelve.h"

char LICENSE[] SEC("license") = "GPL";
