// SPDX-License-Identifier: Apache-2.0
/*
 * profile.c - the profile family (samples, triggers): the sampler on every
 * online CPU's cpu-clock perf event, and the run-time target API.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/perf_event.h>
#include <bpf/bpf.h>
#include "internal.h"
#include "proctap.skel.h"

static const char *const profile_maps[] = { "pf_targets", "pf_watch", NULL };

static void profile_resolve(struct proctap_config *c)
{
	if (!c->profile_hz)
		c->profile_hz = PT_PROFILE_HZ_DEFAULT;
}

static int profile_check(const struct proctap_config *c, struct proctap_error *err)
{
	__u64 both = PROCTAP_EVENT(PT_KIND_SAMPLE) | PROCTAP_EVENT(PT_KIND_TRIGGER);

	/* One profiler: its exit program (declared by triggers) keeps the
	 * target table clean for samples, and triggers need the sampler. */
	if ((c->events & both) != both)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "events", NULL,
			       "samples and triggers come together (the profiler): enable both");
	if (c->profile_unwind > PROCTAP_UNWIND_STACK_COPY)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "profile_unwind", NULL,
			       "profile_unwind %u is not a proctap_unwind", c->profile_unwind);
	if (c->profile_hz < 1 || c->profile_hz > PT_PROFILE_HZ_MAX)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "profile_hz", NULL,
			       "profile_hz %u is outside 1..%u samples per second", c->profile_hz,
			       PT_PROFILE_HZ_MAX);
	return PROCTAP_OK;
}

/*
 * Whether the blocked state goes in the hash map by tid: unless task storage
 * comes from the BPF allocator (selem_ma, 6.4 on), safe in any context.
 * Before 6.4 it comes from kmalloc, which can deadlock under the run-queue
 * lock; the kernels that dropped the BPF allocator (sid's 7.2) use
 * kmalloc_nolock, which fails there: on 7.2 task storage gave no off-CPU
 * sample at all, the hash map every one.
 */
static bool profile_blocked_by_tid(void)
{
	return !pt_btf_has_member("bpf_local_storage_map", "selem_ma");
}

static int profile_configure(struct proctap *pt, struct proctap_error *err)
{
	pt->skel->rodata->pf_all = pt->cfg.profile_all != 0;
	pt->skel->rodata->pf_stack_copy = pt->cfg.profile_unwind == PROCTAP_UNWIND_STACK_COPY;
	pt->skel->rodata->pf_offcpu_min_ns = (__u64)(pt->cfg.offcpu_min_us ? pt->cfg.offcpu_min_us
									   : 1000) *
					     1000;
	pt_set_autoload(pt, "pf_fork", pt->cfg.profile_children != 0);
	/* Task storage made under sched_switch's run-queue lock must not come
	 * from kmalloc (profile.bpf.c, pf_blocked_tids). */
	pt->skel->rodata->pf_blocked_by_tid = profile_blocked_by_tid();
	if (!pt->skel->rodata->pf_blocked_by_tid)
		bpf_map__set_max_entries(pt->skel->maps.pf_blocked_tids, 1);
	return PROCTAP_OK;
}

static void profile_detach(struct proctap *pt)
{
	for (int i = 0; i < pt->nperf; i++) {
		bpf_link__destroy(pt->perf_links[i]); /* closes its perf event too */
		pt->perf_links[i] = NULL;
	}
}

static void profile_close(struct proctap *pt)
{
	profile_detach(pt);
	pt_mappings_close(pt);
	free(pt->perf_links);
	pt->perf_links = NULL;
}

/* Opens one CPU's cpu-clock event and attaches pf_sample (nothing when the
 * CPU went offline meanwhile). PROCTAP_OK or an error code. */
static int profile_attach_cpu(struct proctap *pt, struct perf_event_attr *attr, __u32 cpu,
			      struct proctap_error *err)
{
	struct bpf_link *link;
	int fd = syscall(SYS_perf_event_open, attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);

	if (fd < 0 && errno == ENODEV)
		return PROCTAP_OK;
	if (fd < 0 && (errno == ENOENT || errno == EOPNOTSUPP))
		return pt_fail(err, PROCTAP_E_ATTACH, errno, NULL, "pf_sample",
			       "this kernel has no software cpu-clock perf event: %s",
			       strerror(errno));
	if (fd < 0)
		return pt_kernel_error(err, PROCTAP_E_ATTACH, errno, "pf_sample",
				       "opening the cpu-clock perf event");
	link = bpf_program__attach_perf_event(pt->skel->progs.pf_sample, fd);
	if (!link) {
		int e = errno;

		close(fd);
		return pt_kernel_error(err, PROCTAP_E_ATTACH, e, "pf_sample",
				       "attaching to the cpu-clock perf event");
	}
	pt->perf_links[pt->nperf++] = link;
	return PROCTAP_OK;
}

