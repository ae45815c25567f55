/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A minimal TCP congestion control as struct_ops, for the struct_ops
 * tests: `rawbpf_cc` (in `.struct_ops.link`: registered through a BPF
 * link where the kernel has one) and `rawbpf_cc_map` (in `.struct_ops`:
 * registered by the map update itself) share the four programs.
 *
 * Only the members the kernel requires (ssthresh, cong_avoid, undo_cwnd)
 * and init are filled; the window never grows (cong_avoid does nothing),
 * which is all a loopback test needs. init counts the sockets that took
 * this congestion control in `init_calls`; a test reads it after a
 * connect() and sees it stay still once the struct_ops is unregistered.
 *
 * The struct is our own, with only the members we fill: the loader
 * copies them by name into the kernel's `struct tcp_congestion_ops`.
 */
#include "rawbpf.h"

struct sock;

struct tcp_congestion_ops {
	__u32 (*ssthresh)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	__u32 (*undo_cwnd)(struct sock *sk);
	void (*init)(struct sock *sk);
	char name[16];
} __attribute__((preserve_access_index));

__u64 init_calls;

SEC("struct_ops/rawbpf_init")
int rawbpf_init(unsigned long long *ctx)
{
	__sync_fetch_and_add(&init_calls, 1);
	return 0;
}

SEC("struct_ops/rawbpf_ssthresh")
__u32 rawbpf_ssthresh(unsigned long long *ctx)
{
	return 10;
}

SEC("struct_ops/rawbpf_cong_avoid")
int rawbpf_cong_avoid(unsigned long long *ctx)
{
	return 0;
}

SEC("struct_ops/rawbpf_undo_cwnd")
__u32 rawbpf_undo_cwnd(unsigned long long *ctx)
{
	return 10;
}

SEC(".struct_ops.link")
struct tcp_congestion_ops rawbpf_cc = {
	.ssthresh = (void *)rawbpf_ssthresh,
	.cong_avoid = (void *)rawbpf_cong_avoid,
	.undo_cwnd = (void *)rawbpf_undo_cwnd,
	.init = (void *)rawbpf_init,
	.name = "rawbpf_cc",
};

SEC(".struct_ops")
struct tcp_congestion_ops rawbpf_cc_map = {
	.ssthresh = (void *)rawbpf_ssthresh,
	.cong_avoid = (void *)rawbpf_cong_avoid,
	.undo_cwnd = (void *)rawbpf_undo_cwnd,
	.init = (void *)rawbpf_init,
	.name = "rawbpf_cc_map",
};

char LICENSE[] SEC("license") = "GPL";
