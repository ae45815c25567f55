/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The link lister behind `rawbpf list` (loader/src/link/kernel_links.rs):
 * an iterator over the kernel's BPF links (iter/bpf_link) that writes one
 * fixed-size binary record per link, with what BPF_OBJ_GET_INFO_BY_FD
 * would say of it: its id, type, program id and name, and the words of
 * `struct bpf_link_info`'s union that rawbpf shows as its target, or the
 * name a raw tracepoint or a tracepoint's perf link holds. One read()
 * lists every link, where asking bpf(2) costs five calls per link.
 *
 * A record without RECORD_DECODED is a link this program does not decode
 * (its type is not below, its layout is one this kernel does not have, or
 * a name did not fit): rawbpf asks bpf(2) about that link alone. Kernel
 * structures are our own fragments, relocated by CO-RE. Each kind's struct
 * is read only where the kernel has it (type guards: 6.1 has no netfilter,
 * struct_ops or tcx links), and what moved across kernels is guarded
 * (`attach_type` joined struct bpf_link in 6.17; before, each kind kept its
 * own, and those kinds, and perf links, are left to bpf(2) there).
 */
#include "rawbpf.h"

static long (* const bpf_probe_read_kernel_str)(void *dst, __u32 size, const void *unsafe_ptr) = (void *)115;

/* The record: loader/src/link/kernel_links.rs reads the same layout. */
#define RECORD_MAGIC 0x6b6e6c72 /* "rlnk" */
#define RECORD_DECODED 1
#define RECORD_NAME 2
#define NAME_LEN 124

struct link_record {
	__u32 magic;
	__u32 id;
	__u32 type;
	__u32 prog_id;
	__u32 flags;
	/* struct bpf_link_info's union, as u32 words (what rawbpf shows). */
	__u32 words[7];
	char prog_name[16];
	char name[NAME_LEN];
};

/* enum bpf_link_type */
#define LINK_RAW_TRACEPOINT 1
#define LINK_TRACING 2
#define LINK_CGROUP 3
#define LINK_ITER 4
#define LINK_NETNS 5
#define LINK_XDP 6
#define LINK_PERF_EVENT 7
#define LINK_STRUCT_OPS 9
#define LINK_NETFILTER 10
#define LINK_TCX 11
/* enum bpf_prog_type */
#define PROG_TRACEPOINT 5
#define PROG_PERF_EVENT 7
/* enum bpf_perf_event_type */
#define PERF_EVENT_TRACEPOINT 5
#define PERF_EVENT_EVENT 6

/* --- The kernel's structures, as far as we read them --- */
/* Enums for CO-RE's sake (an enum field matches only an enum). */
enum bpf_link_type { BPF_LINK_TYPE_UNSPEC };
enum bpf_attach_type { BPF_CGROUP_INET_INGRESS };
enum bpf_prog_type { BPF_PROG_TYPE_UNSPEC };

struct bpf_prog_aux {
	__u32 id;
	char name[16];
} __attribute__((preserve_access_index));

struct bpf_prog {
	enum bpf_prog_type type;
	struct bpf_prog_aux *aux;
} __attribute__((preserve_access_index));

struct bpf_link {
	__u32 id;
	enum bpf_link_type type;
	struct bpf_prog *prog;
	/* 6.17+ */
	enum bpf_attach_type attach_type;
} __attribute__((preserve_access_index));

struct tracepoint {
	const char *name;
} __attribute__((preserve_access_index));

struct bpf_raw_event_map {
	struct tracepoint *tp;
} __attribute__((preserve_access_index));

struct bpf_raw_tp_link {
	struct bpf_link link;
	struct bpf_raw_event_map *btp;
} __attribute__((preserve_access_index));

struct bpf_trampoline {
	__u64 key;
} __attribute__((preserve_access_index));

struct bpf_tramp_link {
	struct bpf_link link;
} __attribute__((preserve_access_index));

struct bpf_tracing_link {
	struct bpf_tramp_link link;
	struct bpf_trampoline *trampoline;
} __attribute__((preserve_access_index));

struct kernfs_node {
	__u64 id;
} __attribute__((preserve_access_index));

struct cgroup {
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));

struct bpf_cgroup_link {
	struct bpf_link link;
	struct cgroup *cgroup;
} __attribute__((preserve_access_index));

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

