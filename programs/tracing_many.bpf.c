/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Twelve tracing programs that attach by their section alone, for the
 * bench's multi-program attach (bench/src/links.rs: `rawbpf attach` of the
 * whole object against a libbpf loader doing the same). Eight tracepoints
 * (the enter and exit of getppid, getpid, openat and close), two raw
 * tracepoints (sys_enter, sys_exit) and two scheduler tracepoints; each
 * counts its runs in its own slot of `counts`, one map they all share.
 */
#include "rawbpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 12);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline int count(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &slot);
	if (c)
		__sync_fetch_and_add(c, 1);
	return 0;
}

#include "tracing_twelve.h"

char LICENSE[] SEC("license") = "GPL";
