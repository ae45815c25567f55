/* SPDX-License-Identifier: GPL-2.0 */
/*
 * __kconfig externs. The loader lays them out in a frozen .kconfig map and
 * fills it: LINUX_KERNEL_VERSION from the kernel release, the LINUX_HAS_*
 * ones by probing, CONFIG_* from /boot/config-$(uname -r) or
 * /proc/config.gz. A weak option the config lacks reads as 0.
 *
 * copy_kconfig copies every value into .bss (struct kconfig_copy, in this
 * order) and returns 0, so a test can compare them with what it reads from
 * the kernel itself.
 */
#include "rawbpf.h"

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern bool LINUX_HAS_BPF_COOKIE __kconfig;
extern bool LINUX_HAS_SYSCALL_WRAPPER __kconfig;
/* Every Debian kernel sets these. */
extern int CONFIG_HZ __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig __weak;
/* y here, m in Debian's kernels. */
extern enum libbpf_tristate CONFIG_NET_CLS_BPF __kconfig __weak;
/* A string: "(none)". */
extern char CONFIG_DEFAULT_HOSTNAME[16] __kconfig __weak;
/* A hexadecimal number on x86 (0x1000000). */
extern __u64 CONFIG_PHYSICAL_START __kconfig __weak;
/* No kernel has it. */
extern int CONFIG_RAWBPF_NOT_AN_OPTION __kconfig __weak;

struct kconfig_copy {
	__u64 kernel_version;
	__u64 has_bpf_cookie;
	__u64 has_syscall_wrapper;
	__u64 hz;
	__u64 bpf_syscall;
	__u64 net_cls_bpf;
	__u64 physical_start;
	__u64 not_an_option;
	char default_hostname[16];
};

struct kconfig_copy copy;

SEC("tc")
int copy_kconfig(struct __sk_buff *skb)
{
	copy.kernel_version = LINUX_KERNEL_VERSION;
	copy.has_bpf_cookie = LINUX_HAS_BPF_COOKIE;
	copy.has_syscall_wrapper = LINUX_HAS_SYSCALL_WRAPPER;
	copy.hz = CONFIG_HZ;
	copy.bpf_syscall = CONFIG_BPF_SYSCALL;
	copy.net_cls_bpf = CONFIG_NET_CLS_BPF;
	copy.physical_start = CONFIG_PHYSICAL_START;
	copy.not_an_option = CONFIG_RAWBPF_NOT_AN_OPTION;
	for (int i = 0; i < 16; i++)
		copy.default_hostname[i] = CONFIG_DEFAULT_HOSTNAME[i];
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
