// SPDX-License-Identifier: Apache-2.0
/*
 * filter.c - which processes are traced (lib/filter.bpf.h): the pid list,
 * the command-name decisions (made by the proc programs at exec and fork,
 * and here from /proc for processes already running at start), the cgroups,
 * and the tracer's own process. The kinds declared `filtered` use it, so it is set
 * up whatever is on.
 */
#define _GNU_SOURCE /* open_by_handle_at */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <bpf/bpf.h>
#include "internal.h"
#include "proctap.skel.h"

/* The handle type of kernfs (cgroup2) file handles: FILEID_KERNFS. */
#define PT_FILEID_KERNFS 0xfe

/* The filter's own config fields. */
static int filter_check(const struct proctap_config *c, struct proctap_error *err)
{
	if (c->npids > PT_MAX_PIDS)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "pids", NULL,
			       "%u pids given; at most %u", c->npids, PT_MAX_PIDS);
	for (__u32 i = 0; i < c->npids; i++)
		if (c->pids[i] == 0 || c->pids[i] > (1u << 22))
			return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "pids", NULL,
				       "pid %u is not a valid process id", c->pids[i]);
	if (c->comm_prefix_len >= PT_COMM_LEN)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "comm_prefix", NULL,
			       "comm_prefix is %u bytes; command names have at most %u",
			       c->comm_prefix_len, PT_COMM_LEN - 1);
	if (memchr(c->comm_prefix, '\0', c->comm_prefix_len))
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "comm_prefix", NULL,
			       "comm_prefix holds a NUL byte within its length");
	if (c->ncgroups > PT_MAX_CGROUPS)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "cgroups", NULL,
			       "%u cgroups given; at most %u", c->ncgroups, PT_MAX_CGROUPS);
	for (__u32 i = 0; i < c->ncgroups; i++)
		if (c->cgroup_ids[i] == 0)
			return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "cgroups", NULL,
				       "cgroup id 0 names no cgroup");
	return PROCTAP_OK;
}

/* Each listed pid must be a live process: a pid that names nothing, or a
 * thread, would silently trace nothing. (Checked at open, not with the
 * config's rules: it reads /proc, and its answer changes with time.) */
static int filter_check_pids(const struct proctap_config *c, struct proctap_error *err)
{
	for (__u32 i = 0; i < c->npids; i++) {
		unsigned long long start;
		__u32 tgid = 0;
		int e = pt_proc_alive(c->pids[i], &start, &tgid);

		if (e == -EINVAL)
			return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "pids", NULL,
				       "%u is a thread of process %u, not a process id; give %u",
				       c->pids[i], tgid, tgid);
		if (e)
			return pt_fail(err, PROCTAP_E_CONFIG, ESRCH, "pids", NULL,
				       "no process %u (it may have exited)", c->pids[i]);
	}
	return PROCTAP_OK;
}

bool pt_filter_tracks_names(const struct proctap_config *c)
{
	/* A filtered kind but exec happens in a process after its exec or
	 * fork named it: it needs the per-process decision. */
	return c->comm_prefix_len && (c->events & PT_FILTERED_KINDS & ~PROCTAP_EVENT(PT_KIND_EXEC));
}

static int filter_configure(struct proctap *pt, struct proctap_error *err)
{
	const struct proctap_config *c = &pt->cfg;
	struct proctap_bpf *s = pt->skel;
	bool names = pt_filter_tracks_names(c);
	int e;

	if ((e = filter_check_pids(c, err)))
		return e;
	s->rodata->pt_self_tgid = getpid();
	s->rodata->pt_filter_pids = c->npids > 0;
	s->rodata->pt_comm_prefix_len = c->comm_prefix_len;
	memcpy((char *)s->rodata->pt_comm_prefix, c->comm_prefix, PT_COMM_LEN);
	s->rodata->pt_track_names = names;
	s->rodata->pt_ncgroups = c->ncgroups;
	memcpy((__u64 *)s->rodata->pt_cgroup_ids, c->cgroup_ids, sizeof(c->cgroup_ids));
	bpf_map__set_autocreate(s->maps.pt_cgroups, c->ncgroups > 0);
	/* Exec and fork name processes. Maps only the code this config
	 * reaches uses (libbpf poisons the others' references in code the
	 * verifier prunes). */
	if (names) {
		pt_set_autoload(pt, "pt_exec", true);
		pt_set_autoload(pt, "pt_fork", true);
	}
	bpf_map__set_autocreate(s->maps.pt_pids, c->npids > 0);
	bpf_map__set_autocreate(s->maps.pt_named, names);
	bpf_map__set_autocreate(s->maps.pt_maybe, c->npids > 0 || names);
	if (c->npids > 0 || names)
		/* For the largest pid_max (PID_MAX_LIMIT, 2^22): 512 KiB, and
		 * right even if kernel.pid_max is raised while tracing. */
		bpf_map__set_max_entries(s->maps.pt_maybe, (1u << 22) / 64);
	return PROCTAP_OK;
}

/* Marks tgid in pt_maybe (the programs may mark other bits meanwhile). */
static void filter_maybe_mark(struct proctap *pt, __u32 tgid)
{
	if (pt->maybe && tgid / 64 < pt->maybe_words)
		__atomic_fetch_or(&pt->maybe[tgid / 64], 1ULL << (tgid % 64), __ATOMIC_RELAXED);
}

