// SPDX-License-Identifier: Apache-2.0
/*
 * profile.bpf.c - CPU stack sampling of chosen processes.
 *
 * pf_sample runs on a software cpu-clock perf event of every online CPU.
 * The target filter comes first: a sample of a process that is not a target
 * leaves after one hash lookup. A target's kernel stack (return addresses)
 * and user stack (build id + file offset per frame, or the raw address where
 * the kernel could not read a build id) are written by bpf_get_stack straight
 * into this CPU's data pages; the metadata ring carries the fixed part.
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
#include "transport.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader before load. */
const volatile bool pf_all = false; /* sample every process */

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

static __always_inline __u64 pf_start_ns(struct task_struct *task)
{
	return BPF_CORE_READ(task, group_leader, start_time);
}

/* Is tgid a target? Drops an entry left by an earlier process of that pid. */
static __always_inline bool pf_is_target(__u32 tgid)
{
	struct pt_target *t = bpf_map_lookup_elem(&pf_targets, &tgid);
	__u64 start;

	if (!t)
		return false;
	start = pf_start_ns(bpf_get_current_task_btf());
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

SEC("perf_event")
int pf_sample(struct bpf_perf_event_data *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct pt_cpu c;
	struct pt_sample *s;
	bool urgent = false;
	long klen, ulen;
	__u32 cpu, used;
	__s64 pos;
	__u8 *dst;

	if (!tgid)
		return 0; /* the idle task */
	if (!pf_all && !pf_is_target(tgid))
		return 0;
	if (!pt_cpu_get(&c, &cpu))
		return 0;

	s = bpf_ringbuf_reserve(&pt_meta, sizeof(*s), 0);
	if (!s) {
		pt_count(&c.ctl->meta_lost[PT_KIND_SAMPLE], 1);
		return 0;
	}
	pt_hdr_init(&s->hdr, PT_KIND_SAMPLE, cpu, pid_tgid, bpf_ktime_get_ns());
	bpf_get_current_comm(s->comm, sizeof(s->comm));
	s->cgroup_id = bpf_get_current_cgroup_id();
	s->kstack_len = 0;
	s->ustack_len = 0;
	s->kstack_err = 0;
	s->ustack_err = 0;

	pos = pt_data_reserve(c.ctl, PT_SAMPLE_DATA_MAX, &urgent);
	if (pos < 0) {
		s->hdr.flags |= PT_F_DATA_LOST;
		pt_count(&c.ctl->data_lost[PT_KIND_SAMPLE], 1);
		goto submit;
	}
	dst = c.pages + (pos & pt_ring_mask);

	klen = bpf_get_stack(ctx, dst, PT_KSTACK_BYTES, 0);
	if (klen < 0) {
		s->kstack_err = klen;
		pt_count(&c.ctl->kstack_err, 1);
		klen = 0;
	}
	if (klen > PT_KSTACK_BYTES)
		klen = 0; /* cannot happen; bounds the offset below for the verifier */
	if (klen)
		s->hdr.flags |= PT_F_KERNEL_MODE;

	ulen = bpf_get_stack(ctx, dst + klen, PT_USTACK_BYTES,
			     BPF_F_USER_STACK | BPF_F_USER_BUILD_ID);
	if (ulen < 0) {
		s->ustack_err = ulen;
		pt_count(&c.ctl->ustack_err, 1);
		ulen = 0;
	}
	if (ulen > PT_USTACK_BYTES)
		ulen = 0;

	used = klen + ulen;
	s->kstack_len = klen;
	s->ustack_len = ulen;
	s->hdr.data_pos = pos;
	s->hdr.data_len = used;
	s->hdr.data_span = pt_data_trim(c.ctl, pos, PT_SAMPLE_DATA_MAX, used);
	pt_count(&c.ctl->data_bytes, used);
submit:
	pt_submit_lazy(s, sizeof(*s), urgent);
	pt_count(&c.ctl->emitted[PT_KIND_SAMPLE], 1);
	return 0;
}

/* Adds tgid as a kernel-made target and reports it. */
static __always_inline void pf_trigger(struct task_struct *task, __u32 tgid, __u32 tid,
				       __u32 reason, __u32 prefix_len)
{
	struct pt_target t = { .start_ns = pf_start_ns(task), .reason = reason };
	struct pt_target *old = bpf_map_lookup_elem(&pf_targets, &tgid);
	struct pt_trigger *e;
	struct pt_cpu c;
	__u32 cpu;

	if (old && old->start_ns == t.start_ns)
		return; /* already a target */
	if (!pt_cpu_get(&c, &cpu))
		return;
	/* BPF_ANY: replaces an entry of an earlier process of this pid. */
	if (bpf_map_update_elem(&pf_targets, &tgid, &t, BPF_ANY)) {
		pt_count(&c.ctl->targets_full, 1);
		return;
	}
	e = bpf_ringbuf_reserve(&pt_meta, sizeof(*e), 0);
	if (!e) {
		pt_count(&c.ctl->meta_lost[PT_KIND_TRIGGER], 1);
		return;
	}
	pt_hdr_init(&e->hdr, PT_KIND_TRIGGER, cpu, (__u64)tgid << 32 | tid, bpf_ktime_get_ns());
	e->reason = reason;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->start_ns = t.start_ns;
	bpf_probe_read_kernel(e->comm, sizeof(e->comm), task->comm);
	e->prefix_len = prefix_len;
	e->trigger_pad = 0;
	pt_submit(e, sizeof(*e), false);
	pt_count(&c.ctl->emitted[PT_KIND_TRIGGER], 1);
}

/* An exec whose new command name starts with a watched prefix. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(pf_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct pt_watch_key key = { .prefixlen = PT_COMM_LEN * 8 };
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 *prefix_len;

	bpf_get_current_comm(key.comm, sizeof(key.comm));
	prefix_len = bpf_map_lookup_elem(&pf_watch, &key);
	if (!prefix_len)
		return 0;
	pf_trigger(task, pid_tgid >> 32, (__u32)pid_tgid, PT_TRIGGER_COMM, *prefix_len);
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
	pf_trigger(child, ctgid, BPF_CORE_READ(child, pid), PT_TRIGGER_CHILD, 0);
	return 0;
}

/* The last thread of a process leaves: so does its target entry (pids are
 * reused). Every thread exiting after signal->live reached zero may delete;
 * deleting twice is harmless. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(pf_exit, struct task_struct *task)
{
	__u32 tgid;

	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	tgid = BPF_CORE_READ(task, tgid);
	bpf_map_delete_elem(&pf_targets, &tgid);
	return 0;
}
