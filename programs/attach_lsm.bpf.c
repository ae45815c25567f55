/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A BPF LSM program: its attach target is the kernel's bpf_lsm_file_open
 * function (there only with CONFIG_BPF_LSM). It allows every open: LSM
 * programs return 0 or a negative errno.
 */
#include "rawbpf.h"

SEC("lsm/file_open")
int allow_file_open(__u64 *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
