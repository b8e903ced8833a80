// SPDX-License-Identifier: Apache-2.0
/*
 * programs.c - the one BPF object: which programs and maps load (from the
 * kinds the config enables and the programs their declarations name), the
 * load itself, and the generic attach and detach.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"
#include "proctap.skel.h"

void pt_set_autoload(struct proctap *pt, const char *name, bool on)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(pt->skel->obj, name);

	if (prog)
		bpf_program__set_autoload(prog, on);
}

/* Every program off, then those the enabled kinds declare; families adjust
 * after. Maps of families that are off are not created. */
int pt_programs_select(struct proctap *pt, struct proctap_error *err)
{
	struct bpf_object *obj = pt->skel->obj;
	struct bpf_program *prog;

	pt->nprogs = 0;
	bpf_object__for_each_program(prog, obj) {
		bpf_program__set_autoload(prog, false);
		pt->nprogs++;
	}
	for (__u32 kind = 0; kind < PT_KIND_MAX; kind++) {
		const struct pt_kind_info *k = pt_kind(kind);

		if (!k || !(pt->cfg.events & PROCTAP_EVENT(kind)))
			continue;
		for (int i = 0; i < PT_PROGRAMS_MAX && k->programs[i]; i++) {
			prog = bpf_object__find_program_by_name(obj, k->programs[i]);
			if (!prog)
				return pt_fail(err, PROCTAP_E_LOAD, ENOENT, NULL, k->programs[i],
					       "kind %s declares program %s, which the BPF object "
					       "lacks (c/events/%s.toml)",
					       k->name, k->programs[i], k->name);
			bpf_program__set_autoload(prog, true);
		}
	}
	for (const struct pt_family *const *f = pt_families; *f; f++) {
		if (pt_family_on(*f, &pt->cfg) || !(*f)->maps)
			continue;
		for (const char *const *m = (*f)->maps; *m; m++) {
			struct bpf_map *map = bpf_object__find_map_by_name(obj, *m);

			if (map)
				bpf_map__set_autocreate(map, false);
		}
	}
	pt->links = calloc(pt->nprogs ? pt->nprogs : 1, sizeof(*pt->links));
	if (!pt->links)
		return pt_fail(err, PROCTAP_E_SYSTEM, ENOMEM, NULL, NULL, "out of memory");
	return PROCTAP_OK;
}

/* The tracefs directory of syscall tracepoints, or NULL without one. */
static const char *pt_syscall_events(void)
{
	static const char *const dirs[] = { "/sys/kernel/tracing/events/syscalls",
					    "/sys/kernel/debug/tracing/events/syscalls" };

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (access(dirs[i], F_OK) == 0)
			return dirs[i];
	return NULL;
}

/* Legacy syscalls newer architectures' tables lack (arm64 has only openat). */
static bool pt_legacy_syscall(const char *tracepoint)
{
	static const char *const legacy[] = { "sys_enter_open", "sys_exit_open", "sys_enter_creat",
					      "sys_exit_creat" };

	for (size_t i = 0; i < sizeof(legacy) / sizeof(legacy[0]); i++)
		if (!strcmp(tracepoint, legacy[i]))
			return true;
	return false;
}

/*
 * A legacy syscall this architecture does not have has no tracepoint: its
 * programs are left out rather than failing the attach. Only those, and
 * only when the kernel has syscall tracepoints at all: any other missing
 * tracepoint fails the attach and says so.
 */
static void pt_skip_absent_syscalls(struct proctap *pt)
{
	const char *events = pt_syscall_events();
	struct bpf_program *prog;
	char path[PATH_MAX];

	if (!events)
		return;
	bpf_object__for_each_program(prog, pt->skel->obj) {
		const char *sec = bpf_program__section_name(prog);

		if (!bpf_program__autoload(prog) || strncmp(sec, "tracepoint/syscalls/", 20) ||
		    !pt_legacy_syscall(sec + 20))
			continue;
		snprintf(path, sizeof(path), "%s/%s", events, sec + 20);
		if (access(path, F_OK) != 0 && errno == ENOENT)
			bpf_program__set_autoload(prog, false);
	}
}

/* Classic tracepoints (syscalls) are found through tracefs. */
static int pt_tracefs_if_needed(struct proctap *pt, struct proctap_error *err)
{
	struct bpf_program *prog;
	int e;

	bpf_object__for_each_program(prog, pt->skel->obj) {
		if (bpf_program__autoload(prog) &&
		    !strncmp(bpf_program__section_name(prog), "tracepoint/", 11)) {
			if ((e = pt_tracefs_ready(err)))
				return e;
			pt_skip_absent_syscalls(pt);
			return PROCTAP_OK;
		}
	}
	return PROCTAP_OK;
}

