/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Callbacks and string constants: bpf_loop() takes the address of a static
 * .text function (an ld_imm64 the loader marks BPF_PSEUDO_FUNC; kernel
 * >= 5.17), and a string literal lands in .rodata.str1.1, a global-data map
 * of its own.
 *
 * On the built-in frame: count_to_ten returns 10; say_len returns 64 (and
 * writes "len 64" to the trace pipe).
 */
#include "rawbpf.h"

static int add_one(__u32 index, void *ctx)
{
	*(int *)ctx += 1;
	return 0;
}

SEC("tc")
int count_to_ten(struct __sk_buff *skb)
{
	int n = 0;

	bpf_loop(10, add_one, &n, 0);
	return n;
}

SEC("tc")
int say_len(struct __sk_buff *skb)
{
	bpf_trace_printk("len %d\n", sizeof("len %d\n"), skb->len);
	return skb->len;
}

char LICENSE[] SEC("license") = "GPL";
