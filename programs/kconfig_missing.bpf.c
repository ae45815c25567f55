/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A strong (not __weak) __kconfig extern that no kernel config has:
 * loading must fail with an error that names it.
 */
#include "rawbpf.h"

extern int CONFIG_RAWBPF_MISSING_OPTION __kconfig;

SEC("tc")
int needs_missing_option(struct __sk_buff *skb)
{
	return CONFIG_RAWBPF_MISSING_OPTION;
}

char LICENSE[] SEC("license") = "GPL";
