/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The twelve programs of the bench's tracing objects (tracing_many.bpf.c,
 * tracing_core.bpf.c), each attached by its section alone: eight syscall
 * tracepoints (the enter and exit of getppid, getpid, openat and close),
 * two raw tracepoints (sys_enter, sys_exit) and two scheduler
 * tracepoints. Each calls count(SLOT), which the including file defines.
 */
#ifndef RAWBPF_TRACING_TWELVE_H
#define RAWBPF_TRACING_TWELVE_H

SEC("tp/syscalls/sys_enter_getppid")
int enter_getppid(void *ctx) { return count(0); }

SEC("tp/syscalls/sys_exit_getppid")
int exit_getppid(void *ctx) { return count(1); }

SEC("tp/syscalls/sys_enter_getpid")
int enter_getpid(void *ctx) { return count(2); }

SEC("tp/syscalls/sys_exit_getpid")
int exit_getpid(void *ctx) { return count(3); }

SEC("tp/syscalls/sys_enter_openat")
int enter_openat(void *ctx) { return count(4); }

SEC("tp/syscalls/sys_exit_openat")
int exit_openat(void *ctx) { return count(5); }

SEC("tp/syscalls/sys_enter_close")
int enter_close(void *ctx) { return count(6); }

SEC("tp/syscalls/sys_exit_close")
int exit_close(void *ctx) { return count(7); }

SEC("raw_tp/sys_enter")
int raw_sys_enter(struct bpf_raw_tracepoint_args *ctx) { return count(8); }

SEC("raw_tp/sys_exit")
int raw_sys_exit(struct bpf_raw_tracepoint_args *ctx) { return count(9); }

SEC("tp/sched/sched_process_exec")
int proc_exec(void *ctx) { return count(10); }

SEC("tp/sched/sched_process_exit")
int proc_exit(void *ctx) { return count(11); }

#endif
