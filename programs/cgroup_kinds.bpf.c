/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One counter per cgroup hook: each program adds 1 to its slot of
 * `counts` and lets the operation go on (returns 1). The link tests attach
 * every program to a throwaway cgroup, run a process there that connects,
 * binds, sends, reads a sysctl and opens a device, and read the slots.
 */
#include "rawbpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline int bump(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&counts, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
	return 1;
}

SEC("cgroup_skb/ingress") int on_skb_ingress(struct __sk_buff *skb) { return bump(0); }
SEC("cgroup_skb/egress") int on_skb_egress(struct __sk_buff *skb) { return bump(1); }
SEC("cgroup/sock_create") int on_sock_create(void *sk) { return bump(2); }
SEC("cgroup/sock_release") int on_sock_release(void *sk) { return bump(3); }
SEC("cgroup/post_bind4") int on_post_bind4(void *sk) { return bump(4); }
SEC("cgroup/bind4") int on_bind4(void *ctx) { return bump(5); }
SEC("cgroup/connect4") int on_connect4(void *ctx) { return bump(6); }
SEC("cgroup/sendmsg4") int on_sendmsg4(void *ctx) { return bump(7); }
SEC("cgroup/recvmsg4") int on_recvmsg4(void *ctx) { return bump(8); }
SEC("cgroup/getpeername4") int on_getpeername4(void *ctx) { return bump(9); }
SEC("cgroup/getsockname4") int on_getsockname4(void *ctx) { return bump(10); }
SEC("cgroup/connect6") int on_connect6(void *ctx) { return bump(11); }
SEC("cgroup/bind6") int on_bind6(void *ctx) { return bump(12); }
SEC("sockops") int on_sockops(void *ctx) { return bump(13); }
SEC("cgroup/sysctl") int on_sysctl(void *ctx) { return bump(14); }
SEC("cgroup/getsockopt") int on_getsockopt(void *ctx) { return bump(15); }
SEC("cgroup/setsockopt") int on_setsockopt(void *ctx) { return bump(16); }
SEC("cgroup/dev") int on_dev(void *ctx) { return bump(17); }

char LICENSE[] SEC("license") = "GPL";
