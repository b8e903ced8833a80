// SPDX-License-Identifier: Apache-2.0
/*
 * oom.c - the oom family (the OOM killer's victims): the kernel must pass
 * the victim task to its mark_victim tracepoint; memory is counted in pages
 * of this machine's size.
 */
#include <errno.h>
#include <unistd.h>
#include <bpf/btf.h>
#include "internal.h"
#include "proctap.skel.h"

/* Does this kernel's mark_victim tracepoint pass (task, uid)? Older ones
 * pass only the pid. */
static bool oom_victim_has_task(void)
{
	return pt_tracepoint_arg_kind("mark_victim", 1) == BTF_KIND_PTR;
}

static int oom_configure(struct proctap *pt, struct proctap_error *err)
{
	long page = sysconf(_SC_PAGESIZE);
	__u32 shift = 0;

	if (!oom_victim_has_task())
		return pt_fail(err, PROCTAP_E_UNSUPPORTED, ENOTSUP, "tracepoint mark_victim(task)",
			       "pt_oom_victim",
			       "oom_kill events need a kernel whose mark_victim tracepoint passes "
			       "the victim task (BTF btf_trace_mark_victim); "
			       "this one does not");
	while ((1L << (shift + 10)) < page)
		shift++;
	pt->skel->rodata->pt_page_kb_shift = shift;
	return PROCTAP_OK;
}

const struct pt_family pt_family_oom = {
	.name = "oom",
	.kinds = PT_FAMILY_OOM_KINDS,
	.configure = oom_configure,
};
