/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Three-stage chains whose stages share their prog array and a counter map,
 * for `rawbpf swap` (tests/kernel_swap.rs). A swapped-in stage must run with
 * the chain's own maps: tail-calling on through the chain's prog array and
 * counting in the chain's counters.
 *
 * TC: tc_entry (slot 0 of jmp, counts[0]) tail-calls slot 1, tc_mid
 * (counts[1]) or the swap-in tc_mid_b (counts[3]), which tail-call slot 2,
 * tc_drop_udp (counts[2]): it drops IPv4 UDP. Every stage falls back to
 * TC_ACT_OK when its slot is empty (a tail call to an empty slot returns).
 * Stages count IPv4 UDP datagrams only (not the ARP or IPv6 traffic a
 * fresh veth also carries).
 *
 * XDP: xdp_entry (counts[4]) tail-calls slot 1 of xjmp: xdp_drop_udp
 * (counts[5]) drops IPv4 UDP; the swap-in xdp_count_pass (counts[6])
 * passes it.
 */
#include "rawbpf.h"

int tc_entry(struct __sk_buff *skb);
int tc_mid(struct __sk_buff *skb);
int tc_drop_udp(struct __sk_buff *skb);
int xdp_drop_udp(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__array(values, int (void *));
} jmp SEC(".maps") = {
	.values = {
		[0] = (void *)&tc_entry,
		[1] = (void *)&tc_mid,
		[2] = (void *)&tc_drop_udp,
	},
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, int (void *));
} xjmp SEC(".maps") = {
	.values = {
		[1] = (void *)&xdp_drop_udp,
	},
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&counts, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/* Whether the frame from data to data_end is Ethernet/IPv4/UDP. */
static __always_inline int is_udp(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end)
		return 0;
	return eth->h_proto == bpf_htons(ETH_P_IP) && ip->protocol == IPPROTO_UDP;
}

SEC("tc")
int tc_entry(struct __sk_buff *skb)
{
	if (is_udp((void *)(long)skb->data, (void *)(long)skb->data_end))
		count(0);
	bpf_tail_call(skb, &jmp, 1);
	return TC_ACT_OK;
}

SEC("tc")
int tc_mid(struct __sk_buff *skb)
{
	if (is_udp((void *)(long)skb->data, (void *)(long)skb->data_end))
		count(1);
	bpf_tail_call(skb, &jmp, 2);
	return TC_ACT_OK;
}

SEC("tc")
int tc_mid_b(struct __sk_buff *skb)
{
	if (is_udp((void *)(long)skb->data, (void *)(long)skb->data_end))
		count(3);
	bpf_tail_call(skb, &jmp, 2);
	return TC_ACT_OK;
}

SEC("tc")
int tc_drop_udp(struct __sk_buff *skb)
{
	if (!is_udp((void *)(long)skb->data, (void *)(long)skb->data_end))
		return TC_ACT_OK;
	count(2);
	return TC_ACT_SHOT;
}

SEC("xdp")
int xdp_entry(struct xdp_md *ctx)
{
	if (is_udp((void *)(long)ctx->data, (void *)(long)ctx->data_end))
		count(4);
	bpf_tail_call(ctx, &xjmp, 1);
	return XDP_PASS;
}

SEC("xdp")
int xdp_drop_udp(struct xdp_md *ctx)
{
	if (!is_udp((void *)(long)ctx->data, (void *)(long)ctx->data_end))
		return XDP_PASS;
	count(5);
	return XDP_DROP;
}

SEC("xdp")
int xdp_count_pass(struct xdp_md *ctx)
{
	if (is_udp((void *)(long)ctx->data, (void *)(long)ctx->data_end))
		count(6);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
