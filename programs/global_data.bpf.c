/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Global data: .rodata configuration (frozen by the loader), .data and .bss
 * counters, and a static (file-local) counter reached through the section
 * symbol. (String constants in .rodata.str1.1: callbacks.bpf.c.)
 *
 * count_and_verdict returns cfg_verdict (3) on any frame. After N runs:
 * bss_runs == N, bss_bytes == N * frame length, data_counter == 5 + N,
 * and local_runs (static, .bss) == N.
 */
#include "rawbpf.h"

const volatile __u32 cfg_verdict = 3;
const volatile __u32 cfg_step = 1;

__u32 data_counter = 5;

__u64 bss_runs;
__u64 bss_bytes;
static __u64 local_runs;

SEC("tc")
int count_and_verdict(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&bss_runs, 1);
	__sync_fetch_and_add(&bss_bytes, skb->len);
	__sync_fetch_and_add(&local_runs, 1);
	data_counter += cfg_step;
	return cfg_verdict;
}

char LICENSE[] SEC("license") = "GPL";
