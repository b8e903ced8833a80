// SPDX-License-Identifier: Apache-2.0
/*
 * profile.bpf.c - CPU stack sampling of chosen processes.
 *
 * pf_sample runs on a software cpu-clock perf event of every online CPU.
 * The target filter comes first: a sample of a process that is not a target
 * leaves after one hash lookup. A target's kernel stack (return addresses)
 * is written by bpf_get_stack straight into this CPU's data pages, and so
 * is its user stack: a copy of the stack memory and the registers to unwind
 * it in userspace (the default), or the return addresses of the kernel's
 * frame-pointer walk. The metadata ring carries the fixed part.
 *
 * User addresses stay raw: the kernel's build-id lookup (BPF_F_USER_BUILD_ID)
 * takes the mmap lock and, from a timer interrupt, leaves its release to an
 * irq_work, a self-interrupt that cost ~14 us of a ~19 us sample on this
 * 2-vCPU VM. Userspace maps addresses to files with the mapping records,
 * which outlive the process.
 *
 * Targets (pf_targets, keyed by tgid) come from userspace at run time, from
 * the command-name watch list (an LPM trie checked at exec, so a process
 * matching a prefix is profiled from its first instruction with no round
 * trip to userspace), and optionally from forks of targets. A target leaves
 * when its process exits. Each entry carries its process' start time: an
 * entry that outlived its process (pid reused) is never applied to the new
 * process.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "pt_kinds.bpf.h"
#include "lib/task.bpf.h"

#define PT_PF_EXITING 0x00000004 /* PF_EXITING */
#define PT_PF_KTHREAD 0x00200000 /* PF_KTHREAD */
#define ENOENT 2
#define EFAULT 14

/* Set by the loader before load. */
const volatile bool pf_all = false; /* sample every process */
/* Copy the user registers and stack for unwinding in userspace, instead of
 * the kernel's frame-pointer walk. */
const volatile bool pf_stack_copy = false;
/* Off-CPU: the shortest sleep reported. */
const volatile __u64 pf_offcpu_min_ns = 1000000;

/* The most user stack an off-CPU sample keeps (the offcpu_stack_copy_max
 * knob's bound): it waits in the thread's storage while the thread sleeps. */
#define PF_OFFCPU_COPY_MAX 8192

/* Where a target's thread went to sleep, and when: kept in the thread's
 * storage from its switch out to its switch back in. */
struct pf_blocked {
	__u64 start_ns;
	__s32 kerr, uerr;
	__u32 klen, ulen; /* bytes of the stacks */
	__u64 kstack[127];
	__u64 ustack[127];		 /* the frame-pointer walk */
	__u64 user_ip, user_sp, user_bp; /* the stack copy: registers, */
	__u32 copy_len;			 /* bytes, */
	__u8 copy[PF_OFFCPU_COPY_MAX];	 /* and the stack from user_sp up */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pf_blocked);
} pf_blocked SEC(".maps");

/*
 * Where the thread's storage would be made with kmalloc, it is kept in a
 * hash map by tid instead. pf_switch runs under the run queue's lock, and
 * before 6.4 the kernel allocates task storage with kmalloc (GFP_ATOMIC):
 * an allocation that has to wake kswapd wakes it through the run queue
 * lock this CPU already holds, and the CPU spins on it for ever (a soft
 * lockup, seen on 6.1). A hash map without preallocation takes its elements
 * from the BPF allocator (since 6.1), which never allocates in the caller's
 * context: when its per-CPU cache is empty, or the map holds PF_BLOCKED_MAX
 * threads, the update fails and the sleep is counted (sleeps_untracked).
 * The loader picks the hash map unless the kernel's BTF shows task storage
 * allocated by the BPF allocator (6.4 on). Later kernels (sid's 7.2)
 * allocate it with kmalloc_nolock, which fails under that lock: there task
 * storage gave no off-CPU sample at all, and the hash map every one.
 *
 * An entry lives from a thread's first sleep to its exit: pf_exit deletes
 * it, exiting threads (PF_EXITING, set before that tracepoint) make none,
 * and an exec by a thread other than the leader, which takes the leader's
 * pid, drops the one of its old tid (pf_exec).
 */
