/* SPDX-License-Identifier: Apache-2.0 */
/*
 * filter.bpf.h - which processes are traced: a pid list, a command-name
 * prefix decided per process, and cgroups (v2: a process in one of them or
 * below). A process is traced when it passes every filter that is set.
 *
 * The prefix is matched when a process gets its name: at its exec, or at
 * its fork (a child is named after the thread that forked it). A process
 * that matched is remembered in pt_named (by tgid, with its start time)
 * until it exits, so its exit is reported whatever its threads call
 * themselves by then (PR_SET_NAME), and a later process that reuses the
 * pid never inherits the decision. A process already running when tracing
 * starts is entered by the loader from /proc. An exec into a name that does
 * not match leaves the filter: events follow what its exec matched.
 *
 * Filter first: a process that is not traced costs one map lookup.
 */
#ifndef PT_FILTER_BPF_H
#define PT_FILTER_BPF_H

#include "lib/task.bpf.h"

/* Set by the loader before load. */
const volatile bool pt_filter_pids __weak = false;
const volatile __u32 pt_comm_prefix_len __weak = 0;
const volatile char pt_comm_prefix[PT_COMM_LEN] __weak = {};
/* Whether pt_named is kept (a prefix is set and a kind needs the process'
 * decision after its exec: exits, forks). */
const volatile bool pt_track_names __weak = false;
/* The tracer's own process: never traced by the kinds that could feed its
 * own work back into the stream (its forks, its writes, its files). */
const volatile __u32 pt_self_tgid __weak = 0;

/* The cgroup filter: pt_ncgroups cgroup v2 ids, and the same cgroups in
 * pt_cgroups (entered by the loader), where the kernel's own ancestry test
 * reads them for the current task. */
const volatile __u32 pt_ncgroups __weak = 0;
const volatile __u64 pt_cgroup_ids[PT_MAX_CGROUPS] __weak = {};

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, PT_MAX_CGROUPS);
} pt_cgroups SEC(".maps") __weak;

/* Traced tgids when pt_filter_pids is set. Whole-process exits remove theirs. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u8);
	__uint(max_entries, PT_MAX_PIDS);
} pt_pids SEC(".maps") __weak;

/* Processes whose name matched the prefix, by tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct pt_named);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, PT_NAMED_MAX);
} pt_named SEC(".maps") __weak;

/*
 * Traced processes whose exit was reported, kept a little while (LRU): the
 * threads of an exit_group end in parallel, and some report their own exit
 * after the thread that ended the process did, when the process has left
 * the filters already. Used with thread exits only.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u32);
	__type(value, __u64); /* the process' start */
	__uint(max_entries, 4096);
} pt_exited SEC(".maps") __weak;

/*
 * A negative test before the maps above, for processes the filters leave
 * out: bit tgid % 64 of word tgid / 64 is set for every tgid ever entered
 * in pt_pids or pt_named (by the loader before attach, by the programs
 * after). Bits are never cleared: a stale one (a reused pid) only costs
 * the full check. The verifier inlines an array lookup, so a process left
 * out costs no map helper call. Sized by the loader from pid_max.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} pt_maybe SEC(".maps") __weak;

static __always_inline bool pt_maybe_traced(__u32 tgid)
{
	__u32 word = tgid / 64;
	__u64 *w = bpf_map_lookup_elem(&pt_maybe, &word);

	return w && (*w >> (tgid % 64)) & 1;
}

static __always_inline void pt_maybe_mark(__u32 tgid)
{
	__u32 word = tgid / 64;
	__u64 *w = bpf_map_lookup_elem(&pt_maybe, &word);

	if (w)
		__sync_fetch_and_or(w, 1ULL << (tgid % 64));
}

static __always_inline bool pt_pid_traced(__u32 tgid)
{
	return !pt_filter_pids || bpf_map_lookup_elem(&pt_pids, &tgid);
}

static __always_inline bool pt_name_matches(const char *comm)
{
	return pt_comm_has_prefix(comm, pt_comm_prefix, pt_comm_prefix_len);
}

/*
 * Records the prefix decision for a process that just got its name.
 * Returns false when it matched but pt_named is full (the caller counts it:
 * that process' exit will not be reported).
 */
static __always_inline bool pt_name_decide(__u32 tgid, __u64 start_ns, bool matched)
{
	struct pt_named v = { .start_ns = start_ns };

	if (!pt_track_names)
		return true;
	if (!matched) {
		bpf_map_delete_elem(&pt_named, &tgid);
		return true;
	}
	pt_maybe_mark(tgid);
	return bpf_map_update_elem(&pt_named, &tgid, &v, BPF_ANY) == 0;
}

