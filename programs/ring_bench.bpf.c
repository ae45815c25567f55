/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A ring buffer producer for the event-stream bench (bench/src/ring.rs):
 * each run of `produce` (BPF_PROG_TEST_RUN, repeated N times) writes one
 * 16-byte record — a sequence number and its square — into `ring` (8 MiB,
 * room for 349,525 records of 24 bytes with their headers), so that a
 * reader drains exactly N known records. The same object feeds rawbpf's
 * reader and libbpf's ring_buffer__consume.
 */
#include "rawbpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} ring SEC(".maps");

__u64 seq;

SEC("tc")
int produce(struct __sk_buff *skb)
{
	__u64 rec[2];

	/* Test runs are one at a time: no atomic needed (and a fetching
	 * atomic would need 5.12). */
	rec[0] = seq++;
	rec[1] = rec[0] * rec[0];
	bpf_ringbuf_output(&ring, rec, sizeof(rec), 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
