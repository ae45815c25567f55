/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A socket filter: keeps whole packets (returns skb->len). A socket
 * filter sees the packet from its network header on, so on the built-in
 * 64-byte Ethernet frame it returns 50.
 */
#include "rawbpf.h"

SEC("socket")
int socket_len(struct __sk_buff *skb)
{
	return skb->len;
}

char LICENSE[] SEC("license") = "GPL";
