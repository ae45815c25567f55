/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Global variables set before load (`--set NAME=VALUE`, LoadOptions'
 * globals; tests/cli_globals.rs). Every kind of settable global is here:
 * `const volatile` ones in .rodata (an int, a bool, an enum, a char array,
 * a struct, an array, a u8 for range checks), one in .data and one in .bss.
 *
 * compute (a socket filter, run with BPF_PROG_TEST_RUN) returns, with the
 * defaults, 16:
 *   0                                        if !enabled
 *   base (1)
 *   + pair.a + pair.b (2 + 3)               if mode == MODE_ADD
 *   * pair.a * pair.b                       if mode == MODE_MUL
 *   + weights[0] + weights[1] + weights[2] (0 + 0 + 0)
 *   + small (0) + data_add (10) + bss_add (0)
 *   + 1000                                  if tag starts with 'x' (it is "abc")
 *
 * count_getppid (tracepoint sys_enter_getppid) adds `step` (1) to `hits`
 * for each getppid() of the thread `target_tid` (0: none).
 */
#include "rawbpf.h"

enum mode { MODE_OFF = 0, MODE_ADD = 1, MODE_MUL = 2 };

struct pair {
	__u32 a;
	__u16 b;
};

const volatile __s32 base = 1;
const volatile bool enabled = true;
const volatile enum mode mode = MODE_ADD;
const volatile char tag[8] = "abc";
const volatile struct pair pair = { .a = 2, .b = 3 };
const volatile __u32 weights[3];
const volatile __u8 small;
const volatile __u32 target_tid;
const volatile __u32 step = 1;

__u32 data_add = 10;
__u32 bss_add;
__u64 hits;

SEC("socket")
int compute(struct __sk_buff *skb)
{
	__u32 v;

	if (!enabled)
		return 0;
	v = base;
	if (mode == MODE_ADD)
		v += pair.a + pair.b;
	else if (mode == MODE_MUL)
		v *= pair.a * pair.b;
	v += weights[0] + weights[1] + weights[2];
	v += small + data_add + bss_add;
	if (tag[0] == 'x')
		v += 1000;
	return v;
}

SEC("tp/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
	if (target_tid && target_tid == (__u32)bpf_get_current_pid_tgid())
		__sync_fetch_and_add(&hits, step);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
