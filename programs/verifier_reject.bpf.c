/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A program the verifier must reject: it reads the Ethernet header without
 * checking it against data_end ("invalid access to packet"). The loader must
 * name the program and show the verifier's log.
 */
#include "rawbpf.h"

SEC("tc")
int reads_unchecked(struct __sk_buff *skb)
{
	struct ethhdr *eth = (void *)(long)skb->data;

	return eth->h_proto == bpf_htons(ETH_P_IP) ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
