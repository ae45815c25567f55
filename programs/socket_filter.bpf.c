/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A socket filter: keeps whole packets (returns skb->len), so 64 on the
 * built-in frame.
 */
#include "rawbpf.h"

SEC("socket")
int socket_len(struct __sk_buff *skb)
{
	return skb->len;
}

char LICENSE[] SEC("license") = "GPL";
