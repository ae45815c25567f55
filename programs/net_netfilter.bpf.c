/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A netfilter program (kernel 6.4 and later) counting the packets of its
 * hook in slot 0 of `counts`, and letting them go on.
 */
#include "rawbpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("netfilter")
int count_netfilter(void *ctx)
{
	__u32 slot = 0;
	__u64 *n = bpf_map_lookup_elem(&counts, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
	return NF_ACCEPT;
}

char LICENSE[] SEC("license") = "GPL";
