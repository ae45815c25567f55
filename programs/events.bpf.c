/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Event streams (loader/tests/kernel_events.rs, tests/cli_events.rs): a
 * ring buffer `ring` and a perf event array `perf`, each written by two
 * producers.
 *
 * - on_getppid (tracepoint syscalls/sys_enter_getppid): for the thread
 *   whose id the test wrote in `state.tid` (.bss, offset 0), one 20-byte
 *   `struct event` {magic "EVT!", tid, seq, source 1, 0} per getppid(),
 *   to both maps; `state.seq` (offset 4) counts them from 0. 20 bytes: a perf sample's
 *   raw data is padded to 4 bytes short of a multiple of 8, so this one
 *   arrives unpadded from both maps.
 * - produce (tc, run by BPF_PROG_TEST_RUN): the packet's bytes (at most
 *   255) as one record, to both maps, so a test chooses each record's
 *   contents and length. Returns 0, or 1 if the copy failed.
 */
#include "rawbpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16384);
} ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf SEC(".maps");

struct event {
	__u32 magic;
	__u32 tid;
	__u32 seq;
	__u32 source;
	__u32 zero;
};

#define EVENT_MAGIC 0x21545645 /* "EVT!" little-endian */

/* One variable, so that its members' offsets in .bss are known. */
struct {
	__u32 tid;
	__u32 seq;
	__u8 buf[256];
} state;

/* The last event the tracepoint wrote: a global, so that `struct event`
 * is in the object's BTF for `rawbpf events --type event` to decode
 * records by. */
struct event last_event;

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct event e = {};

	if (!state.tid || tid != state.tid)
		return 0;
	e.magic = EVENT_MAGIC;
	e.tid = tid;
	e.seq = state.seq++;
	e.source = 1;
	last_event = e;
	bpf_ringbuf_output(&ring, &e, sizeof(e), 0);
	bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

SEC("tc")
int produce(struct __sk_buff *skb)
{
	__u32 len = skb->len;

	if (len == 0 || len > 255)
		return 1;
	/* len again, in a form whose lower bound (1) verifiers before 5.12 see. */
	len = ((len - 1) & 255) + 1;
	if (bpf_skb_load_bytes(skb, 0, state.buf, len))
		return 1;
	bpf_ringbuf_output(&ring, state.buf, len, 0);
	bpf_perf_event_output(skb, &perf, BPF_F_CURRENT_CPU, state.buf, len);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
