// SPDX-License-Identifier: Apache-2.0
/* procfs.c - small readers of /proc and /sys, and live processes entered
 * into the programs' maps. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include "internal.h"

/* Reads a small text file into buf, NUL-terminated. Returns its length, or -1. */
ssize_t pt_read_text(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t len;

	if (fd < 0)
		return -1;
	len = read(fd, buf, size - 1);
	close(fd);
	if (len <= 0)
		return -1;
	buf[len] = '\0';
	return len;
}

/* Parses a CPU list such as "0-3,5" (/sys/devices/system/cpu/online) into
 * flags; returns the number of entries written, or -1. */
int pt_online_cpus(bool *online, int n)
{
	char buf[1024], *p = buf;

	if (pt_read_text("/sys/devices/system/cpu/online", buf, sizeof(buf)) < 0)
		return -1;
	memset(online, 0, n * sizeof(*online));
	while (*p && *p != '\n') {
		char *end;
		long a = strtol(p, &end, 10), b = a;

		if (end == p)
			return -1;
		if (*end == '-')
			b = strtol(end + 1, &end, 10);
		for (long cpu = a; cpu <= b && cpu < n; cpu++)
			online[cpu] = true;
		p = *end == ',' ? end + 1 : end;
	}
	return n;
}

/* /proc/PID/stat: the state letter and start time (clock ticks since boot).
 * 0, or -ESRCH when there is no such process (or thread). */
static int pt_proc_stat(__u32 pid, char *state, unsigned long long *start)
{
	char path[64], buf[1024], *p;

	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	if (pt_read_text(path, buf, sizeof(buf)) < 0)
		return -ESRCH;
	/* The command name may hold anything, ')' included: skip to the last one. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1,
			 " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u "
			 "%*d %*d %*d %*d %*d %*d %llu",
			 state, start) != 2)
		return -ESRCH;
	return 0;
}

/* The process (tgid) the task pid belongs to. 0, or -ESRCH. */
static int pt_proc_tgid(__u32 pid, __u32 *tgid)
{
	char path[64], buf[4096], *line;

	snprintf(path, sizeof(path), "/proc/%u/status", pid);
	if (pt_read_text(path, buf, sizeof(buf)) < 0)
		return -ESRCH;
	line = strstr(buf, "\nTgid:");
	if (!line)
		return -ESRCH;
	*tgid = strtoul(line + 6, NULL, 10);
	return 0;
}

/* Is pid a live process (a thread group leader, not a zombie)? 0, -ESRCH,
 * or -EINVAL for the id of a thread that is not its process' leader (its
 * process then in *tgid, when asked). */
int pt_proc_alive(__u32 pid, unsigned long long *start, __u32 *tgid)
{
	__u32 leader;
	char state;
	int e;

	if ((e = pt_proc_stat(pid, &state, start)))
		return e;
	if (state == 'Z' || state == 'X' || state == 'x')
		return -ESRCH;
	if ((e = pt_proc_tgid(pid, &leader)))
		return e;
	if (tgid)
		*tgid = leader;
	return leader == pid ? 0 : -EINVAL;
}

/*
 * Enters the live process pid into the BPF hash map fd (with value) unless
 * it is there, then looks again: the entry is taken back unless the same
 * process is still there (it may have exited, its exit then finding nothing
 * to remove, or been replaced by another of the same pid since the first
 * look). 0 when entered; -EEXIST when it was there; -ESRCH or -EINVAL (a
 * thread's id) as pt_proc_alive says; the map's -errno (-E2BIG: full).
 */
int pt_proc_enter(int fd, __u32 pid, const void *value)
{
	unsigned long long before, after;
	int e;

	if ((e = pt_proc_alive(pid, &before, NULL)))
		return e;
	if (bpf_map_update_elem(fd, &pid, value, BPF_NOEXIST))
		return -errno;
	if (pt_proc_alive(pid, &after, NULL) || after != before) {
		bpf_map_delete_elem(fd, &pid);
		return -ESRCH;
	}
	return 0;
}

/*
 * Classic tracepoints are found through tracefs, which a fresh machine may
 * not have mounted: mount it at /sys/kernel/tracing then (and leave it: it
 * is the kernel's standard place, and others may use it meanwhile).
 */
int pt_tracefs_ready(struct proctap_error *err)
{
	if (access("/sys/kernel/tracing/events", F_OK) == 0 ||
	    access("/sys/kernel/debug/tracing/events", F_OK) == 0)
		return PROCTAP_OK;
	mkdir("/sys/kernel/tracing", 0755);
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0 ||
	    access("/sys/kernel/tracing/events", F_OK) == 0)
		return PROCTAP_OK;
	return pt_fail(err, errno == EPERM ? PROCTAP_E_PRIVILEGE : PROCTAP_E_SYSTEM, errno, NULL,
		       NULL,
		       "syscall tracepoints need tracefs, which is not mounted and could not be "
		       "mounted at /sys/kernel/tracing (%s); mount -t tracefs nodev "
		       "/sys/kernel/tracing",
		       strerror(errno));
}

/* The mount point of a cgroup2 hierarchy from /proc/self/mountinfo, or
 * false. */
static bool pt_cgroup2_mount(char *path, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX], *sep = strstr(line, " - ");

		/* id parent major:minor root mount-point ... - fstype ... */
		if (sep && !strncmp(sep, " - cgroup2 ", 11) &&
		    sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 && strlen(mnt) < size) {
			strcpy(path, mnt);
			found = true;
		}
	}
	fclose(f);
	return found;
}

/*
 * Opens the root of the cgroup2 hierarchy as this process sees it (*fd),
 * where cgroup socket programs attach: every socket created below it runs
 * them. Hybrid and v1 machines may not have cgroup2 mounted: it is then
 * mounted at a private temporary directory, opened, and unmounted again.
 */
int pt_cgroup2_root(int *fd, struct proctap_error *err)
{
	char path[PATH_MAX], tmp[] = "/tmp/proctap-cgroup2-XXXXXX";
	int e;

	if (pt_cgroup2_mount(path, sizeof(path)) &&
	    (*fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
		return PROCTAP_OK;
	if (!mkdtemp(tmp))
		return pt_fail(err, PROCTAP_E_SYSTEM, errno, NULL, NULL,
			       "no cgroup2 hierarchy is mounted, and no directory to mount one "
			       "could be made (%s)",
			       strerror(errno));
	*fd = -1;
	if (mount("none", tmp, "cgroup2", 0, NULL) == 0) {
		*fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		umount2(tmp, MNT_DETACH);
	}
	e = errno;
	rmdir(tmp);
	if (*fd >= 0)
		return PROCTAP_OK;
	return pt_fail(err, e == EPERM ? PROCTAP_E_PRIVILEGE : PROCTAP_E_SYSTEM, e, NULL, NULL,
		       "connections and the cgroup filter need a cgroup2 hierarchy; "
		       "none is mounted and none could be mounted (%s): mount -t cgroup2 none "
		       "/sys/fs/cgroup/unified",
		       strerror(e));
}