/*
 * Loads the object with this thread's signals blocked. The verifier gives up
 * with EAGAIN when a signal is pending for the loading thread, and libbpf
 * retries only a few times, so a process whose children exit often (a
 * SIGCHLD each) could fail to load. Blocked here, a process-directed signal
 * goes to another thread, or waits until the load is done.
 */
int pt_programs_load(struct proctap *pt, struct proctap_error *err)
{
	sigset_t all, old;
	int e;

	if ((e = pt_tracefs_if_needed(pt, err)))
		return e;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	e = proctap_bpf__load(pt->skel);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e)
		return pt_kernel_error(err, PROCTAP_E_LOAD, -e, NULL, "loading BPF programs");
	return PROCTAP_OK;
}

/* A cgroup socket program attaches to the cgroup2 root: every socket. */
static int pt_attach_cgroup(struct proctap *pt, struct bpf_program *prog, struct bpf_link **slot,
			    struct proctap_error *err)
{
	int e;

	if (pt->cgroup2_fd < 0 && (e = pt_cgroup2_root(&pt->cgroup2_fd, err)))
		return e;
	*slot = bpf_program__attach_cgroup(prog, pt->cgroup2_fd);
	if (!*slot)
		return pt_kernel_error(err, PROCTAP_E_ATTACH, errno, bpf_program__name(prog),
				       "attaching to the cgroup2 root");
	return PROCTAP_OK;
}

int pt_attach(struct bpf_program *prog, struct bpf_link **slot, struct proctap_error *err)
{
	*slot = bpf_program__attach(prog);
	if (!*slot)
		return pt_kernel_error(err, PROCTAP_E_ATTACH, errno, bpf_program__name(prog),
				       "attaching");
	return PROCTAP_OK;
}

/* Attaches one loaded program unless it is attached already or is a perf
 * event program (those attach per CPU, in their family). */
static int pt_attach_generic(struct proctap *pt, struct bpf_program *prog, bool *done,
			     struct proctap_error *err)
{
	int e;

	if (!bpf_program__autoload(prog) || bpf_program__type(prog) == BPF_PROG_TYPE_PERF_EVENT)
		return PROCTAP_OK;
	if (*done)
		return PROCTAP_OK;
	if (pt->nlinks >= pt->nprogs)
		return pt_fail(err, PROCTAP_E_SYSTEM, ENOSPC, NULL, NULL, "too many links");
	if (bpf_program__type(prog) == BPF_PROG_TYPE_CGROUP_SOCK)
		e = pt_attach_cgroup(pt, prog, &pt->links[pt->nlinks], err);
	else
		e = pt_attach(prog, &pt->links[pt->nlinks], err);
	if (e)
		return e;
	pt->nlinks++;
	*done = true;
	return PROCTAP_OK;
}

/*
 * Attaches the declared programs of the enabled kinds in declaration order
 * (a kind lists the one that cleans up first: the profiler's exit program
 * before those that add targets), then every other program its family
 * turned on, in object order.
 */
int pt_programs_attach(struct proctap *pt, struct proctap_error *err)
{
	struct bpf_object *obj = pt->skel->obj;
	struct bpf_program *prog;
	bool *done = calloc(pt->nprogs ? pt->nprogs : 1, sizeof(*done));
	int e = PROCTAP_OK, i;

	if (!done)
		return pt_fail(err, PROCTAP_E_SYSTEM, ENOMEM, NULL, NULL, "out of memory");
	for (__u32 kind = 0; kind < PT_KIND_MAX && !e; kind++) {
		const struct pt_kind_info *k = pt_kind(kind);

		if (!k || !(pt->cfg.events & PROCTAP_EVENT(kind)))
			continue;
		for (int p = 0; p < PT_PROGRAMS_MAX && k->programs[p] && !e; p++) {
			i = 0;
			bpf_object__for_each_program(prog, obj) {
				if (!strcmp(bpf_program__name(prog), k->programs[p]))
					break;
				i++;
			}
			if (prog)
				e = pt_attach_generic(pt, prog, &done[i], err);
		}
	}
	i = 0;
	bpf_object__for_each_program(prog, obj) {
		if (!e)
			e = pt_attach_generic(pt, prog, &done[i], err);
		i++;
	}
	free(done);
	return e;
}

/* Detaches everything attached, generic or by a family (idempotent). */
void pt_programs_detach(struct proctap *pt)
{
	for (int i = 0; i < pt->nlinks; i++) {
		bpf_link__destroy(pt->links[i]);
		pt->links[i] = NULL;
	}
	pt->nlinks = 0;
	for (const struct pt_family *const *f = pt_families; *f; f++)
		if ((*f)->detach && pt_family_on(*f, &pt->cfg))
			(*f)->detach(pt);
}