/*
 * Did the task's process match when it got its name? An entry of an
 * earlier process of the same pid is dropped; one the loader entered from
 * /proc (start 0) is taken as this process (the loader checked it was
 * alive after entering it, and exits remove entries). The process' start
 * is read only when an entry has one to compare.
 */
static __always_inline bool pt_name_matched(__u32 tgid, struct task_struct *task)
{
	struct pt_named *v = bpf_map_lookup_elem(&pt_named, &tgid);

	if (!v)
		return false;
	if (v->start_ns && v->start_ns != pt_process_start(task)) {
		bpf_map_delete_elem(&pt_named, &tgid);
		return false;
	}
	return true;
}

/* Is the current task in one of the filter's cgroups, or below one? One
 * helper call per cgroup (the kernel compares its ancestor at that level). */
static __always_inline bool pt_current_in_cgroups(void)
{
	for (__u32 i = 0; i < PT_MAX_CGROUPS && i < pt_ncgroups; i++)
		if (bpf_current_task_under_cgroup(&pt_cgroups, i) == 1)
			return true;
	return false;
}

/* Deepest cgroup v2 nesting the walk below follows. */
#define PT_CGROUP_DEPTH_MAX 32

/* The same test for another task (an OOM victim), by walking its cgroup's
 * ancestors by id: slower, for rare events only. */
static __always_inline bool pt_task_in_cgroups(struct task_struct *task)
{
	struct cgroup *cg = BPF_CORE_READ(task, cgroups, dfl_cgrp);

	for (int depth = 0; depth < PT_CGROUP_DEPTH_MAX && cg; depth++) {
		__u64 id = BPF_CORE_READ(cg, kn, id);

		for (__u32 i = 0; i < PT_MAX_CGROUPS && i < pt_ncgroups; i++)
			if (id == pt_cgroup_ids[i])
				return true;
		/* A cgroup's css (its first member) links to its parent's. */
		cg = (struct cgroup *)BPF_CORE_READ(cg, self.parent);
	}
	return false;
}

/* The pid and name filters for tgid (task is one of its threads). */
static __always_inline bool pt_process_listed(__u32 tgid, struct task_struct *task)
{
	return pt_pid_traced(tgid) && (!pt_track_names || pt_name_matched(tgid, task));
}

/* Does the current task's process pass the filters? */
static __always_inline bool pt_task_traced(__u32 tgid, struct task_struct *task)
{
	if ((pt_filter_pids || pt_track_names) && !pt_maybe_traced(tgid))
		return false;
	if (pt_ncgroups && !pt_current_in_cgroups())
		return false;
	return pt_process_listed(tgid, task);
}

/* Does another task's process (not the current one's) pass them? */
static __always_inline bool pt_other_task_traced(__u32 tgid, struct task_struct *task)
{
	if ((pt_filter_pids || pt_track_names) && !pt_maybe_traced(tgid))
		return false;
	if (pt_ncgroups && !pt_task_in_cgroups(task))
		return false;
	return pt_process_listed(tgid, task);
}

/* The current task when its process is traced and not the tracer's own;
 * else NULL. */
static __always_inline struct task_struct *pt_traced_current(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = task->tgid; /* a load: cheaper than another helper call */

	return tgid != pt_self_tgid && pt_task_traced(tgid, task) ? task : NULL;
}

/* The process (started at start_ns) had its exit reported: it leaves the
 * filters (pids are reused), and is remembered a while for the late exits
 * of its threads. */
static __always_inline void pt_process_gone(__u32 tgid, __u64 start_ns, bool thread_exits)
{
	if (thread_exits && (pt_filter_pids || pt_track_names))
		bpf_map_update_elem(&pt_exited, &tgid, &start_ns, BPF_ANY);
	if (pt_filter_pids)
		bpf_map_delete_elem(&pt_pids, &tgid);
	if (pt_track_names)
		bpf_map_delete_elem(&pt_named, &tgid);
}

/* Was the process traced when its exit was reported (see pt_exited)? */
static __always_inline bool pt_process_exited(__u32 tgid, struct task_struct *task)
{
	__u64 *start = bpf_map_lookup_elem(&pt_exited, &tgid);

	return start && *start == pt_process_start(task);
}

#endif /* PT_FILTER_BPF_H */
