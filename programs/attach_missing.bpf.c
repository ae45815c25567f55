/* SPDX-License-Identifier: GPL-2.0 */
/*
 * An fentry program whose target the kernel does not have: loading must
 * fail naming the program and the function, and `check` must say so first.
 */
#include "rawbpf.h"

SEC("fentry/no_such_function_xyz")
int on_missing(__u64 *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
