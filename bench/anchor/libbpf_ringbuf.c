// SPDX-License-Identifier: GPL-2.0
/*
 * The event-stream bench's libbpf side (bench/src/ring.rs): loads
 * programs/obj/ring_bench.bpf.o, and for each of ROUNDS rounds fills its
 * ring buffer with N records (BPF_PROG_TEST_RUN of `produce`, repeated N
 * times), then times ring_buffer__consume until all N arrived. Prints one
 * line per round: nanoseconds spent consuming. The callback sums the
 * records' first words, as rawbpf's reader does, so both touch the data.
 *
 *   libbpf_ringbuf OBJ N ROUNDS
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static unsigned long long got, sum;

static int on_record(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (size >= 8)
		sum += *(unsigned long long *)data;
	got++;
	return 0;
}

static unsigned long long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (unsigned long long)t.tv_sec * 1000000000ull + t.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s OBJ N ROUNDS\n", argv[0]);
		return 2;
	}
	unsigned long long n = strtoull(argv[2], NULL, 10);
	int rounds = atoi(argv[3]);
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "loading %s failed\n", argv[1]);
		return 1;
	}
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, "produce");
	struct bpf_map *ring = bpf_object__find_map_by_name(obj, "ring");
	if (!prog || !ring)
		return 1;
	struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(ring), on_record, NULL, NULL);
	if (!rb)
		return 1;
	char packet[64] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet, .data_size_in = sizeof(packet),
		    .repeat = (unsigned int)n);
	for (int r = 0; r < rounds; r++) {
		got = 0;
		if (bpf_prog_test_run_opts(bpf_program__fd(prog), &opts)) {
			fprintf(stderr, "test run failed\n");
			return 1;
		}
		unsigned long long t0 = now_ns();
		while (got < n) {
			if (ring_buffer__consume(rb) < 0) {
				fprintf(stderr, "consume failed\n");
				return 1;
			}
		}
		printf("%llu\n", now_ns() - t0);
	}
	fprintf(stderr, "sum %llu\n", sum);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}
