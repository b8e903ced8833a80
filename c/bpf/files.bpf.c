// SPDX-License-Identifier: Apache-2.0
/*
 * files.bpf.c - file opens: openat, openat2, open and creat.
 *
 * Each syscall's tracepoints (classic ones: the loader mounts tracefs when
 * it must) bracket the open: the entry keeps the arguments of a traced
 * process' open by thread, the exit reports them with the result, the new
 * fd or the errno. The path is read at the exit, from the caller's memory
 * as it passed it. A process that is not traced costs one lookup.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "pt_kinds.bpf.h"
#include "lib/filter.bpf.h"

#define PT_AT_FDCWD -100
/* creat(path, mode) is open(path, O_CREAT | O_WRONLY | O_TRUNC, mode). */
#define PT_CREAT_FLAGS (0100 | 01 | 01000)

/* The arguments of an open in flight, in the thread's own storage (made at
 * its first traced open, freed with the thread: no insert per open). */
struct pt_open_try {
	__u64 path; /* user pointer, as passed */
	__u64 flags;
	__u64 mode;
	__s32 dfd;
	__u32 pending; /* 1 from the entry to the return */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pt_open_try);
} pt_open_tries SEC(".maps");

/* An open of a traced process (not the tracer's): keep its arguments. */
static __always_inline int pt_open_try(__s32 dfd, __u64 path, __u64 flags, __u64 mode)
{
	struct task_struct *task = pt_traced_current();
	struct pt_open_try *t;
	struct pt_emit e;

	if (!task)
		return 0;
	t = bpf_task_storage_get(&pt_open_tries, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t) {
		if (pt_emit_init(&e))
			pt_open_count_not_followed(&e);
		return 0;
	}
	t->path = path;
	t->flags = flags;
	t->mode = mode;
	t->dfd = dfd;
	t->pending = 1;
	return 0;
}

/* The open returned ret: report it. */
static __always_inline int pt_open_done(long ret)
{
	struct pt_open_try *t = bpf_task_storage_get(&pt_open_tries, bpf_get_current_task_btf(), 0,
						     0);
	struct pt_open_try open;
	struct pt_open *r;
	struct pt_emit e;

	if (!t || !t->pending)
		return 0;
	open = *t;
	t->pending = 0;
	r = pt_open_open(&e, bpf_get_current_pid_tgid());
	if (!r)
		return 0;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	r->dfd = open.dfd;
	r->flags = open.flags;
	r->mode = open.mode;
	r->fd = ret;
	if (pt_open_reserve(&e, PT_OPEN_DATA_MAX) &&
	    pt_open_path_ustr(&e, (const void *)open.path) == PT_OPEN_PATH_CAP - 1)
		pt_open_set_path_truncated(&e);
	pt_open_commit(&e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int pt_openat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return pt_open_try(ctx->args[0], ctx->args[1], (__u32)ctx->args[2], (__u32)ctx->args[3]);
}

/* openat2(dfd, path, struct open_how *how, size): flags and mode from how. */
SEC("tracepoint/syscalls/sys_enter_openat2")
int pt_openat2_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return pt_open_try(ctx->args[0], ctx->args[1], how.flags, how.mode);
}

SEC("tracepoint/syscalls/sys_enter_open")
int pt_open_enter(struct trace_event_raw_sys_enter *ctx)
{
	return pt_open_try(PT_AT_FDCWD, ctx->args[0], (__u32)ctx->args[1], (__u32)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_creat")
int pt_creat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return pt_open_try(PT_AT_FDCWD, ctx->args[0], PT_CREAT_FLAGS, (__u32)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int pt_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_open_done(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int pt_openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_open_done(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_open")
int pt_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_open_done(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_creat")
int pt_creat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_open_done(ctx->ret);
}
