/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Maps as real objects declare them, which the kernel would refuse as
 * written and loaders fix up (as libbpf and cilium/ebpf do):
 *
 * - events_rb: a ring buffer with key and value types (the kernel wants
 *   neither) and a size, 10000 bytes, that is not a power-of-2 multiple of
 *   the page size (it becomes 16384 with 4 KiB pages);
 * - events_perf: a perf event array without max_entries (it gets one slot
 *   per possible CPU) and with key and value types.
 *
 * emit writes one 8-byte record to each.
 */
#include "rawbpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 10000);
	__type(key, int);
	__type(value, __u32);
} events_rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__type(key, int);
	__type(value, __u32);
} events_perf SEC(".maps");

SEC("raw_tp/sys_enter")
int emit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 record = ctx->args[1];

	bpf_ringbuf_output(&events_rb, &record, sizeof(record), 0);
	bpf_perf_event_output(ctx, &events_perf, BPF_F_CURRENT_CPU, &record, sizeof(record));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
