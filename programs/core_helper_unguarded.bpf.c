/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpf_ktime_get_coarse_ns (#160, 5.11) without the CO-RE guard of
 * core_helper_guard.bpf.c: the verifier sees the call on every kernel, so
 * this loads only where the helper exists, and `check` says so.
 */
#include "rawbpf.h"

static __u64 (* const bpf_ktime_get_coarse_ns)(void) = (void *)160;

__u64 coarse_time;

SEC("tc")
int unguarded_helper(struct __sk_buff *skb)
{
	coarse_time = bpf_ktime_get_coarse_ns();
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
