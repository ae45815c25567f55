/* SPDX-License-Identifier: GPL-2.0 */
/*
 * CO-RE answers that depend on the running kernel's layout, written into
 * core_layout (.bss) for the test to compare with what it finds in
 * /sys/kernel/btf/vmlinux itself (tests/kernel_core.rs).
 *
 * The local types below are our own minimal declarations, deliberately laid
 * out unlike the kernel's (other member order, other sizes): a loader that
 * left the compiled offsets alone would produce wrong numbers, not the
 * kernel's by luck. A field the kernel lacks reads as "absent" (exists 0,
 * ABSENT for its offset), guarded so that its poisoned instruction is never
 * reached.
 *
 * On the test frame (Ethernet + IPv4, 64 bytes) core_fields returns
 * TC_ACT_OK and reads the frame's IPv4 version/ihl bitfields, its daddr,
 * and the context's len and protocol through relocated offsets.
 */
#include "rawbpf.h"

#define ABSENT ((__u64)-1)

/* task_struct as of 5.14: `long state` became `unsigned int __state`. */
struct task_struct {
	char comm[8];    /* the kernel's is TASK_COMM_LEN (16) */
	__u64 __state;   /* the kernel's is 4 bytes */
	int tgid;
	long long pid;   /* the kernel's pid_t is 4 bytes */
	struct sched_entity___core {
		__u64 vruntime;
	} se;
} __attribute__((preserve_access_index));

/* The same type as kernels before 5.14 have it. */
struct task_struct___pre514 {
	int state; /* the kernel's was a long */
} __attribute__((preserve_access_index));

/* Matches the kernel's task_struct: members it has, with its int types. */
struct task_struct___ids {
	int tgid;
	int pid;
} __attribute__((preserve_access_index));

/* Does not match: no kernel's task_struct has this member. */
struct task_struct___alien {
	int rawbpf_no_such_member;
} __attribute__((preserve_access_index));

/* No kernel has this type. */
struct rawbpf_no_such_type {
	int x;
};

/*
 * enum bpf_prog_type with local values that are all wrong on purpose: the
 * kernel's come from the relocation. NETFILTER appeared in 6.4.
 */
enum bpf_prog_type___core {
	BPF_PROG_TYPE_SCHED_CLS = 100,
	BPF_PROG_TYPE_NETFILTER = 101,
};

/* The uapi context, as a flavor with the members in another order. */
struct __sk_buff___core {
	__u32 protocol;
	__u32 len;
} __attribute__((preserve_access_index));

/* struct iphdr, as a flavor: bitfields swapped, daddr moved forward. */
struct iphdr___core {
	__u8 version : 4, ihl : 4;
	__be32 daddr;
	__u8 ttl;
} __attribute__((preserve_access_index));

struct core_layout {
	__u64 task_size;
	__u64 pid_offset;
	__u64 pid_size;
	__u64 tgid_offset;
	__u64 comm_offset;
	__u64 comm_size;
	__u64 vruntime_offset;
	__u64 state_new_exists;
	__u64 state_new_offset;
	__u64 state_new_size;
	__u64 state_old_exists;
	__u64 state_old_offset;
	__u64 state_old_size;
	__u64 task_exists;
	__u64 missing_type_exists;
	__u64 task_ids_match;
	__u64 task_alien_matches;
	__u64 task_id_kernel;
	__u64 task_id_local;
	__u64 sched_cls_exists;
	__u64 sched_cls_value;
	__u64 netfilter_exists;
	__u64 netfilter_value;
	__u64 skb_len_offset;
	__u64 skb_protocol_offset;
	__u64 skb_len;
	__u64 skb_protocol;
	__u64 iph_daddr_offset;
	__u64 iph_version_offset;
	__u64 iph_daddr;
	__u64 iph_version;
	__u64 iph_ihl;
	__u64 runs;
};

struct core_layout core_layout;

SEC("tc")
int core_fields(struct __sk_buff *ctx)
{
	struct __sk_buff___core *skb = (void *)ctx;
	struct core_layout *out = &core_layout;
	struct task_struct *t = 0;
	struct task_struct___pre514 *old = 0;

	out->task_size = bpf_core_type_size(struct task_struct);
	out->pid_offset = bpf_core_field_offset(t->pid);
	out->pid_size = bpf_core_field_size(t->pid);
	out->tgid_offset = bpf_core_field_offset(struct task_struct, tgid);
	out->comm_offset = bpf_core_field_offset(t->comm);
	out->comm_size = bpf_core_field_size(t->comm);
	out->vruntime_offset = bpf_core_field_offset(t->se.vruntime);

	out->state_new_exists = bpf_core_field_exists(t->__state);
	out->state_new_offset = ABSENT;
	out->state_new_size = ABSENT;
	if (bpf_core_field_exists(t->__state)) {
		out->state_new_offset = bpf_core_field_offset(t->__state);
		out->state_new_size = bpf_core_field_size(t->__state);
	}
	out->state_old_exists = bpf_core_field_exists(old->state);
	out->state_old_offset = ABSENT;
	out->state_old_size = ABSENT;
	if (bpf_core_field_exists(old->state)) {
		out->state_old_offset = bpf_core_field_offset(old->state);
		out->state_old_size = bpf_core_field_size(old->state);
	}

	out->task_exists = bpf_core_type_exists(struct task_struct);
	out->missing_type_exists = bpf_core_type_exists(struct rawbpf_no_such_type);
	out->task_ids_match = bpf_core_type_matches(struct task_struct___ids);
	out->task_alien_matches = bpf_core_type_matches(struct task_struct___alien);
	out->task_id_kernel = bpf_core_type_id_kernel(struct task_struct);
	out->task_id_local = bpf_core_type_id_local(struct task_struct);

	out->sched_cls_exists =
		bpf_core_enum_value_exists(enum bpf_prog_type___core, BPF_PROG_TYPE_SCHED_CLS);
	out->sched_cls_value =
		bpf_core_enum_value(enum bpf_prog_type___core, BPF_PROG_TYPE_SCHED_CLS);
	out->netfilter_exists =
		bpf_core_enum_value_exists(enum bpf_prog_type___core, BPF_PROG_TYPE_NETFILTER);
	out->netfilter_value = ABSENT;
	if (bpf_core_enum_value_exists(enum bpf_prog_type___core, BPF_PROG_TYPE_NETFILTER))
		out->netfilter_value =
			bpf_core_enum_value(enum bpf_prog_type___core, BPF_PROG_TYPE_NETFILTER);

	/* Context accesses: the verifier sees the kernel's offsets. */
	out->skb_len_offset = bpf_core_field_offset(skb->len);
	out->skb_protocol_offset = bpf_core_field_offset(skb->protocol);
	out->skb_len = skb->len;
	out->skb_protocol = skb->protocol;

	/* Packet memory through the kernel's struct iphdr. */
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr___core *iph = data + ETH_HLEN;

	out->iph_daddr_offset = bpf_core_field_offset(iph->daddr);
	out->iph_version_offset = bpf_core_field_offset(iph->version);
	if (data + ETH_HLEN + 20 <= data_end) {
		out->iph_daddr = iph->daddr;
		out->iph_version = BPF_CORE_READ_BITFIELD(iph, version);
		out->iph_ihl = BPF_CORE_READ_BITFIELD(iph, ihl);
	}

	out->runs++;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
