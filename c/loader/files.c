// SPDX-License-Identifier: Apache-2.0
/*
 * files.c - the files family (opens, writes): which fds' writes are
 * captured.
 */
#include <errno.h>
#include <bpf/bpf.h>
#include "internal.h"
#include "proctap.skel.h"

static bool files_writes(const struct proctap_config *c)
{
	return c->events & PROCTAP_EVENT(PT_KIND_WRITE);
}

/* Without fds of its own, the write kind captures stdout and stderr. */
static void files_resolve(struct proctap_config *c)
{
	if (files_writes(c) && !c->write_nfds) {
		c->write_fds[0] = 1;
		c->write_fds[1] = 2;
		c->write_nfds = 2;
	}
}

static int files_check(const struct proctap_config *c, struct proctap_error *err)
{
	if (!files_writes(c))
		return PROCTAP_OK;
	if (c->write_nfds > PT_WRITE_FDS_MAX)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "write_fds", NULL,
			       "%u fds to capture; at most %d", c->write_nfds, PT_WRITE_FDS_MAX);
	for (__u32 i = 0; i < c->write_nfds; i++) {
		if (c->write_fds[i] < 0)
			return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "write_fds", NULL,
				       "fd %d: file descriptors are 0 or more", c->write_fds[i]);
		for (__u32 j = 0; j < i; j++)
			if (c->write_fds[j] == c->write_fds[i])
				return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "write_fds", NULL,
					       "fd %d is listed twice", c->write_fds[i]);
	}
	return PROCTAP_OK;
}

static int files_configure(struct proctap *pt, struct proctap_error *err)
{
	const struct proctap_config *c = &pt->cfg;
	struct proctap_bpf *s = pt->skel;

	(void)err;
	for (__u32 i = 0; i < PT_WRITE_FDS_MAX; i++)
		s->rodata->pt_write_fds[i] = i < c->write_nfds ? c->write_fds[i] : -1;
	s->rodata->pt_write_nfds = c->write_nfds;
	bpf_map__set_autocreate(s->maps.pt_write_offsets, files_writes(c));
	return PROCTAP_OK;
}

const struct pt_family pt_family_files = {
	.name = "files",
	.kinds = PT_FAMILY_FILES_KINDS,
	.resolve = files_resolve,
	.check = files_check,
	.configure = files_configure,
};
