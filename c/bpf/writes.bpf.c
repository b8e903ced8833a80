// SPDX-License-Identifier: Apache-2.0
/*
 * writes.bpf.c - what traced processes write to the captured fds (stdout
 * and stderr unless configured): write, writev, pwrite64, pwritev, pwritev2.
 *
 * The entry of a write to a captured fd by a traced process keeps its
 * buffer (lib/call.bpf.h); the exit reports the bytes the syscall wrote,
 * read back from the caller's buffers, and the stream position: the bytes
 * the process wrote to that fd before, counted for every successful write
 * (reported or not) in storage of the process' group leader, so a write
 * that could not be reported shows as a gap. Any other fd costs a compare
 * per captured fd; a process that is not traced, one lookup more.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "pt_kinds.bpf.h"
#include "lib/call.bpf.h"

/* Set by the loader before load: the captured fds. */
const volatile __s32 pt_write_fds[PT_WRITE_FDS_MAX] = { 1, 2 };
const volatile __u32 pt_write_nfds = 2;

/* Buffers of a vector write read at most (the kernel's UIO_MAXIOV). */
#define PT_IOV_MAX 1024

/* The arguments a write keeps from its entry (struct pt_call). */
enum { PT_WRITE_BUF, PT_WRITE_COUNT, PT_WRITE_SLOT, PT_WRITE_VECTOR };

/* Per process: bytes written so far to each captured fd (by slot). */
struct pt_write_offsets {
	__u64 bytes[PT_WRITE_FDS_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pt_write_offsets);
} pt_write_offsets SEC(".maps");

/* The fd's slot among the captured fds, or -1. */
static __always_inline int pt_write_slot(__s32 fd)
{
	for (int i = 0; i < PT_WRITE_FDS_MAX; i++)
		if (i < pt_write_nfds && pt_write_fds[i] == fd)
			return i;
	return -1;
}

/* A write of a traced process to a captured fd (an unsigned int to the
 * kernel: the register's upper half is ignored): keep its buffer(s). */
static __always_inline int pt_write_begin(__s32 fd, __u64 buf, __u64 count, bool vector)
{
	int slot = pt_write_slot(fd);
	struct pt_call *c;

	if (slot < 0)
		return 0;
	c = pt_call_enter(PT_KIND_WRITE, PT_CTR_WRITE_NOT_FOLLOWED);
	if (!c)
		return 0;
	c->args[PT_WRITE_BUF] = buf;
	c->args[PT_WRITE_COUNT] = count;
	c->args[PT_WRITE_SLOT] = slot;
	c->args[PT_WRITE_VECTOR] = vector;
	return 0;
}

/* A vector write's buffers being appended (bpf_loop's context). */
struct pt_iov_walk {
	struct pt_emit *e;
	const struct iovec *iov;
	__u64 want; /* bytes written not yet appended */
};

/* Appends buffer i; 1 (stop) once the cap is reached or a buffer is
 * unreadable. */
static long pt_write_iovec(__u32 i, void *ctx)
{
	struct pt_iov_walk *w = ctx;
	struct iovec v;
	__u64 n;

	if (!w->want || bpf_probe_read_user(&v, sizeof(v), &w->iov[i]))
		return 1;
	n = v.iov_len < w->want ? v.iov_len : w->want;
	if (pt_write_data_upiece(w->e, v.iov_base, n) < (long)n)
		return 1;
	w->want -= n;
	return 0;
}

/* The write returned ret: count its bytes in the stream, report them. */
static __always_inline int pt_write_end(long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_write_offsets *o;
	struct pt_call w;
	struct pt_write *r;
	struct pt_emit e;
	__u32 slot;
	__u64 start;

	if (!pt_call_exit(PT_KIND_WRITE, &w) || ret <= 0)
		return 0;
	slot = w.args[PT_WRITE_SLOT] & (PT_WRITE_FDS_MAX - 1);
	o = bpf_task_storage_get(&pt_write_offsets, task->group_leader, 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!o) {
		if (pt_emit_init(&e))
			pt_emit_count(&e, PT_CTR_WRITE_NOT_FOLLOWED);
		return 0;
	}
	start = __sync_fetch_and_add(&o->bytes[slot], ret);
	r = pt_write_open(&e, bpf_get_current_pid_tgid());
	if (!r)
		return 0;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	r->fd = pt_write_fds[slot];
	r->len = ret;
	r->offset = start;
	if (pt_write_reserve(&e, ret > PT_WRITE_DATA_MAX ? PT_WRITE_DATA_MAX : ret)) {
		struct pt_iov_walk walk = { &e, (const void *)w.args[PT_WRITE_BUF], ret };
		__u64 cnt = w.args[PT_WRITE_COUNT];

		if (w.args[PT_WRITE_VECTOR])
			bpf_loop(cnt < PT_IOV_MAX ? cnt : PT_IOV_MAX, pt_write_iovec, &walk, 0);
		else
			pt_write_data_umem(&e, (const void *)w.args[PT_WRITE_BUF], ret);
	}
	/* Bytes lost with the data pages full are data_lost's, not a cut. */
	if (e.dst && r->data_len < ret)
		pt_write_set_truncated(&e);
	pt_write_commit(&e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int pt_write_enter(struct trace_event_raw_sys_enter *ctx)
{
	return pt_write_begin((__s32)ctx->args[0], ctx->args[1], ctx->args[2], false);
}

SEC("tracepoint/syscalls/sys_enter_pwrite64")
int pt_pwrite64_enter(struct trace_event_raw_sys_enter *ctx)
{
	return pt_write_begin((__s32)ctx->args[0], ctx->args[1], ctx->args[2], false);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int pt_writev_enter(struct trace_event_raw_sys_enter *ctx)
{
	return pt_write_begin((__s32)ctx->args[0], ctx->args[1], ctx->args[2], true);
}

SEC("tracepoint/syscalls/sys_enter_pwritev")
int pt_pwritev_enter(struct trace_event_raw_sys_enter *ctx)
{
	return pt_write_begin((__s32)ctx->args[0], ctx->args[1], ctx->args[2], true);
}

SEC("tracepoint/syscalls/sys_enter_pwritev2")
int pt_pwritev2_enter(struct trace_event_raw_sys_enter *ctx)
{
	return pt_write_begin((__s32)ctx->args[0], ctx->args[1], ctx->args[2], true);
}

SEC("tracepoint/syscalls/sys_exit_write")
int pt_write_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_write_end(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_pwrite64")
int pt_pwrite64_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_write_end(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_writev")
int pt_writev_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_write_end(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_pwritev")
int pt_pwritev_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_write_end(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_pwritev2")
int pt_pwritev2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_write_end(ctx->ret);
}
