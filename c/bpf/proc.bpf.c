// SPDX-License-Identifier: Apache-2.0
/*
 * proc.bpf.c - process lifecycle: exec, fork and exit, and the naming
 * decisions of the command-name filter (lib/filter.bpf.h).
 *
 * All attach as BTF tracepoints (tp_btf), which need neither kprobes nor a
 * mounted tracefs.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "pt_kinds.bpf.h"
#include "lib/call.bpf.h"

/* Set by the loader before load. */
const volatile bool pt_exec_events = false; /* false: pt_exec only decides names */
const volatile bool pt_fork_events = false; /* false: pt_fork only decides names */
const volatile bool pt_thread_exits = false;

/* A process matched the prefix but pt_named is full: its exit will be missed. */
static __always_inline void pt_count_untracked(void)
{
	struct pt_emit e;

	if (pt_emit_init(&e))
		pt_exit_count_untracked(&e);
}

/*
 * The tracepoints' tasks and bprm are BTF pointers: reads through them are
 * direct loads (CO-RE relocated, fault-safe), not a helper call per pointer
 * hop, which made up a quarter of an exec's cost.
 */

/* The executable's device (as stat(2) encodes it) and inode. */
static __always_inline void pt_exec_file(struct pt_exec *r, struct linux_binprm *bprm)
{
	struct inode *inode = bprm->file->f_inode;
	__u64 dev = inode->i_sb->s_dev;
	__u64 major = dev >> 20, minor = dev & 0xfffff;

	r->exe_dev = (minor & 0xff) | (major << 8) | ((minor & ~0xffull) << 12);
	r->exe_ino = inode->i_ino;
}

/* Copies filename and argv; the reservation is trimmed to what was written. */
static __always_inline void pt_exec_data(struct pt_emit *e, struct pt_exec *r,
					 struct task_struct *task, struct linux_binprm *bprm)
{
	struct mm_struct *mm = task->mm;
	__u64 arg_start = mm->arg_start;
	__u64 arg_end = mm->arg_end;
	__u64 argv_size = arg_end > arg_start ? arg_end - arg_start : 0;
	__u32 want = argv_size > pt_knob_argv_max ? pt_knob_argv_max : argv_size;
	long n;

	r->argv_size = argv_size > 0xffffffffULL ? 0xffffffffU : argv_size;
	r->code_start = mm->start_code;
	r->code_end = mm->end_code;
	pt_exec_file(r, bprm);
	if (!pt_exec_reserve(e, PT_EXEC_FILENAME_CAP + want))
		return;
	n = pt_exec_filename_kstr(e, bprm->filename);
	if (n == PT_EXEC_FILENAME_CAP - 1)
		pt_exec_set_filename_truncated(e);
	if (!want)
		return;
	if (pt_exec_argv_umem(e, (void *)arg_start, want) < 0)
		pt_exec_set_argv_fault(e);
	else if (want < argv_size)
		pt_exec_set_argv_truncated(e);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(pt_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid;
	__u32 tgid = pid_tgid >> 32;
	char comm[PT_COMM_LEN];
	struct pt_emit e;
	struct pt_exec *r;

	if (!pt_pid_traced(tgid) || (pt_ncgroups && !pt_current_in_cgroups()))
		return 0;
	bpf_get_current_comm(comm, sizeof(comm));
	if (pt_comm_prefix_len) {
		bool matched = pt_name_matches(comm);

		if (!pt_name_decide(tgid, pt_process_start(task), matched))
			pt_count_untracked();
		if (!matched)
			return 0;
	}
	if (!pt_exec_events)
		return 0;

	r = pt_exec_open(&e, pid_tgid);
	if (!r)
		return 0;
	uid_gid = bpf_get_current_uid_gid();
	r->ppid = task->real_parent->tgid;
	r->parent_start_ns = pt_task_boot_start(task->real_parent);
	r->uid = (__u32)uid_gid;
	r->gid = uid_gid >> 32;
	r->ns_pid = pt_ns_tgid(task);
	r->cgroup_id = bpf_get_current_cgroup_id();
	__builtin_memcpy(r->comm, comm, sizeof(comm));
	pt_exec_data(&e, r, task, bprm);
	pt_exec_commit(&e);
	return 0;
}

/* Reports a fork of a traced process (not the tracer's own). */
static __always_inline void pt_fork_report(struct task_struct *parent, struct task_struct *child,
					   __u32 ptgid, __u32 ctgid)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct pt_emit e;
	struct pt_fork *r;

