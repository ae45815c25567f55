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
static __u64 (* const bpf_get_current_task)(void) = (void *)35;
static long (* const bpf_probe_read_kernel)(void *dst, __u32 size, const void *unsafe_ptr) = (void *)113;
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

/* --- Externs and weak symbols (libbpf's spelling) --- */
#ifndef __kconfig
#define __kconfig __attribute__((section(".kconfig")))
#endif
#ifndef __ksym
#define __ksym __attribute__((section(".ksyms")))
#endif
#ifndef __weak
#define __weak __attribute__((weak))
#endif

/*
 * --- CO-RE: compile once, run everywhere ---
 *
 * Each builtin below makes clang record a relocation in .BTF.ext (the
 * instruction, a local BTF type and an access string such as "0:2:1"); the
 * loader rewrites that instruction with the running kernel's answer, found
 * in its BTF by name (a "___suffix" flavor on the local name is ignored).
 * A relocation the kernel cannot satisfy poisons its instruction: the
 * program loads as long as the verifier can see it is never reached, so
 * guard such uses with bpf_core_field_exists() and friends.
 *
 * The macro names are libbpf's public ones; the second argument of each
 * builtin is a kind within that builtin's family, with clang's numbering
 * (the .BTF.ext relocation kinds 0-12 follow from the family and this).
 */

/* __builtin_preserve_field_info(): relocation kinds 0-5. */
#define BPF_FIELD_BYTE_OFFSET 0
#define BPF_FIELD_BYTE_SIZE 1
#define BPF_FIELD_EXISTS 2
#define BPF_FIELD_SIGNED 3
#define BPF_FIELD_LSHIFT_U64 4
#define BPF_FIELD_RSHIFT_U64 5
/* __builtin_btf_type_id(): kinds 6 (local) and 7 (target). */
#define BPF_TYPE_ID_LOCAL 0
#define BPF_TYPE_ID_TARGET 1
/* __builtin_preserve_type_info(): kinds 8, 9 and 12. */
#define BPF_TYPE_EXISTS 0
#define BPF_TYPE_SIZE 1
#define BPF_TYPE_MATCHES 2
/* __builtin_preserve_enum_value(): kinds 10 and 11. */
#define BPF_ENUMVAL_EXISTS 0
#define BPF_ENUMVAL_VALUE 1

/* Argument counting for the macros that take 1..4 names. */
#define ___rb_pick5(_1, _2, _3, _4, _5, n, ...) n
#define ___rb_nargs(...) ___rb_pick5(__VA_ARGS__, 5, 4, 3, 2, 1, 0)
#define ___rb_paste(a, b) a##b
#define ___rb_join(a, b) ___rb_paste(a, b) /* expands b first */
#define ___rb_by_nargs(base, ...) ___rb_join(base, ___rb_nargs(__VA_ARGS__))

/*
 * A field is named either by an expression, bpf_core_field_size(p->a.b),
 * or by a type and a member path, bpf_core_field_size(struct s, a.b).
 */
#define ___rb_field1(expr) (expr)
#define ___rb_field2(type, member) (((typeof(type) *)0)->member)
#define ___rb_field(...) ___rb_by_nargs(___rb_field, __VA_ARGS__)(__VA_ARGS__)

/* 1 if the kernel's type has the field (0 is a fine answer, never a failure). */
#define bpf_core_field_exists(...) \
	__builtin_preserve_field_info(___rb_field(__VA_ARGS__), BPF_FIELD_EXISTS)
/* The field's size in bytes in the kernel's type (an array's whole size). */
#define bpf_core_field_size(...) \
	__builtin_preserve_field_info(___rb_field(__VA_ARGS__), BPF_FIELD_BYTE_SIZE)
/* The field's byte offset in the kernel's type (nested paths add up). */
#define bpf_core_field_offset(...) \
	__builtin_preserve_field_info(___rb_field(__VA_ARGS__), BPF_FIELD_BYTE_OFFSET)

/* 1 if the kernel has a type of this kind and name. */
#define bpf_core_type_exists(type) \
	__builtin_preserve_type_info(*(typeof(type) *)0, BPF_TYPE_EXISTS)
/* The kernel's size of the type. */
#define bpf_core_type_size(type) \
	__builtin_preserve_type_info(*(typeof(type) *)0, BPF_TYPE_SIZE)
/* 1 if the kernel's type has the local type's shape (members by name, kinds, sizes). */
#define bpf_core_type_matches(type) \
	__builtin_preserve_type_info(*(typeof(type) *)0, BPF_TYPE_MATCHES)
/* The type's BTF id in this object's BTF, or in the kernel's. */
#define bpf_core_type_id_local(type) \
	__builtin_btf_type_id(*(typeof(type) *)0, BPF_TYPE_ID_LOCAL)
#define bpf_core_type_id_kernel(type) \
	__builtin_btf_type_id(*(typeof(type) *)0, BPF_TYPE_ID_TARGET)

/* 1 if the kernel's enum has the enumerator; its value there. */
#define bpf_core_enum_value_exists(enum_type, enumerator) \
	__builtin_preserve_enum_value(*(typeof(enum_type) *)enumerator, BPF_ENUMVAL_EXISTS)
#define bpf_core_enum_value(enum_type, enumerator) \
	__builtin_preserve_enum_value(*(typeof(enum_type) *)enumerator, BPF_ENUMVAL_VALUE)

