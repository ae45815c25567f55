/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A flow dissector that the kernel runs on real traffic. `count_dissect`
 * (flow_dissector, attached to a network namespace) counts its runs in
 * slot 0 of `counts`; `rehash` (tc, on a device of that namespace) forgets
 * each packet's hash and asks for it again, which makes the kernel dissect
 * the packet (skb_get_hash -> __skb_flow_dissect, the namespace's BPF
 * flow dissector when it has one), and counts the packets it saw in slot 1.
 * One packet through `rehash` is one run of `count_dissect` while it is
 * attached, and none once it is gone (loader/tests/kernel_link_net.rs).
 */
#include "rawbpf.h"

/* Helper ids of include/uapi/linux/bpf.h. */
static __u32 (* const bpf_get_hash_recalc)(struct __sk_buff *skb) = (void *)34;
static long (* const bpf_set_hash_invalid)(struct __sk_buff *skb) = (void *)41;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void bump(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&counts, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/* Dissects nothing: BPF_OK with empty flow keys (every flow hashes alike). */
SEC("flow_dissector")
int count_dissect(struct __sk_buff *skb)
{
	bump(0);
	return BPF_OK;
}

/* Lets every packet go on, its hash recomputed by a flow dissection. */
SEC("tc")
int rehash(struct __sk_buff *skb)
{
	bpf_set_hash_invalid(skb);
	bpf_get_hash_recalc(skb);
	bump(1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