const volatile bool pf_blocked_by_tid = false;
#define PF_BLOCKED_MAX 16384

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32); /* tid; deleted when the thread exits */
	__type(value, struct pf_blocked);
	__uint(max_entries, PF_BLOCKED_MAX);
} pf_blocked_tids SEC(".maps");

/* The zeroed value a new pf_blocked_tids element is made from. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct pf_blocked);
	__uint(max_entries, 1);
} pf_blocked_zero SEC(".maps");

/* The thread's blocked state, made for it if create and missing; NULL when
 * it has none (or none could be made). */
static __always_inline struct pf_blocked *pf_blocked_of(struct task_struct *task, bool create)
{
	__u32 tid = task->pid, zero = 0;
	struct pf_blocked *b, *blank;

	if (!pf_blocked_by_tid)
		return bpf_task_storage_get(&pf_blocked, task, 0,
					    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	b = bpf_map_lookup_elem(&pf_blocked_tids, &tid);
	if (b || !create)
		return b;
	blank = bpf_map_lookup_elem(&pf_blocked_zero, &zero);
	if (!blank || bpf_map_update_elem(&pf_blocked_tids, &tid, blank, BPF_NOEXIST))
		return NULL;
	return bpf_map_lookup_elem(&pf_blocked_tids, &tid);
}

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct pt_target);
	__uint(max_entries, PT_TARGETS_MAX);
} pf_targets SEC(".maps");

/* Watched command-name prefixes; the value is the prefix length in bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct pt_watch_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, PT_WATCH_MAX);
} pf_watch SEC(".maps");

/* Is tgid a target? Drops an entry left by an earlier process of that pid. */
static __always_inline bool pf_is_target(__u32 tgid)
{
	struct pt_target *t = bpf_map_lookup_elem(&pf_targets, &tgid);
	__u64 start;

	if (!t)
		return false;
	start = pt_process_start(bpf_get_current_task_btf());
	if (t->start_ns == start)
		return true;
	if (t->start_ns) {
		bpf_map_delete_elem(&pf_targets, &tgid);
		return false;
	}
	/* Added by userspace, which cannot read the kernel's start time: the
	 * first sample records it (userspace checked the pid was alive after
	 * adding it, and exits remove entries, so this is the same process). */
	t->start_ns = start;
	return true;
}

/* Threads whose stack mapping is known: bpf_find_vma is the one way to
 * learn where a thread's stack ends, and from a timer interrupt it leaves
 * the mmap lock to an irq_work, a self-interrupt that costs ~6 us on this
 * 2-vCPU VM (of ~10 us per copied sample). Remembered per thread, it runs
 * once per thread stack instead of once per sample. */
#define PF_STACKS_MAX 16384

struct pf_stack_span {
	__u64 mm; /* the address space it was found in: an exec changes it */
	__u64 start, end;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u32); /* tid */
	__type(value, struct pf_stack_span);
	__uint(max_entries, PF_STACKS_MAX);
} pf_stacks SEC(".maps");

/* bpf_find_vma's callback: the mapping that holds the stack pointer. */
static long pf_vma_span(struct task_struct *task, struct vm_area_struct *vma, void *span)
{
	((struct pf_stack_span *)span)->start = vma->vm_start;
	((struct pf_stack_span *)span)->end = vma->vm_end;
	return 0;
}

/*
 * Where the stack that holds sp ends (exclusive), or 0 when unknown. A
 * process' first thread on its initial stack needs no lookup: its frames
 * end at mm->start_stack, where argc sits below argv, envp and the auxv,
 * so the 8 bytes of argc are still inside the mapping. Other stacks come
 * from pf_stacks, checked against the address space and the span.
 */