/*
 * Enters cgroup i of the config in pt_cgroups: the cgroup is opened by its
 * id (a kernfs file handle) from the cgroup2 root, so an id that names no
 * cgroup, or one removed since, is an error here rather than a filter that
 * silently passes nothing.
 */
static int filter_enter_cgroup(struct proctap *pt, __u32 i, struct proctap_error *err)
{
	__u64 id = pt->cfg.cgroup_ids[i];
	union {
		struct file_handle fh;
		char bytes[sizeof(struct file_handle) + sizeof(__u64)];
	} h;
	int e, fd;

	if (pt->cgroup2_fd < 0 && (e = pt_cgroup2_root(&pt->cgroup2_fd, err)))
		return e;
	memset(&h, 0, sizeof(h));
	h.fh.handle_bytes = sizeof(id);
	h.fh.handle_type = PT_FILEID_KERNFS;
	memcpy(h.fh.f_handle, &id, sizeof(id));
	fd = open_by_handle_at(pt->cgroup2_fd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return pt_fail(err, errno == EPERM ? PROCTAP_E_PRIVILEGE : PROCTAP_E_CONFIG, errno,
			       "cgroups", NULL,
			       "cgroup id %llu names no cgroup v2 directory (%s): give the inode "
			       "number of a directory in the cgroup2 tree (on a v1/v2 hybrid, "
			       "under /sys/fs/cgroup/unified)",
			       (unsigned long long)id, strerror(errno));
	e = bpf_map__update_elem(pt->skel->maps.pt_cgroups, &i, sizeof(i), &fd, sizeof(fd),
				 BPF_ANY);
	close(fd);
	return e ? pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "filling the cgroup filter")
		 : PROCTAP_OK;
}

static int filter_prepare(struct proctap *pt, struct proctap_error *err)
{
	struct bpf_map *maybe = pt->skel->maps.pt_maybe;
	int e;

	for (__u32 i = 0; i < pt->cfg.ncgroups; i++)
		if ((e = filter_enter_cgroup(pt, i, err)))
			return e;

	if (pt->cfg.npids > 0 || pt_filter_tracks_names(&pt->cfg)) {
		pt->maybe_words = bpf_map__max_entries(maybe);
		pt->maybe_len = pt->maybe_words * sizeof(__u64);
		pt->maybe = pt_mmap(bpf_map__fd(maybe), pt->maybe_len, true, 0);
		if (!pt->maybe)
			return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL,
					       "mapping the filter's bitmap");
	}
	for (__u32 i = 0; i < pt->cfg.npids; i++) {
		__u8 one = 1;

		filter_maybe_mark(pt, pt->cfg.pids[i]);
		if (bpf_map__update_elem(pt->skel->maps.pt_pids, &pt->cfg.pids[i], sizeof(__u32),
					 &one, sizeof(one), BPF_ANY))
			return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL,
					       "filling the pid filter");
	}
	return PROCTAP_OK;
}

/* Does /proc/PID/comm (the process' name) start with the prefix? */
static bool filter_name_matches(const struct proctap_config *c, __u32 pid)
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
 * A process found in /proc whose name matches: entered with start 0 while
 * it is the same process, and taken back if it exec'd into another name
 * since the first look (after the entry exists, the kernel decides).
 */
static void filter_enter_named(struct proctap *pt, int fd, __u32 pid)
{
	struct pt_named v = { 0 };
	int e;

	filter_maybe_mark(pt, pid);
	e = pt_proc_enter(fd, pid, &v);

	if (e == -E2BIG || e == -ENOMEM)
		__atomic_fetch_add(&pt->ctl[0].counters[PT_CTR_EXIT_UNTRACKED], 1,
				   __ATOMIC_RELAXED);
	else if (!e && !filter_name_matches(&pt->cfg, pid))
		bpf_map_delete_elem(fd, &pid);
}

/* After attach (exec and fork decide from now on): the processes already
 * running whose name matches. */
static int filter_start(struct proctap *pt, struct proctap_error *err)
{
	const struct proctap_config *c = &pt->cfg;
	int fd = bpf_map__fd(pt->skel->maps.pt_named);
	struct dirent *d;
	DIR *dir;

	if (!pt_filter_tracks_names(c))
		return PROCTAP_OK;
	dir = opendir("/proc");
	if (!dir)
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "scanning /proc");
	while ((d = readdir(dir))) {
		char *end;
		unsigned long pid = strtoul(d->d_name, &end, 10);

		if (!*end && pid && pid <= 0xffffffffUL && filter_name_matches(c, pid))
			filter_enter_named(pt, fd, pid);
	}
	closedir(dir);
	return PROCTAP_OK;
}

/* The filtered kinds: its hooks run whatever is on. */
static void filter_close(struct proctap *pt)
{
	if (pt->maybe)
		munmap(pt->maybe, pt->maybe_len);
	pt->maybe = NULL;
}

const struct pt_family pt_filter = {
	.name = "filter",
	.always = true,
	.check = filter_check,
	.configure = filter_configure,
	.prepare = filter_prepare,
	.start = filter_start,
	.close = filter_close,
};
