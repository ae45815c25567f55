/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A CO-RE relocation (preserve_access_index): rawbpf does not apply CO-RE
 * relocations yet, so loading this object must fail with a message that
 * says so, rather than run code with unrelocated field offsets.
 */
#include "rawbpf.h"

struct __sk_buff___local {
	__u32 len;
} __attribute__((preserve_access_index));

SEC("tc")
int core_len(struct __sk_buff *skb)
{
	return ((struct __sk_buff___local *)skb)->len;
}

char LICENSE[] SEC("license") = "GPL";
