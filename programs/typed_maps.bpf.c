/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Maps for rawbpf::maps' typed wrappers, each read or written by a TC
 * program run with BPF_PROG_TEST_RUN (loader/tests/kernel_typed_maps.rs):
 *
 *   queue_pop / stack_pop  pop `queue` / `stack`: the value, 999 when empty.
 *   push_three             push 10, 20, 30 onto both; returns 0.
 *   lpm_match              the value of the longest prefix in `routes`
 *                          matching the address in `probe[0]`; 0 if none.
 *   percpu_bump            `counts[7]` on this CPU: returns it, then adds
 *                          1 (999 when the key is absent: it is created as 1).
 *   config_copy            reads `config[1]` (a struct with padding) and
 *                          writes each field plus one (`on` negated) to
 *                          `config[2]`; returns limit + port, 999 if absent.
 */
#include "rawbpf.h"

#ifndef BPF_MAP_TYPE_LPM_TRIE
#define BPF_MAP_TYPE_LPM_TRIE 11
#endif
#ifndef BPF_MAP_TYPE_QUEUE
#define BPF_MAP_TYPE_QUEUE 22
#endif
#ifndef BPF_MAP_TYPE_STACK
#define BPF_MAP_TYPE_STACK 23
#endif

static long (* const push_elem)(void *map, const void *value, __u64 flags) = (void *)87;
static long (* const pop_elem)(void *map, void *value) = (void *)88;

#define NONE 999

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 8);
	__type(value, __u32);
} queue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 8);
	__type(value, __u32);
} stack SEC(".maps");

struct ipv4_prefix {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ipv4_prefix);
	__type(value, __u32);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[4]);
} probe SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

/* 24 bytes: 2 of padding after port, 7 after on. */
struct config {
	__u32 limit;
	__u16 port;
	__u64 bytes;
	bool on;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct config);
} config SEC(".maps");

static __always_inline int pop(void *map)
{
	__u32 v;

	if (pop_elem(map, &v))
		return NONE;
	return v;
}

SEC("tc")
int queue_pop(struct __sk_buff *skb)
{
	return pop(&queue);
}

SEC("tc")
int stack_pop(struct __sk_buff *skb)
{
	return pop(&stack);
}

static __always_inline void push_both(__u32 v)
{
	push_elem(&queue, &v, BPF_ANY);
	push_elem(&stack, &v, BPF_ANY);
}

SEC("tc")
int push_three(struct __sk_buff *skb)
{
	push_both(10);
	push_both(20);
	push_both(30);
	return 0;
}

SEC("tc")
int lpm_match(struct __sk_buff *skb)
{
	struct ipv4_prefix key = { .prefixlen = 32 };
	__u32 zero = 0, *v;
	__u8 *addr = bpf_map_lookup_elem(&probe, &zero);

	if (!addr)
		return 0;
	__builtin_memcpy(key.addr, addr, 4);
	v = bpf_map_lookup_elem(&routes, &key);
	return v ? *v : 0;
}

SEC("tc")
int percpu_bump(struct __sk_buff *skb)
{
	__u32 key = 7;
	__u64 one = 1, *v = bpf_map_lookup_elem(&counts, &key);
	__u64 old;

	if (!v) {
		bpf_map_update_elem(&counts, &key, &one, BPF_ANY);
		return NONE;
	}
	old = *v;
	*v = old + 1;
	return old;
}

SEC("tc")
int config_copy(struct __sk_buff *skb)
{
	__u32 one = 1, two = 2;
	struct config out = {}, *in = bpf_map_lookup_elem(&config, &one);

	if (!in)
		return NONE;
	out.limit = in->limit + 1;
	out.port = in->port + 1;
	out.bytes = in->bytes + 1;
	out.on = !in->on;
	bpf_map_update_elem(&config, &two, &out, BPF_ANY);
	return in->limit + in->port;
}

char LICENSE[] SEC("license") = "GPL";
