/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A program with a global function another object's freplace program can
 * replace (freplace.bpf.c). Global functions are verified on their own,
 * from their BTF prototype, which is what makes them replaceable.
 *
 * On the built-in frame: entry returns 1 (pick sees a non-empty packet).
 */
#include "rawbpf.h"

__noinline int pick(struct __sk_buff *skb)
{
	return skb->len > 0;
}

SEC("tc")
int entry(struct __sk_buff *skb)
{
	return pick(skb);
}

char LICENSE[] SEC("license") = "GPL";
