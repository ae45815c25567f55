/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One trivial program per SEC() convention, to check that section names map
 * to the program and attach types libbpf gives them. Each returns 0 or 1.
 *
 * "tc/ingress" and "tcx/egress" are TCX sections (sched_cls, attach type
 * BPF_TCX_INGRESS / BPF_TCX_EGRESS) that libbpf knows from 1.3 on; older
 * libbpf (Debian bookworm's 1.1 bpftool) cannot guess their type and
 * refuses the whole object. Plain "tc" and "classifier" are sched_cls with
 * no attach type.
 */
#include "rawbpf.h"

SEC("kprobe/do_sys_openat2") int on_kprobe(struct pt_regs *ctx) { return 0; }
SEC("kretprobe/do_sys_openat2") int on_kretprobe(struct pt_regs *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_enter_openat") int on_tracepoint(void *ctx) { return 0; }
SEC("raw_tracepoint/sys_enter") int on_raw_tracepoint(void *ctx) { return 0; }
SEC("cgroup_skb/ingress") int on_cgroup_ingress(struct __sk_buff *skb) { return 1; }
SEC("cgroup_skb/egress") int on_cgroup_egress(struct __sk_buff *skb) { return 1; }
SEC("classifier") int on_classifier(struct __sk_buff *skb) { return TC_ACT_OK; }
SEC("tc/ingress") int on_tcx_ingress(struct __sk_buff *skb) { return TC_ACT_OK; }
SEC("tcx/egress") int on_tcx_egress(struct __sk_buff *skb) { return TC_ACT_OK; }
SEC("xdp") int on_xdp(struct xdp_md *ctx) { return XDP_PASS; }
SEC("socket") int on_socket(struct __sk_buff *skb) { return 0; }
SEC("perf_event") int on_perf_event(void *ctx) { return 0; }
SEC("cgroup/sock") int on_cgroup_sock(void *ctx) { return 1; }

char LICENSE[] SEC("license") = "GPL";
