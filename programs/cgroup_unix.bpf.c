/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The cgroup hooks of Unix sockets (kernel 6.7 and later): a counter each,
 * as in cgroup_kinds.bpf.c. Apart, so that cgroup_kinds loads on older
 * kernels.
 */
#include "rawbpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline int bump(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&counts, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
	return 1;
}

SEC("cgroup/connect_unix") int on_connect_unix(void *ctx) { return bump(0); }
SEC("cgroup/getpeername_unix") int on_getpeername_unix(void *ctx) { return bump(1); }

char LICENSE[] SEC("license") = "GPL";
