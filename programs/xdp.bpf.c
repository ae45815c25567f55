/* SPDX-License-Identifier: GPL-2.0 */
/*
 * An XDP program: drops IPv4/UDP datagrams to the port in .rodata
 * (drop_port, 4242), passes everything else.
 *
 * On the built-in frame (UDP to port 4242): XDP_DROP (1); other frames:
 * XDP_PASS (2).
 */
#include "rawbpf.h"

const volatile __u16 drop_port = 4242;

SEC("xdp")
int xdp_drop_port(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	return udp->dest == bpf_htons(drop_port) ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
