/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kfuncs and a typeless __ksym, resolved against the running kernel:
 *   - bpf_task_from_pid and bpf_task_release (kernel >= 6.2, open to
 *     sched_cls programs): calls the loader marks BPF_PSEUDO_KFUNC_CALL with
 *     the kernel's BTF id of each. The program looks up pid 2, kthreadd,
 *     which every kernel starts (pid 1 is user space's and can be odd:
 *     some VMs' init is not found this way);
 *   - bpf_prog_put, typeless (extern const void): its address from
 *     /proc/kallsyms, as the ld_imm64's 64-bit immediate;
 *   - weak ones the kernel lacks: a NULL address, and a kfunc call the
 *     verifier never reaches (bpf_ksym_exists is false).
 *
 * struct task_struct is ours and minimal: the loader checks that it is a
 * struct, as libbpf does; the program reads no field of it.
 *
 * find_kthreadd stores what it saw in .bss (struct kfuncs_seen) and returns 0.
 */
#include "rawbpf.h"

struct task_struct {
	int __opaque;
};

extern struct task_struct *bpf_task_from_pid(__s32 pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern void rawbpf_no_such_kfunc(void) __ksym __weak;
extern const void bpf_prog_put __ksym;
extern const void rawbpf_no_such_symbol __ksym __weak;

struct kfuncs_seen {
	__u64 kthreadd_found;
	__u64 missing_kfunc_called;
	__u64 prog_put_address;
	__u64 missing_symbol_address;
};

struct kfuncs_seen seen;

SEC("tc")
int find_kthreadd(struct __sk_buff *skb)
{
	struct task_struct *task = bpf_task_from_pid(2);

	if (task) {
		seen.kthreadd_found = 1;
		bpf_task_release(task);
	}
	if (bpf_ksym_exists(rawbpf_no_such_kfunc)) {
		rawbpf_no_such_kfunc();
		seen.missing_kfunc_called = 1;
	}
	seen.prog_put_address = (__u64)&bpf_prog_put;
	seen.missing_symbol_address = (__u64)&rawbpf_no_such_symbol;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
