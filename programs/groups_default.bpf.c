/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What `rawbpf attach OBJ` without --prog attaches, as libbpf's skeleton
 * attach does: on_tp, whose section names its hook; not the programs whose
 * hook the section cannot name (a bare uprobe) or that attach elsewhere (XDP
 * and TC on a device, a socket filter on a socket), which it lists as
 * skipped. tests/cli_groups.rs.
 */
#include "rawbpf.h"

__u64 hits;

SEC("tp/syscalls/sys_enter_getppid")
int on_tp(void *ctx)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

SEC("uprobe")
int on_bare_uprobe(struct pt_regs *ctx)
{
	return 0;
}

SEC("xdp")
int on_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tc")
int on_tc(struct __sk_buff *skb)
{
	return 0;
}

SEC("socket")
int on_socket(struct __sk_buff *skb)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
