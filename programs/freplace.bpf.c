/* SPDX-License-Identifier: GPL-2.0 */
/*
 * An freplace program: it replaces global function pick() of a loaded
 * freplace_target.bpf.o program. Its attach target is pick's FUNC in that
 * program's BTF, so it loads only when the target program is given
 * (LoadOptions::attach_prog); its prototype must match pick's.
 */
#include "rawbpf.h"

SEC("freplace/pick")
int new_pick(struct __sk_buff *skb)
{
	return 2;
}

char LICENSE[] SEC("license") = "GPL";
