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
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t;
	bool found = false;
	int id;

	if (!btf)
		return false;
	id = btf__find_by_name_kind(btf, "btf_trace_mark_victim", BTF_KIND_TYPEDEF);
	t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	t = t ? btf__type_by_id(btf, t->type) : NULL;
	t = t && btf_is_ptr(t) ? btf__type_by_id(btf, t->type) : NULL;
	if (t && btf_is_func_proto(t) && btf_vlen(t) >= 2) {
		const struct btf_type *arg = btf__type_by_id(btf, btf_params(t)[1].type);

		found = arg && btf_is_ptr(arg);
	}
	btf__free(btf);
	return found;
}

static int oom_configure(struct proctap *pt, struct proctap_error *err)
{
	long page = sysconf(_SC_PAGESIZE);
	__u32 shift = 0;

	if (!oom_victim_has_task())
		return pt_fail(err, PROCTAP_E_LOAD, ENOTSUP, NULL, "pt_oom_victim",
			       "oom_kill events need a kernel whose mark_victim tracepoint passes "
			       "the victim task (BTF btf_trace_mark_victim); this one does not");
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
