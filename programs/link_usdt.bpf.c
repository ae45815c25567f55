/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A USDT program with libbpf's usdt.bpf.h convention, for the link tests:
 * the loader writes each probe site's argument spec in __bpf_usdt_specs
 * and gives the site's index as the link's BPF cookie (before 5.15: as the
 * value of the site's address in __bpf_usdt_ip_to_spec_id); the program reads
 * its first argument as usdt.bpf.h's bpf_usdt_arg() does. It counts its
 * runs in the thread whose id the test writes in `target_tid` (slot 0)
 * and keeps the last first argument (slot 1).
 */
#include "rawbpf.h"

enum __bpf_usdt_arg_type {
	BPF_USDT_ARG_CONST,
	BPF_USDT_ARG_REG,
	BPF_USDT_ARG_REG_DEREF,
};

struct __bpf_usdt_arg_spec {
	__u64 val_off;
	enum __bpf_usdt_arg_type arg_type;
	short reg_off;
	bool arg_signed;
	char arg_bitshift;
};

struct __bpf_usdt_spec {
	struct __bpf_usdt_arg_spec args[12];
	__u64 usdt_cookie;
	short arg_cnt;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, int);
	__type(value, struct __bpf_usdt_spec);
} __bpf_usdt_specs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, long);
	__type(value, __u32);
} __bpf_usdt_ip_to_spec_id SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} target_tid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

extern bool LINUX_HAS_BPF_COOKIE __kconfig;

SEC("usdt")
int on_usdt(struct pt_regs *ctx)
{
	__u32 zero = 0, one = 1;
	__u32 *tid = bpf_map_lookup_elem(&target_tid, &zero);
	if (!tid || *tid != (__u32)bpf_get_current_pid_tgid())
		return 0;
	__u64 *runs = bpf_map_lookup_elem(&counts, &zero);
	if (runs)
		__sync_fetch_and_add(runs, 1);

	/* usdt.bpf.h's __bpf_usdt_spec_id: the cookie, or before 5.15 the
	 * spec the loader keyed by the site's address (pt_regs->ip). */
	int id;
	if (LINUX_HAS_BPF_COOKIE) {
		id = bpf_get_attach_cookie(ctx);
	} else {
		long ip = *(long *)((void *)ctx + 128);
		int *by_ip = bpf_map_lookup_elem(&__bpf_usdt_ip_to_spec_id, &ip);
		if (!by_ip)
			return 0;
		id = *by_ip;
	}
	struct __bpf_usdt_spec *spec = bpf_map_lookup_elem(&__bpf_usdt_specs, &id);
	if (!spec || spec->arg_cnt < 1)
		return 0;
	struct __bpf_usdt_arg_spec *arg = &spec->args[0];
	__u64 val = 0;
	switch (arg->arg_type) {
	case BPF_USDT_ARG_CONST:
		val = arg->val_off;
		break;
	case BPF_USDT_ARG_REG:
		bpf_probe_read_kernel(&val, sizeof(val), (void *)ctx + arg->reg_off);
		break;
	case BPF_USDT_ARG_REG_DEREF:
		bpf_probe_read_kernel(&val, sizeof(val), (void *)ctx + arg->reg_off);
		bpf_probe_read_user(&val, sizeof(val), (void *)val + arg->val_off);
		break;
	default:
		return 0;
	}
	val <<= arg->arg_bitshift;
	if (arg->arg_signed)
		val = ((__s64)val) >> arg->arg_bitshift;
	else
		val >>= arg->arg_bitshift;
	__u64 *last = bpf_map_lookup_elem(&counts, &one);
	if (last)
		*last = val;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
