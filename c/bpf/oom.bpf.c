// SPDX-License-Identifier: Apache-2.0
/*
 * oom.bpf.c - the OOM killer's victims.
 *
 * The kernel marks the victim (mark_victim, a BTF tracepoint passing the
 * victim task) with the victim's task lock held, before it prints its
 * report and reaps the memory: the counters read there are the report's.
 * The current task is the one whose allocation ran the OOM killer (the
 * victim itself when it was already exiting and is only marked, not
 * killed). Victims of processes that are not traced are not reported.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "pt_kinds.bpf.h"
#include "lib/filter.bpf.h"

/* Set by the loader before load: log2(page size) - 10, pages to KiB. */
const volatile __u32 pt_page_kb_shift = 2;

/* Before Linux 6.2, mm counters were atomics in struct mm_rss_stat. */
struct mm_rss_stat___pre62 {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));

struct mm_struct___pre62 {
	struct mm_rss_stat___pre62 rss_stat;
} __attribute__((preserve_access_index));

/* An mm counter (MM_*PAGES) in KiB, as get_mm_counter reads it. */
static __always_inline __u64 pt_mm_kb(struct mm_struct *mm, int member)
{
	__s64 pages;

	if (bpf_core_type_exists(struct mm_rss_stat___pre62))
		pages = BPF_CORE_READ((struct mm_struct___pre62 *)mm,
				      rss_stat.count[member].counter);
	else
		pages = BPF_CORE_READ(mm, rss_stat[member].count);
	return pages > 0 ? (__u64)pages << pt_page_kb_shift : 0;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(pt_oom_victim, struct task_struct *victim, uid_t uid)
{
	__u32 tgid = BPF_CORE_READ(victim, tgid);
	/* A kernel without the memory controller has no memcg: 0. */
	bool has_memcg = bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id);
	int memcg = has_memcg ? bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id) : 0;
	struct mm_struct *mm = BPF_CORE_READ(victim, mm);
	struct pt_oom_kill *r;
	struct pt_emit e;
	__u64 current = bpf_get_current_pid_tgid();

	if (!pt_other_task_traced(tgid, victim))
		return 0;
	r = pt_oom_kill_open(&e, (__u64)tgid << 32 | BPF_CORE_READ(victim, pid));
	if (!r)
		return 0;
	r->hdr.proc_start_ns = pt_task_boot_start(victim);
	BPF_CORE_READ_STR_INTO(&r->comm, victim, comm);
	r->cgroup_id = BPF_CORE_READ(victim, cgroups, dfl_cgrp, kn, id);
	if (has_memcg)
		r->memcg_id = BPF_CORE_READ(victim, cgroups, subsys[memcg], cgroup, kn, id);
	r->total_vm_kb = (__u64)BPF_CORE_READ(mm, total_vm) << pt_page_kb_shift;
	r->anon_rss_kb = pt_mm_kb(mm, MM_ANONPAGES);
	r->file_rss_kb = pt_mm_kb(mm, MM_FILEPAGES);
	r->shmem_rss_kb = pt_mm_kb(mm, MM_SHMEMPAGES);
	r->oom_score_adj = BPF_CORE_READ(victim, signal, oom_score_adj);
	r->uid = uid;
	r->trigger_pid = current >> 32;
	r->trigger_tid = (__u32)current;
	bpf_get_current_comm(r->trigger_comm, sizeof(r->trigger_comm));
	pt_oom_kill_commit(&e);
	return 0;
}
