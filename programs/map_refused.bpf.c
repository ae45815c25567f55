/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A map the kernel refuses: an array whose key is 8 bytes (array keys are
 * 4-byte indexes). The parser accepts it, as the ELF is well formed;
 * BPF_MAP_CREATE says EINVAL, and the loader must name the map and the rule.
 */
#include "rawbpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u64);
	__type(value, __u32);
	__uint(max_entries, 4);
} wide_keys SEC(".maps");

SEC("tc")
int count_packet(struct __sk_buff *skb)
{
	__u64 key = 0;
	__u32 *n = bpf_map_lookup_elem(&wide_keys, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