	if (ptgid == pt_self_tgid || !pt_task_traced(ptgid, parent))
		return;
	r = pt_fork_open(&e, pid_tgid);
	if (!r)
		return;
	r->ppid = parent->real_parent->tgid;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	r->child_pid = ctgid;
	r->child_tid = child->pid;
	r->child_start_ns = pt_task_boot_start(child);
	if (ptgid == ctgid)
		pt_fork_set_thread(&e);
	pt_fork_commit(&e);
}

/* A fork: reported when asked, and a new process is named after the thread
 * that forked it (the command-name filter decides for it). */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(pt_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid;
	__u32 ctgid = child->tgid;
	char comm[PT_COMM_LEN];

	if (ptgid != ctgid && pt_track_names) {
		bpf_core_read(comm, sizeof(comm), &child->comm);
		if (pt_name_matches(comm) && !pt_name_decide(ctgid, child->start_time, true))
			pt_count_untracked();
	}
	if (pt_fork_events)
		pt_fork_report(parent, child, ptgid, ctgid);
	return 0;
}

/* Reports an exit; process_gone says the whole process ended. A thread of a
 * traced process that ends after its process' exit was reported (threads
 * of an exit_group end in parallel) is reported too. */
static __always_inline int pt_on_exit(struct task_struct *task, bool process_gone)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct task_struct *leader;
	struct pt_emit e;
	struct pt_exit *r;
	bool traced;
	__u64 start;

	if (!process_gone && !pt_thread_exits)
		return 0;
	traced = pt_task_traced(tgid, task);
	if (!traced && (process_gone || !pt_thread_exits || !pt_process_exited(tgid, task)))
		return 0;
	/* A process exit carries the process' name and start, whichever
	 * thread ends it; a thread exit the thread's own. */
	leader = process_gone ? task->group_leader : task;
	start = leader->start_time;
	if (traced && process_gone)
		pt_process_gone(tgid, start, pt_thread_exits);

	r = pt_exit_open(&e, pid_tgid);
	if (!r)
		return 0;
	r->ppid = task->real_parent->tgid;
	r->status = task->exit_code;
	r->start_ns = start;
	bpf_core_read(r->comm, sizeof(r->comm), &leader->comm);
	if (!process_gone)
		pt_exit_set_thread_exit(&e);
	pt_exit_commit(&e);
	return 0;
}

/* Kernels whose sched_process_exit passes group_dead: the thread that took
 * signal->live to zero, exactly one per process. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(pt_exit, struct task_struct *task, bool group_dead)
{
	return pt_on_exit(task, group_dead);
}

/*
 * The same from the classic tracepoint, whose record carries group_dead
 * where the kernel passes it. Its programs run with preemption off. A
 * tp_btf program runs with only migration off, and where tracepoints are
 * preemptible (Linux 7.x) a task preempted inside it makes the kernel skip
 * the program for every other task on that CPU meanwhile (counted only as
 * the program's recursion_misses): an exit_group's threads, woken together
 * on two CPUs, lost up to four of nine exits and the process exit so.
 */
struct trace_event_raw_sched_process_exit___pt {
	bool group_dead;
} __attribute__((preserve_access_index));

SEC("tracepoint/sched/sched_process_exit")
int pt_exit_tp(struct trace_event_raw_sched_process_exit___pt *ctx)
{
	return pt_on_exit(bpf_get_current_task_btf(), ctx->group_dead);
}

/* Older kernels: signal->live is already zero for every thread that exits
 * after the last decrement, and threads of an exit_group exit in parallel, so
 * several may see zero. The first to claim (signal_struct, start time)
 * reports the process exit; the start time keeps a reused signal_struct
 * address from matching. */
struct pt_exit_key {
	__u64 signal;
	__u64 start_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct pt_exit_key);
	__type(value, __u8);
	__uint(max_entries, 4096);
} pt_exit_seen SEC(".maps");

