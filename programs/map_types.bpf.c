/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Other map types: hash (no prealloc), array, per-CPU array, LRU hash, a map
 * pinned by name, and maps of maps whose slots are declared with .values.
 *
 * lookup_inner returns inner_b[0] (0 until set) through outer[1]; 100 if the
 * outer slot is empty, 101 if the inner lookup fails. It counts runs in
 * flows[skb->protocol], percpu_stats[0], recent[skb->len] and
 * pinned_counter[0].
 */
#include "rawbpf.h"

struct inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_map);
} outer SEC(".maps") = {
	.values = { [0] = &inner_a, [1] = &inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner_map);
} outer_hash SEC(".maps") = {
	.values = { [2] = &inner_a },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u64);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} percpu_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u32);
} recent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, __u32);
	__type(value, __u64);
} pinned_counter SEC(".maps");

static __always_inline void count(void *map, __u32 key)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(map, &key, &one, BPF_ANY);
}

SEC("tc")
int lookup_inner(struct __sk_buff *skb)
{
	__u32 zero = 0, one = 1, len = skb->len;
	__u64 *stat;
	__u32 *v;
	void *inner;

	count(&flows, skb->protocol);
	count(&pinned_counter, 0);
	stat = bpf_map_lookup_elem(&percpu_stats, &zero);
	if (stat)
		*stat += 1;
	bpf_map_update_elem(&recent, &len, &one, BPF_ANY);

	inner = bpf_map_lookup_elem(&outer, &one);
	if (!inner)
		return 100;
	v = bpf_map_lookup_elem(inner, &zero);
	if (!v)
		return 101;
	return *v;
}

char LICENSE[] SEC("license") = "GPL";
