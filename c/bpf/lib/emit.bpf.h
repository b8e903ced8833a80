/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emit.bpf.h - the one emit path. Every record any program sends goes
 * through these few functions, which do all the counting:
 *
 *   open     reserve the metadata record (ring full: meta_lost[kind]),
 *            zero it, fill the common header;
 *   reserve  reserve this CPU's data pages for the variable fields (full:
 *            the record goes out flagged data_lost, counted in data_lost[kind]);
 *   append   copy each variable field in declaration order (string, memory,
 *            stack), recording its length in the record;
 *   commit   give back the unused data, count the bytes, submit, wake the
 *            consumer if it sleeps, count emitted[kind].
 *
 * Programs do not call these directly but through the typed wrappers the
 * registry generates (pt_kinds.bpf.h: pt_exec_open, pt_exec_argv_umem, ...),
 * which pass every bound the verifier needs as a constant or a knob.
 *
 * Verifier bounds: a field is written at dst + off with at most cap bytes,
 * where dst = pages + (pos & pt_ring_mask), off <= the sum of the earlier
 * fields' caps (off_max, checked here) and cap is the field's own. The data
 * element is ring + slack bytes with slack >= the sum of all caps of the
 * kind, so max(dst) + max(off) + max(cap) stays inside it.
 */
#ifndef PT_EMIT_BPF_H
#define PT_EMIT_BPF_H

#include "lib/transport.bpf.h"

#ifndef ENOSPC
#define ENOSPC 28
#endif

/* One record being built, on the program's stack. */
struct pt_emit {
	struct pt_cpu_ctl *ctl; /* this CPU's control block (counters, positions) */
	__u8 *pages;		/* this CPU's data pages */
	struct pt_hdr *hdr;	/* the metadata record in the ring, once opened */
	__u8 *dst;		/* start of the reserved data, NULL without */
	__u64 pos;		/* ring position of dst */
	__u32 reserved;		/* bytes reserved at pos */
	__u32 used;		/* bytes written so far */
	__u32 size;		/* bytes of the metadata record */
	__u32 cpu;
	__u16 kind;
	bool urgent; /* the data ring passed half full: wake the consumer */
};

/* This CPU's control block and pages. False only if the maps are broken. */
static __always_inline bool pt_emit_init(struct pt_emit *e)
{
	__u32 cpu = bpf_get_smp_processor_id();

	e->cpu = cpu;
	e->hdr = NULL;
	e->dst = NULL;
	e->ctl = bpf_map_lookup_elem(&pt_ctl, &cpu);
	e->pages = bpf_map_lookup_elem(&pt_data, &cpu);
	return e->ctl && e->pages;
}

/* The process' start, CLOCK_BOOTTIME (its group leader's; de_thread gives an
 * exec'ing thread its leader's): with the pid, the identity of a process
 * that pid reuse cannot confuse, and what /proc/PID/stat's starttime shows
 * in clock ticks. Two direct loads through the BTF task pointer. */
static __always_inline __u64 pt_task_boot_start(struct task_struct *task)
{
	return task->group_leader->start_boottime;
}

/* The common header of a record of `kind` made now, on `cpu`, by the task
 * pid_tgid, which is the current task (a program reporting another task
 * sets proc_start_ns after the open); the rest stays zero until the commit. */
static __always_inline void pt_hdr_fill(struct pt_hdr *h, __u16 kind, __u32 cpu, __u64 pid_tgid)
{
	h->kind = kind;
	h->cpu = cpu;
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->ts_ns = bpf_ktime_get_ns();
	h->proc_start_ns = pt_task_boot_start(bpf_get_current_task_btf());
}

