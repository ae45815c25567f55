/* SPDX-License-Identifier: GPL-2.0 */
/*
 * BTF of every kind a kernel added over time, for BTF sanitization
 * (loader/tests/kernel_btf_sanitize.rs): a signed enum (ENUM with the kind
 * flag, 6.0) in a map value, an ENUM64 (6.0) and a double (FLOAT, 5.13) as
 * globals, DECL_TAGs (5.16) on a variable and on a function's parameter,
 * a TYPE_TAG (5.17) pointer, a global function (5.6), and a map
 * whose value holds a struct bpf_spin_lock, which the kernel creates only
 * with BTF. A kernel that lacks any of them gets the object's BTF
 * sanitized; the map must keep its BTF.
 *
 * locked_count (tc) takes the lock of locked[0], adds 1 to its count and
 * returns the new count (1, 2, ... per run), through add_one(count) - 1.
 */
#include "rawbpf.h"

struct bpf_spin_lock {
	__u32 val;
};

static long (* const bpf_spin_lock)(struct bpf_spin_lock *lock) = (void *)93;
static long (* const bpf_spin_unlock)(struct bpf_spin_lock *lock) = (void *)94;

enum sign { SIGN_NEG = -1, SIGN_POS = 1 };
enum big { BIG_ONE = 0x100000000ULL };

struct locked_value {
	struct bpf_spin_lock lock;
	__u32 count;
	enum sign last;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct locked_value);
} locked SEC(".maps");

enum big big_value = BIG_ONE;
double ratio = 0.5;
int tagged __attribute__((btf_decl_tag("rawbpf_tag"))) = 1;
int __attribute__((btf_type_tag("rawbpf_type_tag"))) *tagged_ptr;

/* Static: `check` (loader/src/probe.rs) still counts a global function
 * as refused where the kernel lacks a BTF kind, though the load sanitizes
 * the BTF; locked_count is a global FUNC all the same. */
static __attribute__((noinline)) int add_one(int v __attribute__((btf_decl_tag("rawbpf_arg"))))
{
	return v + 1;
}

SEC("tc")
int locked_count(struct __sk_buff *skb)
{
	__u32 key = 0, count;
	struct locked_value *v = bpf_map_lookup_elem(&locked, &key);

	if (!v)
		return -1;
	bpf_spin_lock(&v->lock);
	v->count += 1;
	count = v->count;
	v->last = SIGN_POS;
	bpf_spin_unlock(&v->lock);
	return add_one(count) - 1;
}

char LICENSE[] SEC("license") = "GPL";
