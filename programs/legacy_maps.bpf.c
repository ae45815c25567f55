/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Legacy map definitions: struct bpf_map_def in SEC("maps"), as objects
 * written for old libbpf and iproute2 declare them, used from a
 * SEC("classifier") program. Also built without BTF (legacy_maps.nobtf).
 *
 * legacy_count returns legacy_config[0] (0 until set) and counts packets per
 * skb->protocol in legacy_counts.
 */
#include "rawbpf.h"

struct bpf_map_def SEC("maps") legacy_counts = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 16,
};

struct bpf_map_def SEC("maps") legacy_config = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = 1,
};

SEC("classifier")
int legacy_count(struct __sk_buff *skb)
{
	__u32 zero = 0, proto = skb->protocol;
	__u32 *verdict = bpf_map_lookup_elem(&legacy_config, &zero);
	__u64 one = 1, *count = bpf_map_lookup_elem(&legacy_counts, &proto);

	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&legacy_counts, &proto, &one, BPF_ANY);
	return verdict ? *verdict : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