static __always_inline __u64 pf_stack_end(struct task_struct *task, __u64 sp, __u64 cap,
					  bool *cached)
{
	struct mm_struct *mm = task->mm;
	struct pf_stack_span span = {}, *known;
	__u32 tid = task->pid;
	__u64 top;

	*cached = false;
	if (!mm)
		return 0;
	top = mm->start_stack;
	if (task->pid == task->tgid && sp < top && top - sp < cap)
		return top + 8;
	known = bpf_map_lookup_elem(&pf_stacks, &tid);
	if (known && known->mm == (__u64)mm && known->start <= sp && sp < known->end) {
		*cached = true;
		return known->end;
	}
	if (bpf_find_vma(task, sp, pf_vma_span, &span, 0) || span.end <= sp)
		return 0;
	span.mm = (__u64)mm;
	bpf_map_update_elem(&pf_stacks, &tid, &span, BPF_ANY);
	return span.end;
}

/*
 * The user registers (the ones saved when the thread entered the kernel,
 * which are its user registers whatever the sample interrupted) and the
 * stack from sp up to the end of its mapping, at most the cap. Returns the
 * bytes copied, or a negative errno (a kernel thread: -ENOENT).
 */
static __always_inline long pf_copy_user_stack(struct pt_emit *e, struct pt_sample *r)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 end, n = pt_knob_stack_copy_max;
	struct pt_regs *regs;
	long got = -EFAULT;
	bool cached;

	if (task->flags & PT_PF_KTHREAD)
		return -ENOENT;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	r->user_ip = PT_REGS_IP_CORE(regs);
	r->user_sp = PT_REGS_SP_CORE(regs);
	r->user_bp = PT_REGS_FP_CORE(regs);
	/* Not past the stack's mapping: a read across its end fails whole. */
	end = pf_stack_end(task, r->user_sp, n, &cached);
	if (end > r->user_sp && end - r->user_sp < n)
		n = end - r->user_sp;
	got = pt_sample_user_stack_copy_umem(e, (const void *)r->user_sp, n);
	if (got >= 0)
		return got;
	/* A remembered stack that no longer ends there, or a mapping that
	 * could not be looked at (its lock was busy): smaller copies until one
	 * fits, and the stack is looked up again next time. */
	if (cached) {
		__u32 tid = task->pid;

		bpf_map_delete_elem(&pf_stacks, &tid);
	}
	for (int i = 0; i < 4 && got < 0 && n >= 128; i++) {
		n /= 2;
		got = pt_sample_user_stack_copy_umem(e, (const void *)r->user_sp, n);
	}
	return got;
}

SEC("perf_event")
int pf_sample(struct bpf_perf_event_data *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct pt_sample *r;
	struct pt_emit e;
	long n;

	if (!tgid)
		return 0; /* the idle task */
	if (!pf_all && !pf_is_target(tgid))
		return 0;
	r = pt_sample_open(&e, pid_tgid);
	if (!r)
		return 0;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	r->cgroup_id = bpf_get_current_cgroup_id();
	if (pt_sample_reserve(&e, PT_SAMPLE_DATA_MAX)) {
		n = pt_sample_kernel_stack_get(&e, ctx, 0);
		if (n < 0) {
			r->kstack_err = n;
			pt_sample_count_kernel_stack_errors(&e);
		} else if (n > 0) {
			pt_sample_set_kernel_mode(&e);
		}
		n = pf_stack_copy ? pf_copy_user_stack(&e, r)
				  : pt_sample_user_stack_get(&e, ctx, BPF_F_USER_STACK);
		if (n < 0) {
			r->ustack_err = n;
			pt_sample_count_user_stack_errors(&e);
		}
	}
	pt_sample_commit(&e);
	return 0;
}

