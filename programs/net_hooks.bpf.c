/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Network hooks that are not a device's, each counting in its slot of
 * `counts` and letting the packet or message go on: sk_lookup (slot 0),
 * flow_dissector (1), sk_msg (3), socket filter (4), and sk_skb stream
 * verdict (5) on the sockmap `socks`. Netfilter (6.4+) is apart, in
 * net_netfilter.bpf.c, so that this object loads on older kernels.
 */
#include "rawbpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} socks SEC(".maps");

static __always_inline void bump(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&counts, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("sk_lookup")
int count_lookup(void *ctx)
{
	bump(0);
	return SK_PASS;
}

/* Dissects nothing: BPF_OK with empty flow keys. */
SEC("flow_dissector")
int count_dissect(struct __sk_buff *skb)
{
	bump(1);
	return BPF_OK;
}

SEC("sk_msg")
int count_msg(void *msg)
{
	bump(3);
	return SK_PASS;
}

/* Keeps the whole packet. */
SEC("socket")
int count_socket(struct __sk_buff *skb)
{
	bump(4);
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int count_verdict(struct __sk_buff *skb)
{
	bump(5);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
