// SPDX-License-Identifier: Apache-2.0
/*
 * proc.c - the proc family (exec, exit): the exit probe this kernel needs,
 * the process filter (pids, and the command-name decisions of processes
 * already running when tracing starts).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include "internal.h"
#include "proctap.skel.h"

static const char *const proc_maps[] = { "pt_pids",	 "pt_named",	  "pt_exited",
					 "pt_exit_seen", "pt_exec_tries", NULL };

/* Does this kernel's sched_process_exit tracepoint pass group_dead? */
static bool proc_exit_has_group_dead(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t;
	bool found;
	int id;

	if (!btf)
		return false;
	id = btf__find_by_name_kind(btf, "btf_trace_sched_process_exit", BTF_KIND_TYPEDEF);
	t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	t = t ? btf__type_by_id(btf, t->type) : NULL; /* pointer */
	t = t && btf_is_ptr(t) ? btf__type_by_id(btf, t->type) : NULL;
	/* (void *ctx, struct task_struct *p, bool group_dead) */
	found = t && btf_is_func_proto(t) && btf_vlen(t) >= 3;
	btf__free(btf);
	return found;
}

/* Each listed pid must be a live process: a pid that names nothing, or a
 * thread, would silently trace nothing. */
static int proc_check(const struct proctap_config *c, struct proctap_error *err)
{
	for (__u32 i = 0; i < c->npids; i++) {
		unsigned long long start;
		__u32 tgid = 0;
		int e = pt_proc_alive(c->pids[i], &start);

		if (e == -EINVAL && pt_proc_tgid(c->pids[i], &tgid) == 0)
			return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "pids", NULL,
				       "%u is a thread of process %u, not a process id; give %u",
				       c->pids[i], tgid, tgid);
		if (e)
			return pt_fail(err, PROCTAP_E_CONFIG, ESRCH, "pids", NULL,
				       "no process %u (it may have exited)", c->pids[i]);
	}
	return PROCTAP_OK;
}

/* A prefix needs the per-process decision for every kind but exec (the
 * others happen in a process after its exec or fork named it). */
static bool proc_tracks_names(const struct proctap_config *c)
{
	return c->comm_prefix_len &&
	       (c->events & (PROCTAP_EVENT(PT_KIND_EXIT) | PROCTAP_EVENT(PT_KIND_FORK) |
			     PROCTAP_EVENT(PT_KIND_EXEC_FAILED)));
}

static int proc_configure(struct proctap *pt, struct proctap_error *err)
{
	const struct proctap_config *c = &pt->cfg;
	struct proctap_bpf *s = pt->skel;
	bool exec = c->events & PROCTAP_EVENT(PT_KIND_EXEC);
	bool exit = c->events & PROCTAP_EVENT(PT_KIND_EXIT);
	bool fork = c->events & PROCTAP_EVENT(PT_KIND_FORK);
	bool failures = c->events & PROCTAP_EVENT(PT_KIND_EXEC_FAILED);
	int e;
	bool names = proc_tracks_names(c);
	__u32 probe = c->exit_probe;

	if (probe == PROCTAP_EXIT_AUTO)
		probe = proc_exit_has_group_dead() ? PROCTAP_EXIT_GROUP_DEAD : PROCTAP_EXIT_LIVE;
	s->rodata->pt_exec_events = exec;
	s->rodata->pt_fork_events = fork;
	s->rodata->pt_exec_failures = failures;
	s->rodata->pt_self_tgid = getpid();
	s->rodata->pt_thread_exits = c->thread_exits != 0;
	s->rodata->pt_filter_pids = c->npids > 0;
	s->rodata->pt_comm_prefix_len = c->comm_prefix_len;
	memcpy((char *)s->rodata->pt_comm_prefix, c->comm_prefix, PT_COMM_LEN);
	s->rodata->pt_track_names = names;
	/* Exec decides names (and forgets exec attempts) when its events are off. */
	pt_set_autoload(pt, "pt_exec", exec || names || failures);
	pt_set_autoload(pt, "pt_fork", fork || names);
	pt_set_autoload(pt, "pt_exit", exit && probe == PROCTAP_EXIT_GROUP_DEAD);
	pt_set_autoload(pt, "pt_exit_live", exit && probe == PROCTAP_EXIT_LIVE);
	/* Maps only the code this config reaches uses (libbpf poisons the
	 * others' references in code the verifier prunes). */
	bpf_map__set_autocreate(s->maps.pt_exit_seen, exit && probe == PROCTAP_EXIT_LIVE);
	bpf_map__set_autocreate(s->maps.pt_pids, c->npids > 0);
	bpf_map__set_autocreate(s->maps.pt_named, names);
	bpf_map__set_autocreate(s->maps.pt_exited, exit && c->thread_exits && (c->npids || names));
	bpf_map__set_autocreate(s->maps.pt_exec_tries, failures);
	/* The syscall tracepoints of failed execs are found through tracefs. */
	if (failures && (e = pt_tracefs_ready(err)))
		return e;
	return PROCTAP_OK;
}