/*
 * BPF_CORE_READ(src, a, b, c, d): src->a->b->c->d, each step read from
 * kernel memory with bpf_probe_read_kernel() at the kernel's offset of that
 * member. A step may be a member path: BPF_CORE_READ(task, se.vruntime).
 * A failed read leaves that step zero. Each level has its own temporaries,
 * so nesting never shadows a name the caller passed in.
 */
#define ___rb_probe(dst, src, member)                                          \
	bpf_probe_read_kernel((void *)(dst), sizeof(*(dst)),                  \
			      (const void *)__builtin_preserve_access_index(&(src)->member))
#define ___rb_read1(s, a)                                                      \
	({                                                                     \
		typeof((s)->a) ___rb_v1 = {0};                                 \
		___rb_probe(&___rb_v1, s, a);                                  \
		___rb_v1;                                                      \
	})
#define ___rb_read2(s, a, b)                                                   \
	({                                                                     \
		typeof((s)->a) ___rb_p2 = ___rb_read1(s, a);                   \
		typeof(___rb_p2->b) ___rb_v2 = {0};                            \
		___rb_probe(&___rb_v2, ___rb_p2, b);                           \
		___rb_v2;                                                      \
	})
#define ___rb_read3(s, a, b, c)                                                \
	({                                                                     \
		typeof((s)->a->b) ___rb_p3 = ___rb_read2(s, a, b);             \
		typeof(___rb_p3->c) ___rb_v3 = {0};                            \
		___rb_probe(&___rb_v3, ___rb_p3, c);                           \
		___rb_v3;                                                      \
	})
#define ___rb_read4(s, a, b, c, d)                                             \
	({                                                                     \
		typeof((s)->a->b->c) ___rb_p4 = ___rb_read3(s, a, b, c);       \
		typeof(___rb_p4->d) ___rb_v4 = {0};                            \
		___rb_probe(&___rb_v4, ___rb_p4, d);                           \
		___rb_v4;                                                      \
	})
#define BPF_CORE_READ(src, ...) ___rb_by_nargs(___rb_read, __VA_ARGS__)(src, __VA_ARGS__)

/*
 * BPF_CORE_READ_BITFIELD(s, field): a bitfield (or any integer field) read
 * directly through s (memory the program may dereference: packet, map
 * value, context), with the kernel's byte offset, load size and shifts.
 * The load size is a relocated constant: the verifier follows only the
 * matching case.
 */
#define BPF_CORE_READ_BITFIELD(s, field)                                       \
	({                                                                     \
		const void *___rb_at = (const void *)(s) +                     \
			__builtin_preserve_field_info((s)->field, BPF_FIELD_BYTE_OFFSET); \
		__u64 ___rb_bits = 0;                                          \
		/* keep the pointer arithmetic: no folding into the loads */   \
		asm volatile("" : "+r"(___rb_at));                             \
		switch (__builtin_preserve_field_info((s)->field, BPF_FIELD_BYTE_SIZE)) { \
		case 1: ___rb_bits = *(const __u8 *)___rb_at; break;          \
		case 2: ___rb_bits = *(const __u16 *)___rb_at; break;         \
		case 4: ___rb_bits = *(const __u32 *)___rb_at; break;         \
		case 8: ___rb_bits = *(const __u64 *)___rb_at; break;         \
		}                                                              \
		___rb_bits <<= __builtin_preserve_field_info((s)->field, BPF_FIELD_LSHIFT_U64); \
		if (__builtin_preserve_field_info((s)->field, BPF_FIELD_SIGNED)) \
			___rb_bits = (__u64)((__s64)___rb_bits >>              \
				__builtin_preserve_field_info((s)->field, BPF_FIELD_RSHIFT_U64)); \
		else                                                           \
			___rb_bits >>= __builtin_preserve_field_info((s)->field, BPF_FIELD_RSHIFT_U64); \
		___rb_bits;                                                    \
	})

/* Byte order: BPF here is little-endian (-target bpfel). */
#define bpf_htons(x) ((__be16)__builtin_bswap16(x))
#define bpf_ntohs(x) ((__u16)__builtin_bswap16(x))
#define bpf_htonl(x) ((__be32)__builtin_bswap32(x))
#define bpf_ntohl(x) ((__u32)__builtin_bswap32(x))

/* --- BPF iterators (5.8+): what the kernel's bpf_iter_meta holds --- */
static long (* const bpf_seq_printf)(void *m, const char *fmt, __u32 fmt_size, const void *data, __u32 data_len) = (void *)126;
static long (* const bpf_seq_write)(void *m, const void *data, __u32 len) = (void *)127;

struct bpf_iter_meta {
	void *seq;
	__u64 session_id;
	__u64 seq_num;
};

/* --- Reading user memory, and a link's cookie (USDT specs) --- */
static long (* const bpf_probe_read_user)(void *dst, __u32 size, const void *unsafe_ptr) = (void *)112;
static __u64 (* const bpf_get_attach_cookie)(void *ctx) = (void *)174;

/* --- Socket maps, socket and netfilter verdicts (net_*.bpf.c) --- */
#define BPF_MAP_TYPE_SOCKMAP 15
#define BPF_MAP_TYPE_SOCKHASH 18
#define SK_DROP 0
#define SK_PASS 1
#define BPF_OK 0
#define BPF_DROP 2
#define NF_DROP 0
#define NF_ACCEPT 1

#endif /* RAWBPF_H */