SEC("tp_btf/sched_process_exit")
int BPF_PROG(pt_exit_live, struct task_struct *task)
{
	struct pt_exit_key key = {};
	__u8 one = 1;
	bool gone = task->signal->live.counter == 0;

	if (gone) {
		key.signal = (__u64)task->signal;
		key.start_ns = pt_process_start(task);
		gone = bpf_map_update_elem(&pt_exit_seen, &key, &one, BPF_NOEXIST) == 0;
	}
	return pt_on_exit(task, gone);
}

/*
 * Failed execs. The execve and execveat syscall tracepoints (classic ones:
 * the loader mounts tracefs when it must) bracket each attempt
 * (lib/call.bpf.h): the entry keeps the arguments of a traced process'
 * attempt, the exit reports the attempt when it returned an error.
 */
/* Arguments of a failed exec read at most (each a piece of the argv field). */
#define PT_FAILED_ARGS_MAX 64

struct pt_argv_loop {
	struct pt_emit *e;
	const char *const *argv;
};

/* One argument of a failed exec (a bpf_loop step: 1 stops). */
static long pt_exec_failed_arg(__u64 i, void *ctx)
{
	struct pt_argv_loop *x = ctx;
	const char *arg = NULL;
	char next;
	long n;

	if (bpf_probe_read_user(&arg, sizeof(arg), &x->argv[i]) || !arg)
		return 1;
	n = pt_exec_failed_argv_upiece(x->e, arg);
	if (n < 0) {
		pt_exec_failed_set_argv_truncated(x->e); /* no room, or unreadable */
		return 1;
	}
	/* A piece that filled PT_PIECE_MAX was cut unless its NUL came there. */
	if (n == PT_PIECE_MAX && (bpf_probe_read_user(&next, 1, arg + PT_PIECE_MAX - 1) || next))
		pt_exec_failed_set_argv_truncated(x->e);
	return 0;
}

/* Appends argv[0..], pointer by pointer; flags what it could not keep. */
static __always_inline void pt_exec_failed_argv(struct pt_emit *e, const char *const *argv)
{
	struct pt_argv_loop x = { .e = e, .argv = argv };
	const char *more = NULL;

	if (bpf_loop(PT_FAILED_ARGS_MAX, pt_exec_failed_arg, &x, 0) == PT_FAILED_ARGS_MAX &&
	    !bpf_probe_read_user(&more, sizeof(more), &argv[PT_FAILED_ARGS_MAX]) && more)
		pt_exec_failed_set_argv_truncated(e);
}

/* The arguments an exec attempt keeps from its entry (struct pt_call). */
enum { PT_EXEC_FILENAME, PT_EXEC_ARGV };

/* An attempt of a traced process (not the tracer's): keep its arguments. */
static __always_inline int pt_exec_begin(__u64 filename, __u64 argv)
{
	struct pt_call *c = pt_call_enter(PT_KIND_EXEC_FAILED, PT_CTR_EXEC_FAILED_NOT_FOLLOWED);

	if (c) {
		c->args[PT_EXEC_FILENAME] = filename;
		c->args[PT_EXEC_ARGV] = argv;
	}
	return 0;
}

/* The attempt returned ret: report it if it failed. */
static __always_inline int pt_exec_end(long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_exec_failed *r;
	struct pt_call tried;
	struct pt_emit e;

	if (!pt_call_exit(PT_KIND_EXEC_FAILED, &tried) || ret >= 0 ||
	    !(r = pt_exec_failed_open(&e, bpf_get_current_pid_tgid())))
		return 0;
	r->ppid = task->real_parent->tgid;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	r->err = -ret;
	if (pt_exec_failed_reserve(&e, PT_EXEC_FAILED_DATA_MAX)) {
		if (pt_exec_failed_filename_ustr(&e, (const void *)tried.args[PT_EXEC_FILENAME]) ==
		    PT_EXEC_FAILED_FILENAME_CAP - 1)
			pt_exec_failed_set_filename_truncated(&e);
		pt_exec_failed_argv(&e, (const char *const *)tried.args[PT_EXEC_ARGV]);
	}
	pt_exec_failed_commit(&e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int pt_execve_enter(struct trace_event_raw_sys_enter *ctx)
{
	return pt_exec_begin(ctx->args[0], ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int pt_execveat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return pt_exec_begin(ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int pt_execve_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_exec_end(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int pt_execveat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_exec_end(ctx->ret);
}
