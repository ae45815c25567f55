/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A second stage 2 for the pipeline, to swap in with `rawbpf swap`: instead
 * of dropping packets that mark_packet marked (TOS bit 0x01), it passes them
 * with TOS bit 0x02 set too (fixing the IPv4 checksum). Behind mark_packet,
 * packets then arrive with TOS 0x03: proof that they went through this stage.
 *
 * On the built-in frame with TOS 0x01: TC_ACT_OK (0), TOS 0x03 out.
 */
#include "rawbpf.h"

#define TOS_MARK 0x01
#define TOS_TAG 0x02
#define IP_TOS_OFF (ETH_HLEN + offsetof(struct iphdr, tos))
#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))

SEC("tc")
int tag_and_pass(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl < 5)
		return TC_ACT_OK;
	if ((ip->tos & TOS_MARK) && !(ip->tos & TOS_TAG)) {
		/* TOS is the high byte of the first header word as loaded on bpfel. */
		__u16 old_word = *(__u16 *)ip;
		__u16 new_word = old_word | (TOS_TAG << 8);
		__u8 tos = ip->tos | TOS_TAG;

		if (bpf_skb_store_bytes(skb, IP_TOS_OFF, &tos, sizeof(tos), 0) < 0)
			return TC_ACT_SHOT;
		if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_word, new_word, sizeof(new_word)) < 0)
			return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