struct bpf_netns_link {
	struct bpf_link link;
	struct net *net;
} __attribute__((preserve_access_index));

struct net_device {
	int ifindex;
} __attribute__((preserve_access_index));

struct bpf_xdp_link {
	struct bpf_link link;
	struct net_device *dev;
} __attribute__((preserve_access_index));

struct tcx_link {
	struct bpf_link link;
	struct net_device *dev;
} __attribute__((preserve_access_index));

struct nf_hook_ops {
	__u8 pf;
	unsigned int hooknum;
	int priority;
} __attribute__((preserve_access_index));

struct bpf_nf_link {
	struct bpf_link link;
	struct nf_hook_ops hook_ops;
} __attribute__((preserve_access_index));

struct bpf_map {
	__u32 id;
} __attribute__((preserve_access_index));

struct bpf_struct_ops_link {
	struct bpf_link link;
	struct bpf_map *map;
} __attribute__((preserve_access_index));

struct trace_event_class {
	const char *system;
} __attribute__((preserve_access_index));

/* name and tp share a union: which one holds depends on the event. */
struct trace_event_call {
	struct trace_event_class *class;
	const char *name;
	struct tracepoint *tp;
} __attribute__((preserve_access_index));

struct perf_event {
	struct trace_event_call *tp_event;
} __attribute__((preserve_access_index));

struct file {
	void *private_data;
} __attribute__((preserve_access_index));

struct bpf_perf_link {
	struct bpf_link link;
	struct file *perf_file;
} __attribute__((preserve_access_index));

struct bpf_iter__bpf_link {
	struct bpf_iter_meta *meta;
	struct bpf_link *link;
};

/* Reads a kernel string into the record's name; 0 when it fits whole. */
static __always_inline int read_name(struct link_record *r, const char *name)
{
	long n = bpf_probe_read_kernel_str(r->name, sizeof(r->name), name);

	/* A name of exactly NAME_LEN - 1 bytes may have been cut: asked again. */
	if (n < 0 || n >= (long)sizeof(r->name))
		return -1;
	if (n > 1)
		r->flags |= RECORD_NAME;
	return 0;
}

/*
 * A tracepoint program's perf link. Such a program runs on a static
 * tracepoint's event or on a syscall's (the kernel refuses it on probe
 * events), and the kernel names the first by its struct tracepoint and the
 * second by the event's own name (bpf_get_perf_event_info()). Syscall
 * events are the only ones of the class system "syscalls" (the raw
 * tracepoints are "raw_syscalls"); the flag that says "static tracepoint"
 * is an anonymous enum whose value moved across kernels, so it is not
 * read. 0 when decoded.
 */
static __always_inline int perf_tracepoint(struct link_record *r, struct bpf_perf_link *l)
{
	struct perf_event *event = BPF_CORE_READ(l, perf_file, private_data);
	struct trace_event_call *call = BPF_CORE_READ(event, tp_event);
	char system[10] = {};
	const char *name;

	if (!call)
		return -1;
	bpf_probe_read_kernel_str(system, sizeof(system), BPF_CORE_READ(call, class, system));
	if (system[0] == 's' && system[1] == 'y' && system[2] == 's' && system[3] == 'c' &&
	    system[4] == 'a' && system[5] == 'l' && system[6] == 'l' && system[7] == 's' &&
	    system[8] == 0)
		name = BPF_CORE_READ(call, name);
	else
		name = BPF_CORE_READ(call, tp, name);
	r->words[0] = PERF_EVENT_TRACEPOINT;
	return read_name(r, name);
}