static int proc_prepare(struct proctap *pt, struct proctap_error *err)
{
	for (__u32 i = 0; i < pt->cfg.npids; i++) {
		__u8 one = 1;

		if (bpf_map__update_elem(pt->skel->maps.pt_pids, &pt->cfg.pids[i], sizeof(__u32),
					 &one, sizeof(one), BPF_ANY))
			return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL,
					       "filling the pid filter");
	}
	return PROCTAP_OK;
}

/* Does /proc/PID/comm (the process' name) start with the prefix? */
static bool proc_name_matches(const struct proctap_config *c, __u32 pid)
{
	char path[64], comm[64];
	ssize_t len;

	snprintf(path, sizeof(path), "/proc/%u/comm", pid);
	len = pt_read_text(path, comm, sizeof(comm));
	if (len <= 0)
		return false;
	if (comm[len - 1] == '\n')
		comm[--len] = '\0';
	return (__u32)len >= c->comm_prefix_len &&
	       !memcmp(comm, c->comm_prefix, c->comm_prefix_len);
}

/*
 * A process found in /proc whose name matches: entered with start 0, then
 * taken back unless it is still the same process with a matching name (it
 * may have exited and its pid been reused, or exec'd into another name,
 * since the first look; after the entry exists, the kernel decides).
 */
static void proc_enter_named(struct proctap *pt, int fd, __u32 pid)
{
	struct pt_named v = { 0 };
	unsigned long long before, after;

	if (pt_proc_alive(pid, &before))
		return;
	if (bpf_map_update_elem(fd, &pid, &v, BPF_NOEXIST)) {
		if (errno == E2BIG || errno == ENOMEM)
			__atomic_fetch_add(&pt->ctl[0].counters[PT_CTR_EXIT_UNTRACKED], 1,
					   __ATOMIC_RELAXED);
		return; /* EEXIST: the kernel entered it first (an exec or fork) */
	}
	if (pt_proc_alive(pid, &after) || after != before || !proc_name_matches(&pt->cfg, pid))
		bpf_map_delete_elem(fd, &pid);
}

/* After attach (exec and fork decide from now on): the processes already
 * running whose name matches. */
static int proc_start(struct proctap *pt, struct proctap_error *err)
{
	const struct proctap_config *c = &pt->cfg;
	int fd = bpf_map__fd(pt->skel->maps.pt_named);
	struct dirent *d;
	DIR *dir;

	if (!proc_tracks_names(c))
		return PROCTAP_OK;
	dir = opendir("/proc");
	if (!dir)
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "scanning /proc");
	while ((d = readdir(dir))) {
		char *end;
		unsigned long pid = strtoul(d->d_name, &end, 10);

		if (!*end && pid && pid <= 0xffffffffUL && proc_name_matches(c, pid))
			proc_enter_named(pt, fd, pid);
	}
	closedir(dir);
	return PROCTAP_OK;
}

const struct pt_family pt_family_proc = {
	.name = "proc",
	.kinds = PT_FAMILY_PROC_KINDS,
	.maps = proc_maps,
	.check = proc_check,
	.configure = proc_configure,
	.prepare = proc_prepare,
	.start = proc_start,
};
