// SPDX-License-Identifier: Apache-2.0
/*
 * files.bpf.c - file opens: openat, openat2, open and creat.
 *
 * Each syscall's tracepoints (classic ones: the loader mounts tracefs when
 * it must) bracket the open (lib/call.bpf.h): the entry keeps the arguments
 * of a traced process' open, the exit reports them with the result, the new
 * fd or the errno. The path is read at the exit, from the caller's memory
 * as it passed it. A process that is not traced costs one lookup.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "pt_kinds.bpf.h"
#include "lib/call.bpf.h"

#define PT_AT_FDCWD -100
/* creat(path, mode) is open(path, O_CREAT | O_WRONLY | O_TRUNC, mode). */
#define PT_CREAT_FLAGS (0100 | 01 | 01000)

/* The arguments an open keeps from its entry (struct pt_call). */
enum { PT_OPEN_PATH, PT_OPEN_FLAGS, PT_OPEN_MODE, PT_OPEN_DFD };

/* An open of a traced process (not the tracer's): keep its arguments. With
 * how (openat2), flags and mode come from the caller's struct open_how. */
static __always_inline int pt_open_begin(__s32 dfd, __u64 path, __u64 flags, __u64 mode,
					 const struct open_how *how)
{
	struct pt_call *c = pt_call_enter(PT_KIND_OPEN, PT_CTR_OPEN_NOT_FOLLOWED);
	struct open_how h = {};

	if (!c)
		return 0;
	if (how) {
		bpf_probe_read_user(&h, sizeof(h), how);
		flags = h.flags;
		mode = h.mode;
	}
	c->args[PT_OPEN_PATH] = path;
	c->args[PT_OPEN_FLAGS] = flags;
	c->args[PT_OPEN_MODE] = mode;
	c->args[PT_OPEN_DFD] = (__u64)dfd;
	return 0;
}

/* The open returned ret: report it. */
static __always_inline int pt_open_end(long ret)
{
	struct pt_call open;
	struct pt_open *r;
	struct pt_emit e;

	if (!pt_call_exit(PT_KIND_OPEN, &open))
		return 0;
	r = pt_open_open(&e, bpf_get_current_pid_tgid());
	if (!r)
		return 0;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	r->dfd = (__s32)open.args[PT_OPEN_DFD];
	r->flags = open.args[PT_OPEN_FLAGS];
	r->mode = open.args[PT_OPEN_MODE];
	r->fd = ret;
	if (pt_open_reserve(&e, PT_OPEN_DATA_MAX) &&
	    pt_open_path_ustr(&e, (const void *)open.args[PT_OPEN_PATH]) == PT_OPEN_PATH_CAP - 1)
		pt_open_set_path_truncated(&e);
	pt_open_commit(&e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int pt_openat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return pt_open_begin(ctx->args[0], ctx->args[1], (__u32)ctx->args[2], (__u32)ctx->args[3],
			     NULL);
}

/* openat2(dfd, path, struct open_how *how, size): flags and mode from how. */
SEC("tracepoint/syscalls/sys_enter_openat2")
int pt_openat2_enter(struct trace_event_raw_sys_enter *ctx)
{
	return pt_open_begin(ctx->args[0], ctx->args[1], 0, 0,
			     (const struct open_how *)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_open")
int pt_open_enter(struct trace_event_raw_sys_enter *ctx)
{
	return pt_open_begin(PT_AT_FDCWD, ctx->args[0], (__u32)ctx->args[1], (__u32)ctx->args[2],
			     NULL);
}

SEC("tracepoint/syscalls/sys_enter_creat")
int pt_creat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return pt_open_begin(PT_AT_FDCWD, ctx->args[0], PT_CREAT_FLAGS, (__u32)ctx->args[1], NULL);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int pt_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_open_end(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int pt_openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_open_end(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_open")
int pt_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_open_end(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_creat")
int pt_creat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_open_end(ctx->ret);
}
