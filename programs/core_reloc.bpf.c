/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One CO-RE relocation (preserve_access_index): a local __sk_buff with only
 * `len` at offset 0, relocated to the kernel's offset of __sk_buff::len, so
 * the program returns the packet's length only if rawbpf applies it.
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