/* Opens a record of `kind`, `size` bytes of metadata (a constant). */
static __always_inline void *pt_emit_open(struct pt_emit *e, __u16 kind, __u32 size, __u64 pid_tgid)
{
	struct pt_hdr *h;

	if (!pt_emit_init(e))
		return NULL;
	e->kind = kind & (PT_KIND_MAX - 1);
	e->size = size;
	e->pos = 0;
	e->reserved = 0;
	e->used = 0;
	e->urgent = false;
	h = bpf_ringbuf_reserve(&pt_meta, size, 0);
	if (!h) {
		pt_count(&e->ctl->meta_lost[e->kind], 1);
		return NULL;
	}
	__builtin_memset(h, 0, size);
	pt_hdr_fill(h, kind, e->cpu, pid_tgid);
	e->hdr = h;
	return h;
}

/* Reserves min(need, max) bytes of data. */
static __always_inline bool pt_emit_reserve(struct pt_emit *e, __u32 need, __u32 max)
{
	__s64 pos;

	if (need > max)
		need = max;
	pos = pt_data_reserve(e->ctl, need, &e->urgent);
	if (pos < 0) {
		e->hdr->flags |= PT_F_DATA_LOST;
		pt_count(&e->ctl->data_lost[e->kind & (PT_KIND_MAX - 1)], 1);
		return false;
	}
	e->pos = pos;
	e->reserved = need;
	e->dst = e->pages + (pos & pt_ring_mask);
	return true;
}

/*
 * Appends a NUL-terminated string of at most cap - 1 bytes (the NUL is not
 * kept). Returns its length, or a negative errno (nothing appended).
 */
static __always_inline long pt_emit_str(struct pt_emit *e, __u32 *len, __u32 off_max, __u32 cap,
					const void *src, bool user)
{
	__u32 off = e->used;
	long n;

	if (!e->dst || off > off_max || off + cap > e->reserved)
		return -ENOSPC;
	if (user)
		n = bpf_probe_read_user_str(e->dst + off, cap, src);
	else
		n = bpf_probe_read_kernel_str(e->dst + off, cap, src);
	if (n <= 0)
		return n;
	n -= 1;
	if (n >= cap)
		n = cap - 1;
	*len = n;
	e->used = off + n;
	return n;
}

/* Appends min(n, cap) bytes. Returns how many, or a negative errno. */
static __always_inline long pt_emit_mem(struct pt_emit *e, __u32 *len, __u32 off_max, __u32 cap,
					const void *src, __u32 n, bool user)
{
	__u32 off = e->used;
	long err;

	if (n > cap)
		n = cap;
	if (!e->dst || off > off_max || off + n > e->reserved)
		return -ENOSPC;
	if (!n)
		return 0;
	/* The bound again, on the register the helper gets: clang may fold the
	 * two tests above into one of n - 1 on a copy, whose bound 6.1's
	 * verifier does not carry back to n. */
	barrier_var(n);
	if (n > cap)
		return -ENOSPC;
	if (user)
		err = bpf_probe_read_user(e->dst + off, n, src);
	else
		err = bpf_probe_read_kernel(e->dst + off, n, src);
	if (err)
		return err;
	*len = n;
	e->used = off + n;
	return n;
}

/* Bytes at most of one piece of a field made of pieces (pt_emit_piece). */
#define PT_PIECE_MAX 256

/*
 * Appends one user string, its NUL kept, of at most PT_PIECE_MAX bytes, to a
 * field made of several (an argv read pointer by pointer): its length grows
 * by the piece's. Returns the piece's bytes, -ENOSPC when fewer than
 * PT_PIECE_MAX bytes of the field's cap are left (the caller flags the
 * field cut), or another negative errno.
 */
static __always_inline long pt_emit_piece(struct pt_emit *e, __u32 *len, __u32 off_max, __u32 cap,
					  const void *src)
{
	__u32 off = e->used;
	long n;

	if (!e->dst || cap < PT_PIECE_MAX || off > off_max + cap - PT_PIECE_MAX ||
	    off + PT_PIECE_MAX > e->reserved)
		return -ENOSPC;
	n = bpf_probe_read_user_str(e->dst + off, PT_PIECE_MAX, src);
	if (n < 0)
		return n;
	/* Older kernels (6.1's strncpy_from_user_nofault) return 0, not 1,
	 * for an empty string: it is still a piece of one byte, its NUL. */
	if (n == 0) {
		e->dst[off] = 0;
		n = 1;
	}
	if (n > PT_PIECE_MAX)
		n = PT_PIECE_MAX;
	*len += n;
	e->used = off + n;
	return n;
}