/* After the generic attach (pf_exit first): the sampler on every online CPU. */
static int profile_start(struct proctap *pt, struct proctap_error *err)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CPU_CLOCK, /* no hardware PMU needed */
		.size = sizeof(attr),
		.freq = 1,
		.sample_freq = pt->cfg.profile_hz,
	};
	bool *online;
	int e = PROCTAP_OK;

	/* The side band first: a process started while samplers attach has
	 * its mappings recorded. */
	if (pt->cfg.events & PROCTAP_EVENT(PT_KIND_MAPPING)) {
		e = pt_mappings_start(pt, err);
		if (e)
			return e;
	}
	online = calloc(pt->ncpus, sizeof(*online));

	pt->perf_links = calloc(pt->ncpus, sizeof(*pt->perf_links));
	if (!online || !pt->perf_links) {
		free(online);
		return pt_fail(err, PROCTAP_E_SYSTEM, ENOMEM, NULL, NULL, "out of memory");
	}
	if (pt_online_cpus(online, pt->ncpus) < 0)
		e = pt_kernel_error(err, PROCTAP_E_SYSTEM, errno ? errno : EINVAL, NULL,
				    "reading /sys/devices/system/cpu/online");
	for (__u32 cpu = 0; cpu < pt->ncpus && !e; cpu++)
		if (online[cpu])
			e = profile_attach_cpu(pt, &attr, cpu, err);
	free(online);
	if (!e && !pt->nperf)
		e = pt_fail(err, PROCTAP_E_ATTACH, ENODEV, NULL, "pf_sample", "no CPU is online");
	return e;
}

const struct pt_family pt_family_profile = {
	.name = "profile",
	.kinds = PT_FAMILY_PROFILE_KINDS,
	.maps = profile_maps,
	.resolve = profile_resolve,
	.check = profile_check,
	.configure = profile_configure,
	.start = profile_start,
	.drain = pt_mappings_drain,
	.detach = profile_detach,
	.close = profile_close,
};

static bool profiling(struct proctap *pt)
{
	return pt && pt_family_on(&pt_family_profile, &pt->cfg);
}

int proctap_target_add(struct proctap *pt, __u32 pid)
{
	struct pt_target t = { 0 };
	int e;

	if (!profiling(pt) || !pid)
		return -EINVAL;
	e = pt_proc_enter(bpf_map__fd(pt->skel->maps.pf_targets), pid, &t);
	return e == -EEXIST ? 0 : e;
}

int proctap_target_remove(struct proctap *pt, __u32 pid)
{
	if (!profiling(pt))
		return -EINVAL;
	if (bpf_map_delete_elem(bpf_map__fd(pt->skel->maps.pf_targets), &pid))
		return -errno;
	return 0;
}

int proctap_targets(struct proctap *pt, __u32 *pids, int max)
{
	__u32 key, next;
	int fd, n = 0;
	void *prev = NULL;

	if (!profiling(pt))
		return -EINVAL;
	fd = bpf_map__fd(pt->skel->maps.pf_targets);
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		if (n < max)
			pids[n] = next;
		n++;
		key = next;
		prev = &key;
	}
	return n;
}

static int profile_watch_key(struct pt_watch_key *key, const char *prefix, __u32 len)
{
	if (!prefix || len == 0 || len >= PT_COMM_LEN || memchr(prefix, '\0', len))
		return -EINVAL;
	memset(key, 0, sizeof(*key));
	key->prefixlen = len * 8;
	memcpy(key->comm, prefix, len);
	return 0;
}

int proctap_watch_add(struct proctap *pt, const char *prefix, __u32 len)
{
	struct pt_watch_key key;

	if (!profiling(pt) || profile_watch_key(&key, prefix, len))
		return -EINVAL;
	if (bpf_map_update_elem(bpf_map__fd(pt->skel->maps.pf_watch), &key, &len, BPF_ANY))
		return -errno;
	return 0;
}

int proctap_watch_remove(struct proctap *pt, const char *prefix, __u32 len)
{
	struct pt_watch_key key;

	if (!profiling(pt) || profile_watch_key(&key, prefix, len))
		return -EINVAL;
	if (bpf_map_delete_elem(bpf_map__fd(pt->skel->maps.pf_watch), &key))
		return -errno;
	return 0;
}
