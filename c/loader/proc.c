// SPDX-License-Identifier: Apache-2.0
/*
 * proc.c - the proc family (exec, exit, fork, failed execs): the exit probe
 * this kernel needs, and which of the proc programs load.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <bpf/bpf.h>
#include "internal.h"
#include "proctap.skel.h"

static const char *const proc_maps[] = { "pt_exited", "pt_exit_seen", NULL };

/* Does this kernel's sched_process_exit tracepoint pass group_dead, after
 * (void *ctx, struct task_struct *p)? */
static bool proc_exit_has_group_dead(void)
{
	return pt_tracepoint_arg_kind("sched_process_exit", 2) >= 0;
}

/* Does its classic record carry it? */
static bool proc_exit_record_has_group_dead(void)
{
	return pt_btf_has_member("trace_event_raw_sched_process_exit", "group_dead");
}

/*
 * Auto: the classic tracepoint where its record has group_dead and tracefs
 * is there or can be mounted (its programs run with preemption off, so the
 * kernel never skips one for a task preempted inside it: see pt_exit_tp);
 * else the BTF tracepoint's group_dead; else signal->live.
 */
static __u32 proc_exit_auto(void)
{
	struct proctap_error ignored;

	if (proc_exit_record_has_group_dead() && pt_tracefs_ready(&ignored) == PROCTAP_OK)
		return PROCTAP_EXIT_TRACEPOINT;
	return proc_exit_has_group_dead() ? PROCTAP_EXIT_GROUP_DEAD : PROCTAP_EXIT_LIVE;
}

static int proc_check(const struct proctap_config *c, struct proctap_error *err)
{
	if (c->exit_probe > PROCTAP_EXIT_TRACEPOINT)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "exit_probe", NULL,
			       "unknown exit_probe %u", c->exit_probe);
	if (c->exit_probe == PROCTAP_EXIT_TRACEPOINT && !proc_exit_record_has_group_dead())
		return pt_fail(err, PROCTAP_E_UNSUPPORTED, ENOTSUP, "sched_process_exit group_dead",
			       NULL,
			       "exit_probe TRACEPOINT needs the group_dead field in the "
			       "sched_process_exit tracepoint's record, which this kernel lacks: "
			       "use AUTO");
	return PROCTAP_OK;
}

static int proc_configure(struct proctap *pt, struct proctap_error *err)
{
	const struct proctap_config *c = &pt->cfg;
	struct proctap_bpf *s = pt->skel;
	bool exec = c->events & PROCTAP_EVENT(PT_KIND_EXEC);
	bool exit = c->events & PROCTAP_EVENT(PT_KIND_EXIT);
	bool fork = c->events & PROCTAP_EVENT(PT_KIND_FORK);
	bool names = pt_filter_tracks_names(c);
	__u32 probe = c->exit_probe;

	if (probe == PROCTAP_EXIT_AUTO)
		probe = proc_exit_auto();
	s->rodata->pt_exec_events = exec;
	s->rodata->pt_fork_events = fork;
	s->rodata->pt_thread_exits = c->thread_exits != 0;
	/* The kinds' declared programs are on (pt_exec and pt_fork also for
	 * the filter's names); the probe picks the exit program. */
	if (exit && probe != PROCTAP_EXIT_GROUP_DEAD) {
		pt_set_autoload(pt, "pt_exit", false);
		pt_set_autoload(pt, probe == PROCTAP_EXIT_LIVE ? "pt_exit_live" : "pt_exit_tp",
				true);
	}
	/* Maps only the code this config reaches uses (libbpf poisons the
	 * others' references in code the verifier prunes). */
	bpf_map__set_autocreate(s->maps.pt_exit_seen, exit && probe == PROCTAP_EXIT_LIVE);
	bpf_map__set_autocreate(s->maps.pt_exited, exit && c->thread_exits && (c->npids || names));
	return PROCTAP_OK;
}

const struct pt_family pt_family_proc = {
	.name = "proc",
	.kinds = PT_FAMILY_PROC_KINDS,
	.maps = proc_maps,
	.check = proc_check,
	.configure = proc_configure,
};