/* The union's words of each kind rawbpf decodes; 0 when decoded. */
static __always_inline int decode(struct link_record *r, struct bpf_link *link, __u32 prog_type)
{
	/* Kinds whose attach type bpf_link holds (6.17+); before, each kept
	 * its own. */
	int attach_type_here = bpf_core_field_exists(link->attach_type);
	__u32 attach_type = attach_type_here ? BPF_CORE_READ(link, attach_type) : 0;

	switch (r->type) {
	case LINK_RAW_TRACEPOINT:
		if (!bpf_core_type_exists(struct bpf_raw_tp_link))
			return -1;
		return read_name(r, BPF_CORE_READ((struct bpf_raw_tp_link *)link, btp, tp, name));
	case LINK_ITER:
		return 0;
	case LINK_XDP: {
		struct net_device *dev;

		if (!bpf_core_type_exists(struct bpf_xdp_link))
			return -1;
		dev = BPF_CORE_READ((struct bpf_xdp_link *)link, dev);

		r->words[0] = dev ? BPF_CORE_READ(dev, ifindex) : 0;
		return 0;
	}
	case LINK_NETFILTER: {
		struct bpf_nf_link *nf = (struct bpf_nf_link *)link;

		if (!bpf_core_type_exists(struct bpf_nf_link))
			return -1;

		r->words[0] = BPF_CORE_READ(nf, hook_ops.pf);
		r->words[1] = BPF_CORE_READ(nf, hook_ops.hooknum);
		r->words[2] = BPF_CORE_READ(nf, hook_ops.priority);
		return 0;
	}
	case LINK_STRUCT_OPS: {
		struct bpf_map *map;

		if (!bpf_core_type_exists(struct bpf_struct_ops_link))
			return -1;
		map = BPF_CORE_READ((struct bpf_struct_ops_link *)link, map);

		r->words[0] = map ? BPF_CORE_READ(map, id) : 0;
		return 0;
	}
	case LINK_PERF_EVENT:
		if (!attach_type_here || !bpf_core_type_exists(struct bpf_perf_link))
			return -1;
		if (prog_type == PROG_PERF_EVENT) {
			r->words[0] = PERF_EVENT_EVENT;
			return 0;
		}
		if (prog_type == PROG_TRACEPOINT)
			return perf_tracepoint(r, (struct bpf_perf_link *)link);
		return -1;
	}
	if (!attach_type_here)
		return -1;
	switch (r->type) {
	case LINK_TRACING: {
		struct bpf_trampoline *tr;
		__u64 key;

		if (!bpf_core_type_exists(struct bpf_tracing_link))
			return -1;
		tr = BPF_CORE_READ((struct bpf_tracing_link *)link, trampoline);
		key = tr ? BPF_CORE_READ(tr, key) : 0;

		r->words[0] = attach_type;
		r->words[1] = key >> 32;
		r->words[2] = key & 0x7fffffff;
		return 0;
	}
	case LINK_CGROUP: {
		struct cgroup *cg;
		__u64 id;

		if (!bpf_core_type_exists(struct bpf_cgroup_link))
			return -1;
		cg = BPF_CORE_READ((struct bpf_cgroup_link *)link, cgroup);
		id = cg ? BPF_CORE_READ(cg, kn, id) : 0;

		r->words[0] = id;
		r->words[1] = id >> 32;
		r->words[2] = attach_type;
		return 0;
	}
	case LINK_NETNS: {
		struct net *net;

		if (!bpf_core_type_exists(struct bpf_netns_link))
			return -1;
		net = BPF_CORE_READ((struct bpf_netns_link *)link, net);

		r->words[0] = net ? BPF_CORE_READ(net, ns.inum) : 0;
		r->words[1] = attach_type;
		return 0;
	}
	case LINK_TCX: {
		struct net_device *dev;

		if (!bpf_core_type_exists(struct tcx_link))
			return -1;
		dev = BPF_CORE_READ((struct tcx_link *)link, dev);

		r->words[0] = dev ? BPF_CORE_READ(dev, ifindex) : 0;
		r->words[1] = attach_type;
		return 0;
	}
	}
	return -1;
}

SEC("iter/bpf_link")
int rawbpf_links(struct bpf_iter__bpf_link *ctx)
{
	struct bpf_link *link = ctx->link;
	struct link_record r = {};
	struct bpf_prog *prog;
	__u32 prog_type = 0;

	if (!link)
		return 0;
	r.magic = RECORD_MAGIC;
	r.id = BPF_CORE_READ(link, id);
	r.type = BPF_CORE_READ(link, type);
	prog = BPF_CORE_READ(link, prog);
	if (prog) {
		struct bpf_prog_aux *aux = BPF_CORE_READ(prog, aux);

		prog_type = BPF_CORE_READ(prog, type);
		r.prog_id = BPF_CORE_READ(aux, id);
		bpf_probe_read_kernel(r.prog_name, sizeof(r.prog_name),
				      __builtin_preserve_access_index(&aux->name));
	}
	if (decode(&r, link, prog_type) == 0)
		r.flags |= RECORD_DECODED;
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