/* The user registers and stack of a thread going to sleep (the current
 * task), into its storage, as pf_copy_user_stack copies a sample's. */
static __always_inline long pf_copy_blocked_stack(struct task_struct *task, struct pf_blocked *b)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	__u64 end, n = pt_knob_offcpu_stack_copy_max;
	bool cached;

	b->user_ip = PT_REGS_IP_CORE(regs);
	b->user_sp = PT_REGS_SP_CORE(regs);
	b->user_bp = PT_REGS_FP_CORE(regs);
	b->copy_len = 0;
	end = pf_stack_end(task, b->user_sp, n, &cached);
	if (end > b->user_sp && end - b->user_sp < n)
		n = end - b->user_sp;
	if (n > PF_OFFCPU_COPY_MAX)
		n = PF_OFFCPU_COPY_MAX;
	for (int i = 0; i < 5 && n >= 64; i++) {
		if (!bpf_probe_read_user(b->copy, n, (const void *)b->user_sp)) {
			b->copy_len = n;
			return 0;
		}
		if (cached) {
			__u32 tid = task->pid;

			bpf_map_delete_elem(&pf_stacks, &tid);
			cached = false;
		}
		n >>= 1;
	}
	return -EFAULT;
}

/* A target's thread goes to sleep (not preempted: it waits for something):
 * its stacks and the time, from its own context. */
static __always_inline void pf_going_to_sleep(void *ctx, struct task_struct *prev)
{
	struct pf_blocked *b = pf_blocked_of(prev, true);
	struct pt_emit e;
	long n;

	if (!b) {
		if (pt_emit_init(&e))
			pt_offcpu_count_sleeps_untracked(&e);
		return;
	}
	n = bpf_get_stack(ctx, b->kstack, sizeof(b->kstack), 0);
	b->kerr = n < 0 ? n : 0;
	b->klen = n > 0 ? n : 0;
	if (pf_stack_copy)
		n = pf_copy_blocked_stack(prev, b);
	else
		n = bpf_get_stack(ctx, b->ustack, sizeof(b->ustack), BPF_F_USER_STACK);
	b->uerr = n < 0 ? n : 0;
	b->ulen = !pf_stack_copy && n > 0 ? n : 0;
	b->start_ns = bpf_ktime_get_ns();
}

/* A thread that slept runs again: its sleep, if long enough, is reported
 * for it (though the program runs in the task switched out). */
