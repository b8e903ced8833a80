// SPDX-License-Identifier: Apache-2.0
/*
 * stats.c - counters, summed over CPUs from the mapped control blocks, and
 * the loss reports (PT_KIND_LOST records) that put the kernel's losses in
 * the stream where they happened.
 */
#include <string.h>
#include <bpf/bpf.h>
#include "internal.h"
#include "proctap.skel.h"

/* A loaded program's info from the kernel; false when it has none. */
static bool stats_prog_info(struct bpf_program *prog, struct bpf_prog_info *info)
{
	__u32 len = sizeof(*info);
	int fd = bpf_program__fd(prog);

	memset(info, 0, sizeof(*info));
	return fd >= 0 && bpf_prog_get_info_by_fd(fd, info, &len) == 0;
}

/* Runs of the loaded programs the kernel skipped (recursion_misses): a
 * system call per program, so only proctap_stats asks. */
static __u64 stats_missed_runs(struct proctap *pt)
{
	struct bpf_program *prog;
	struct bpf_prog_info info;
	__u64 missed = 0;

	if (!pt->skel || !pt->skel->obj)
		return 0;
	bpf_object__for_each_program(prog, pt->skel->obj)
		if (stats_prog_info(prog, &info))
			missed += info.recursion_misses;
	return missed;
}

void proctap_stats(struct proctap *pt, struct proctap_stats *out)
{
	pt_stats_read(pt, out);
	out->missed_runs = stats_missed_runs(pt);
}

void pt_stats_read(struct proctap *pt, struct proctap_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (__u32 cpu = 0; pt->ctl && cpu < pt->ncpus; cpu++) {
		const volatile struct pt_cpu_ctl *c = &pt->ctl[cpu];

		for (int k = 0; k < PT_KIND_MAX; k++) {
			out->emitted[k] += c->emitted[k];
			out->meta_lost[k] += c->meta_lost[k];
			out->data_lost[k] += c->data_lost[k];
			out->data_bytes[k] += c->data_bytes[k];
		}
		for (int i = 0; i < PT_COUNTERS_MAX; i++)
			out->counters[i] += c->counters[i];
	}
	out->meta_lost[PT_KIND_MAPPING] += pt_mappings_lost(pt);
	for (int k = 0; k < PT_KIND_MAX; k++)
		out->meta_lost[k] += atomic_load_explicit(&pt->loader_lost[k],
							  memory_order_relaxed);
	for (int k = 0; k < PT_KIND_MAX; k++)
		out->delivered[k] = atomic_load_explicit(&pt->delivered[k], memory_order_relaxed);
	out->invalid = atomic_load_explicit(&pt->invalid, memory_order_relaxed);
	out->oversize = atomic_load_explicit(&pt->oversize, memory_order_relaxed);
	out->abandoned = atomic_load_explicit(&pt->abandoned, memory_order_relaxed);
	out->ring_stalls = atomic_load_explicit(&pt->ring_stalls, memory_order_relaxed);
	out->handovers = atomic_load_explicit(&pt->handovers, memory_order_relaxed);
	out->wakeups = atomic_load_explicit(&pt->wakeups, memory_order_relaxed);
	out->sleeps = atomic_load_explicit(&pt->sleeps, memory_order_relaxed);
	out->nested = atomic_load_explicit(&pt->nested, memory_order_relaxed);
	out->perf_events = pt->nperf;
	if (pt->wake) {
		out->doorbells = ((volatile struct pt_wake *)pt->wake)->doorbells;
		out->doorbell_lost = ((volatile struct pt_wake *)pt->wake)->doorbell_lost;
	}
}

/* Events lost whole (metadata ring full), per enabled kind, summed over
 * CPUs (every poll round reads these: only the kinds that can lose). */
void pt_meta_lost(struct proctap *pt, __u64 *lost)
{
	memset(lost, 0, PT_KIND_MAX * sizeof(*lost));
	for (__u32 cpu = 0; cpu < pt->ncpus; cpu++)
		for (int i = 0; i < pt->nkinds; i++)
			lost[pt->kinds[i]] += __atomic_load_n(&pt->ctl[cpu].meta_lost[pt->kinds[i]],
							      __ATOMIC_RELAXED);
	lost[PT_KIND_MAPPING] += pt_mappings_lost(pt); /* the side band's ring */
	for (int i = 0; i < pt->nkinds; i++)
		lost[pt->kinds[i]] += atomic_load_explicit(&pt->loader_lost[pt->kinds[i]],
							   memory_order_relaxed);
}

/*
 * Puts losses in the stream: for each kind whose metadata-lost counter grew
 * since the last report, one PT_KIND_LOST record with the difference, in the
 * buffer of that kind's route. The counters are summed before the ring is
 * read, so a report follows the records that were sent before the loss it
 * reports.
 */
void pt_report_losses(struct proctap *pt, const __u64 *lost)
{
	for (int i = 0; i < pt->nkinds; i++) {
		__u32 k = pt->kinds[i];
		struct pt_lost l;

		if (lost[k] <= pt->loss_reported[k])
			continue;
		memset(&l, 0, sizeof(l));
		l.hdr.kind = PT_KIND_LOST;
		l.hdr.ts_ns = pt_ts(CLOCK_MONOTONIC);
		l.lost_kind = k;
		l.records = lost[k] - pt->loss_reported[k];
		pt->loss_reported[k] = lost[k];
		pt_append(pt, k, &l.hdr, sizeof(l), NULL);
	}
}

int proctap_prog_ids(struct proctap *pt, __u32 *ids, int max)
{
	struct bpf_program *prog;
	struct bpf_prog_info info;
	int n = 0;

	bpf_object__for_each_program(prog, pt->skel->obj)
		if (n < max && stats_prog_info(prog, &info))
			ids[n++] = info.id;
	return n;
}
