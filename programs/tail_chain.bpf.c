/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The tail-call limit: chain_step tail-calls itself through slot 0 until the
 * kernel stops it. At most 33 tail calls chain, so the program runs 34 times
 * per packet; it counts in skb->cb[0] (fresh per packet) and returns the
 * count, 34. total_steps (.bss) adds up every execution: 34 per run.
 * (Kernels before 5.17 allowed 32 tail calls: 33.) BPF_PROG_TEST_RUN with
 * repeat N reuses one skb, so cb[0] keeps counting: retval 34 * N.
 */
#include "rawbpf.h"

int chain_step(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, int (void *));
} chain SEC(".maps") = {
	.values = { [0] = (void *)&chain_step },
};

__u64 total_steps;

SEC("tc")
int chain_step(struct __sk_buff *skb)
{
	skb->cb[0] += 1;
	__sync_fetch_and_add(&total_steps, 1);
	bpf_tail_call(skb, &chain, 0);
	return skb->cb[0];
}

char LICENSE[] SEC("license") = "GPL";