/*
 * Appends min(n, what is left of cap) bytes of user memory to a field made
 * of pieces of any size (a writev's buffers): its length grows by theirs.
 * Returns the bytes appended (0 once the field is full), or a negative
 * errno. The verifier cannot tie the piece's size to where it starts (both
 * up to cap past the field), so such a field takes two caps of slack.
 */
static __always_inline long pt_emit_mem_piece(struct pt_emit *e, __u32 *len, __u32 off_max,
					      __u32 cap, const void *src, __u32 n)
{
	__u32 off = e->used, have = *len;
	long err;

	if (!e->dst || have > cap || off > off_max + cap)
		return -ENOSPC;
	if (n > cap - have)
		n = cap - have;
	if (n > cap)
		n = cap; /* cannot happen; bounds the size for the verifier */
	if (off + n > e->reserved)
		return -ENOSPC;
	if (!n)
		return 0;
	err = bpf_probe_read_user(e->dst + off, n, src);
	if (err)
		return err;
	*len = have + n;
	e->used = off + n;
	return n;
}

/* Appends a stack walked by bpf_get_stack (flags as that helper takes them). */
static __always_inline long pt_emit_stack(struct pt_emit *e, __u32 *len, __u32 off_max, __u32 cap,
					  void *ctx, __u64 flags)
{
	__u32 off = e->used;
	long n;

	if (!e->dst || off > off_max || off + cap > e->reserved)
		return -ENOSPC;
	n = bpf_get_stack(ctx, e->dst + off, cap, flags);
	if (n <= 0)
		return n;
	if (n > cap)
		n = 0; /* cannot happen; bounds the length for the verifier */
	*len = n;
	e->used = off + n;
	return n;
}

static __always_inline void pt_emit_flag(struct pt_emit *e, __u16 bit)
{
	e->hdr->flags |= bit;
}

/* Bumps a per-kind counter (PT_CTR_*). Needs only pt_emit_init. */
static __always_inline void pt_emit_count(struct pt_emit *e, __u32 counter)
{
	pt_count(&e->ctl->counters[counter & (PT_COUNTERS_MAX - 1)], 1);
}

/* Sends the record; lazy records never wake a sleeping consumer. */
static __always_inline void pt_emit_commit(struct pt_emit *e, bool lazy)
{
	struct pt_hdr *h = e->hdr;

	if (e->dst) {
		h->data_pos = e->pos;
		h->data_len = e->used;
		h->data_span = pt_data_trim(e->ctl, e->pos, e->reserved, e->used);
		pt_count(&e->ctl->data_bytes[e->kind & (PT_KIND_MAX - 1)], e->used);
	}
	pt_submit(h, e->size, e->urgent, lazy);
	pt_count(&e->ctl->emitted[e->kind & (PT_KIND_MAX - 1)], 1);
}

/*
 * The peer transports of the benchmarks (a plain ringbuf, a perf buffer)
 * write their own rings, not these; they count what they sent or lost here,
 * so the counters stay in this one place.
 */
static __always_inline void pt_emit_peer_sent(struct pt_emit *e, __u16 kind, __u32 bytes)
{
	pt_count(&e->ctl->emitted[kind & (PT_KIND_MAX - 1)], 1);
	pt_count(&e->ctl->data_bytes[kind & (PT_KIND_MAX - 1)], bytes);
}

static __always_inline void pt_emit_peer_lost(struct pt_emit *e, __u16 kind)
{
	pt_count(&e->ctl->meta_lost[kind & (PT_KIND_MAX - 1)], 1);
}

#endif /* PT_EMIT_BPF_H */
