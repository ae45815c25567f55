/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpf-to-bpf calls mixed with tail calls: a global .text function, static
 * .text functions (one calling another, one shared by several programs) and
 * a tail call made from inside a subprogram (x86-64 JIT, kernel >= 5.10).
 *
 * On the built-in 64-byte test frame:
 *   entry          -> tail call into slot 1 (stage_b) from a subprogram: 11
 *   entry_missing  -> slot 3 is empty, the subprogram returns 7: 107
 *   stage_a        -> add(40, 2): 42
 *   stage_b        -> add(classify(skb), 10) with skb->len 64 > 60: 11
 */
#include "rawbpf.h"

int stage_a(struct __sk_buff *skb);
int stage_b(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int (void *));
} jmp_table SEC(".maps") = {
	.values = {
		[0] = (void *)&stage_a,
		[1] = (void *)&stage_b,
	},
};

/* Global: the kernel verifies it on its own, against its BTF prototype. */
__noinline int classify(struct __sk_buff *skb)
{
	if (!skb)
		return 0;
	return skb->len > 60 ? 1 : 0;
}

static __noinline int add(int a, int b)
{
	return a + b;
}

/* Static, calls another subprogram, and tail-calls. */
static __noinline int tail_from_subprog(struct __sk_buff *skb, __u32 slot)
{
	bpf_tail_call(skb, &jmp_table, slot);
	return add(3, 4);
}

SEC("tc")
int entry(struct __sk_buff *skb)
{
	return tail_from_subprog(skb, 1);
}

SEC("tc")
int entry_missing(struct __sk_buff *skb)
{
	return add(tail_from_subprog(skb, 3), 100);
}

SEC("tc")
int stage_a(struct __sk_buff *skb)
{
	return add(40, 2);
}

SEC("tc")
int stage_b(struct __sk_buff *skb)
{
	return add(classify(skb), 10);
}

char LICENSE[] SEC("license") = "GPL";
