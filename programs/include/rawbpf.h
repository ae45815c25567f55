/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * rawbpf.h — the minimal header our BPF programs are built with.
 *
 * No libbpf, kernel or libc headers: everything a program here needs is
 * declared below, with the kernel's uapi values (include/uapi/linux/bpf.h,
 * if_ether.h, ip.h, udp.h, pkt_cls.h). Compiled with -nostdinc.
 */
#ifndef RAWBPF_H
#define RAWBPF_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

#define NULL ((void *)0)
#define offsetof(t, m) __builtin_offsetof(t, m)

/* --- Sections, inlining, BTF map definitions (as libbpf's bpf_helpers.h) --- */
#define SEC(name) __attribute__((section(name), used))
#define __always_inline inline __attribute__((always_inline))
#define __noinline __attribute__((noinline))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define __array(name, val) typeof(val) *name[]

#define LIBBPF_PIN_NONE 0
#define LIBBPF_PIN_BY_NAME 1

/*
 * Externs the loader resolves (as libbpf's bpf_helpers.h spells them):
 * __kconfig values come from the kernel's config and the loader (.kconfig),
 * __ksym ones from the kernel's BTF or /proc/kallsyms (.ksyms). A __weak
 * one the kernel lacks reads as 0 (a kfunc: its address is NULL).
 */
#define __kconfig __attribute__((section(".kconfig")))
#define __ksym __attribute__((section(".ksyms")))
#define __weak __attribute__((weak))
#define bpf_ksym_exists(sym) (!!(sym))
typedef _Bool bool;
#define true 1
#define false 0
/* The loader's values for tristate CONFIG_ options (y, m, n). */
enum libbpf_tristate {
	TRI_NO = 0,
	TRI_YES = 1,
	TRI_MODULE = 2,
};

/* Legacy map definitions in SEC("maps"). */
struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

/* --- enum bpf_map_type --- */
#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PROG_ARRAY 3
#define BPF_MAP_TYPE_PERF_EVENT_ARRAY 4
#define BPF_MAP_TYPE_PERCPU_HASH 5
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_LRU_HASH 9
#define BPF_MAP_TYPE_ARRAY_OF_MAPS 12
#define BPF_MAP_TYPE_HASH_OF_MAPS 13
#define BPF_MAP_TYPE_RINGBUF 27

/* map_flags */
#define BPF_F_NO_PREALLOC (1U << 0)
/* bpf_map_update_elem flags */
#define BPF_ANY 0
/* bpf_perf_event_output flags: the running CPU's slot */
#define BPF_F_CURRENT_CPU 0xffffffffULL

/* --- Helpers, by their ids in enum bpf_func_id --- */
static void *(* const bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (* const bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static long (* const bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static __u64 (* const bpf_ktime_get_ns)(void) = (void *)5;
static long (* const bpf_trace_printk)(const char *fmt, __u32 fmt_size, ...) = (void *)6;
static __u32 (* const bpf_get_prandom_u32)(void) = (void *)7;
static __u32 (* const bpf_get_smp_processor_id)(void) = (void *)8;
static long (* const bpf_skb_store_bytes)(void *skb, __u32 offset, const void *from, __u32 len, __u64 flags) = (void *)9;
static long (* const bpf_l3_csum_replace)(void *skb, __u32 offset, __u64 from, __u64 to, __u64 size) = (void *)10;
static long (* const bpf_l4_csum_replace)(void *skb, __u32 offset, __u64 from, __u64 to, __u64 flags) = (void *)11;
static long (* const bpf_tail_call)(void *ctx, void *prog_array_map, __u32 index) = (void *)12;
static __u64 (* const bpf_get_current_pid_tgid)(void) = (void *)14;
static long (* const bpf_perf_event_output)(void *ctx, void *map, __u64 flags, void *data, __u64 size) = (void *)25;
static long (* const bpf_skb_load_bytes)(const void *skb, __u32 offset, void *to, __u32 len) = (void *)26;
static void *(* const bpf_per_cpu_ptr)(const void *percpu_ptr, __u32 cpu) = (void *)153;
static void *(* const bpf_this_cpu_ptr)(const void *percpu_ptr) = (void *)154;
static long (* const bpf_ringbuf_output)(void *ringbuf, void *data, __u64 size, __u64 flags) = (void *)130;
static long (* const bpf_loop)(__u32 nr_loops, void *callback_fn, void *callback_ctx, __u64 flags) = (void *)181;

/*
 * --- Program contexts (uapi layouts; offsets matter) ---
 * __sk_buff stops at data_meta (offset 140); the kernel's goes on with
 * flow_keys, tstamp, wire_len, gso_segs, sk, gso_size, tstamp_type, hwtstamp.
 */
struct __sk_buff {
	__u32 len;
	__u32 pkt_type;
	__u32 mark;
	__u32 queue_mapping;
	__u32 protocol;
	__u32 vlan_present;
	__u32 vlan_tci;
	__u32 vlan_proto;
	__u32 priority;
	__u32 ingress_ifindex;
	__u32 ifindex;
	__u32 tc_index;
	__u32 cb[5];
	__u32 hash;
	__u32 tc_classid;
	__u32 data;
	__u32 data_end;
	__u32 napi_id;
	__u32 family;
	__u32 remote_ip4;
	__u32 local_ip4;
	__u32 remote_ip6[4];
	__u32 local_ip6[4];
	__u32 remote_port;
	__u32 local_port;
	__u32 data_meta;
};

struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};

/* Opaque contexts of tracing programs. */
struct pt_regs;

/* A raw tracepoint's context: its arguments, each widened to 64 bits. */
struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

/* --- Return codes --- */
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define XDP_ABORTED 0
#define XDP_DROP 1
#define XDP_PASS 2
#define XDP_TX 3

/* --- Packet headers --- */
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define IPPROTO_UDP 17

struct ethhdr {
	__u8 h_dest[6];
	__u8 h_source[6];
	__be16 h_proto;
};

struct iphdr {
	__u8 ihl : 4, version : 4;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__u16 check;
	__be32 saddr;
	__be32 daddr;
};

struct udphdr {
	__be16 source;
	__be16 dest;
	__be16 len;
	__u16 check;
};

/* Byte order: BPF here is little-endian (-target bpfel). */
#define bpf_htons(x) ((__be16)__builtin_bswap16(x))
#define bpf_ntohs(x) ((__u16)__builtin_bswap16(x))
#define bpf_htonl(x) ((__be32)__builtin_bswap32(x))
#define bpf_ntohl(x) ((__u32)__builtin_bswap32(x))

#endif /* RAWBPF_H */