static __always_inline void pf_woken(struct task_struct *next)
{
	struct pf_blocked *b = pf_blocked_of(next, false);
	struct pt_offcpu *r;
	struct pt_emit e;
	__u64 blocked;

	if (!b || !b->start_ns)
		return;
	blocked = bpf_ktime_get_ns() - b->start_ns;
	b->start_ns = 0;
	if (blocked < pf_offcpu_min_ns)
		return;
	r = pt_offcpu_open(&e, (__u64)next->tgid << 32 | (__u32)next->pid);
	if (!r)
		return;
	r->hdr.proc_start_ns = pt_task_boot_start(next);
	bpf_core_read(r->comm, sizeof(r->comm), &next->comm);
	r->cgroup_id = BPF_CORE_READ(next, cgroups, dfl_cgrp, kn, id);
	r->blocked_ns = blocked;
	r->kstack_err = b->kerr;
	r->ustack_err = b->uerr;
	r->user_ip = b->user_ip;
	r->user_sp = b->user_sp;
	r->user_bp = b->user_bp;
	if (pt_offcpu_reserve(&e, PT_OFFCPU_DATA_MAX)) {
		__u32 copied = b->copy_len;

		if (copied > PF_OFFCPU_COPY_MAX)
			copied = PF_OFFCPU_COPY_MAX;
		pt_offcpu_kernel_stack_kmem(&e, b->kstack, b->klen & 1023);
		pt_offcpu_user_stack_kmem(&e, b->ustack, b->ulen & 1023);
		pt_offcpu_user_stack_copy_kmem(&e, b->copy, copied);
	}
	pt_offcpu_commit(&e);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(pf_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	__u32 tgid = prev->tgid;

	/* prev_state 0 is TASK_RUNNING: a preempted task did not block. An
	 * exiting thread's sleeps are left out: its exit (pf_exit) may have
	 * dropped its state already, and its last switch is no sleep at all. */
	if (!preempt && prev_state && tgid && !(prev->flags & (PT_PF_KTHREAD | PT_PF_EXITING)) &&
	    (pf_all || pf_is_target(tgid)))
		pf_going_to_sleep(ctx, prev);
	pf_woken(next);
	return 0;
}

/* Adds tgid as a kernel-made target and reports it. */
static __always_inline void pf_trigger(struct task_struct *task, __u32 tgid, __u32 tid,
				       __u32 reason, __u32 prefix_len)
{
	struct pt_target t = { .start_ns = pt_process_start(task), .reason = reason };
	struct pt_target *old = bpf_map_lookup_elem(&pf_targets, &tgid);
	struct pt_trigger *r;
	struct pt_emit e;

	if (old && old->start_ns == t.start_ns)
		return; /* already a target */
	/* BPF_ANY: replaces an entry of an earlier process of this pid. */
	if (bpf_map_update_elem(&pf_targets, &tgid, &t, BPF_ANY)) {
		if (pt_emit_init(&e))
			pt_trigger_count_targets_full(&e);
		return;
	}
	r = pt_trigger_open(&e, (__u64)tgid << 32 | tid);
	if (!r)
		return;
	r->hdr.proc_start_ns = pt_task_boot_start(task);
	r->reason = reason;
	r->ppid = BPF_CORE_READ(task, real_parent, tgid);
	r->start_ns = t.start_ns;
	bpf_core_read(r->comm, sizeof(r->comm), &task->comm);
	r->prefix_len = prefix_len;
	pt_trigger_commit(&e);
}

/* An exec whose new command name starts with a watched prefix. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(pf_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct pt_watch_key key = { .prefixlen = PT_COMM_LEN * 8 };
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 *prefix_len, old_tid = old_pid;

	/* A thread that was not the leader execs and takes the leader's pid:
	 * its state under the old tid would never be dropped. */
	if (pf_blocked_by_tid && old_tid != (__u32)pid_tgid)
		bpf_map_delete_elem(&pf_blocked_tids, &old_tid);
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	prefix_len = bpf_map_lookup_elem(&pf_watch, &key);
	if (!prefix_len)
		return 0;
	pf_trigger(task, pid_tgid >> 32, (__u32)pid_tgid, PT_TRIGGER_REASON_COMM_PREFIX,
		   *prefix_len);
	return 0;
}

/* A new process forked by a target (loaded only when children are profiled). */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(pf_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);

	if (ptgid == ctgid)
		return 0; /* a new thread, not a new process */
	/* The tracepoint runs in the parent, so this also drops a stale entry
	 * of an earlier process with the parent's pid. */
	if (!pf_is_target(ptgid))
		return 0;
	pf_trigger(child, ctgid, BPF_CORE_READ(child, pid), PT_TRIGGER_REASON_CHILD, 0);
	return 0;
}

/* The last thread of a process leaves: so does its target entry (pids are
 * reused). Every thread exiting after signal->live reached zero may delete;
 * deleting twice is harmless. Every thread also drops its blocked state
 * where that is kept by tid. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(pf_exit, struct task_struct *task)
{
	__u32 tgid, tid = task->pid;

	if (pf_blocked_by_tid) /* task storage goes with the task by itself */
		bpf_map_delete_elem(&pf_blocked_tids, &tid);
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	tgid = BPF_CORE_READ(task, tgid);
	bpf_map_delete_elem(&pf_targets, &tgid);
	return 0;
}
