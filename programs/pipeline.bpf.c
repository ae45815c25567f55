/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The shipped two-stage TC pipeline.
 *
 *   slot 0  mark_packet       IPv4 only: set TOS bit 0x01 (fixing the header
 *                             checksum), then tail-call slot 1.
 *   slot 1  inspect_and_drop  drop IPv4 packets that carry TOS bit 0x01.
 *
 * Offset 0 of a TC packet is the Ethernet header. A bpf_tail_call() whose
 * slot is empty returns, so mark_packet passes the packet after it: with
 * slot 1 empty the chain marks and passes.
 *
 * On the built-in test frame (Ethernet/IPv4/UDP, TOS 0): mark_packet
 * returns TC_ACT_SHOT (2) with the chain wired, TC_ACT_OK (0) with slot 1
 * empty; inspect_and_drop alone returns TC_ACT_OK (0); a non-IPv4 frame
 * returns TC_ACT_OK (0) from both.
 */
#include "rawbpf.h"

#define TOS_MARK 0x01
#define IP_TOS_OFF (ETH_HLEN + offsetof(struct iphdr, tos))
#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))

int mark_packet(struct __sk_buff *skb);
int inspect_and_drop(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, int (void *));
} prog_array SEC(".maps") = {
	.values = {
		[0] = (void *)&mark_packet,
		[1] = (void *)&inspect_and_drop,
	},
};

/* The IPv4 header of an Ethernet/IPv4 packet, or NULL. */
static __always_inline struct iphdr *ipv4_header(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end)
		return NULL;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl < 5)
		return NULL;
	return ip;
}

SEC("tc")
int mark_packet(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4_header(skb);

	if (!ip)
		return TC_ACT_OK;
	if (!(ip->tos & TOS_MARK)) {
		/*
		 * The header checksum sums 16-bit words, and TOS shares its word
		 * with version/ihl: replace that word. Loaded as stored (network
		 * order) on little-endian BPF, TOS is the word's high byte.
		 */
		__u16 old_word = *(__u16 *)ip;
		__u16 new_word = old_word | (TOS_MARK << 8);
		__u8 tos = ip->tos | TOS_MARK;

		/* Never let a packet leave with a broken checksum. */
		if (bpf_skb_store_bytes(skb, IP_TOS_OFF, &tos, sizeof(tos), 0) < 0)
			return TC_ACT_SHOT;
		if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_word, new_word, sizeof(new_word)) < 0)
			return TC_ACT_SHOT;
	}
	bpf_tail_call(skb, &prog_array, 1);
	/* Slot 1 is empty: pass the marked packet on. */
	return TC_ACT_OK;
}

SEC("tc")
int inspect_and_drop(struct __sk_buff *skb)
{
	/* A tail call starts afresh: packet pointers are loaded and checked again. */
	struct iphdr *ip = ipv4_header(skb);

	if (!ip)
		return TC_ACT_OK;
	return (ip->tos & TOS_MARK) ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
