// SPDX-License-Identifier: Apache-2.0
/*
 * bootstrap.c - the loader: validate, open, size, load, attach; map the data
 * pages; poll the metadata ring and copy each record, with its bytes read in
 * place from the data pages, into caller-provided buffers.
 *
 * No signal handlers, no threads, no process-global state: every bit of state
 * lives in struct proctap, so instances coexist.
 */
#define _GNU_SOURCE /* epoll_pwait2 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/perf_event.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "proctap.h"
#include "proc.skel.h"
#include "synth.skel.h"
#include "profile.skel.h"

#define PT_DEFAULT_PAGES 64
#define PT_DEFAULT_RINGBUF (1u << 20)
#define PT_DEFAULT_FLUSH_US 10000
/* The kernel refuses array values above KMALLOC_MAX_SIZE (4 MiB on x86-64). */
#define PT_ELEM_MAX (4u << 20)
/* Records consumed between two checks of the flush deadline. */
#define PT_DRAIN_BUDGET 1024
/* The poll thread's sleep is bounded: a doorbell that found the ring full
 * (counted in doorbell_lost) is then rung by the next record, or by this.
 * Stack samples never ring a sleeper (pt_submit_lazy), so with the profiler
 * on the bound is what delivers them: 100 ms. Without it, 1 s: each timed
 * wake-up costs ~50 us of CPU on a small VM, and nothing else waits for it. */
#define PT_IDLE_TIMEOUT_MS 1000
#define PT_IDLE_TIMEOUT_PROFILE_MS 100
/* Synthetic source defaults: inline ringbuf size, perf buffer bytes per CPU. */
#define PT_SYNTH_RINGBUF_DEFAULT (4u << 20)
#define PT_SYNTH_PERFBUF_DEFAULT (2u << 20)

struct proctap {
	struct proc *skel;
	struct synth *synth;    /* the synthetic source, when configured */
	struct profile *prof;   /* the profiler, when configured */
	struct bpf_link **perf_links; /* pf_sample on each online CPU's cpu-clock */
	int nperf;              /* entries of perf_links in use */
	struct ring_buffer *rb; /* synth_rb, for the ringbuf peer transport */
	struct perf_buffer *pb; /* synth_pb, for the perf-buffer transport */
	bool busy_poll;
	_Atomic bool stop_requested;
	int epfd;
	int stopfd;
	struct pt_cpu_ctl *ctl; /* mmap of pt_ctl, one element per CPU */
	size_t ctl_map_len;
	const __u8 *pages;      /* mmap of pt_data, read only */
	size_t pages_map_len;
	size_t elem_size;       /* ring + slack, bytes per CPU */
	__u64 ring_mask;
	__u32 ncpus;
	__u64 flush_ns;
	struct proctap_cons *cons; /* per CPU */
	__u64 *cons_published;     /* per CPU: last cons stored to pt_ctl */
	__u64 released_unpublished; /* bytes released since the last publish */

	/* The metadata ring, consumed here directly (not through libbpf's
	 * ring_buffer) so the consumer position is published once per batch
	 * of records instead of once per record. */
	int meta_fd;
	__u64 meta_mask;          /* ring bytes - 1 */
	__u64 *meta_cons;         /* consumer page (read-write) */
	const __u64 *meta_prod;   /* producer page */
	const __u8 *meta_data;    /* data pages, mapped twice back to back */
	size_t meta_prod_len;
	struct pt_wake *wake;     /* mmap of pt_wake (one page) */
	size_t page;              /* system page size: the consumer and wake maps */

	/* poll loop */
	proctap_swap_fn swap;
	void *swap_ctx;
	struct proctap_buf *buf;
	__u64 buf_first_ts;
	__u64 last_handover_ts;
	bool refused; /* swap returned NULL */

	/* loader counters; written by the poll thread, read by any */
	_Atomic __u64 delivered[PT_KIND_MAX];
	_Atomic __u64 invalid;
	_Atomic __u64 oversize;
	_Atomic __u64 abandoned;
	_Atomic __u64 ring_stalls;
	_Atomic __u64 handovers;
	_Atomic __u64 wakeups;
	_Atomic __u64 sleeps;
	_Atomic __u64 nested;
	__u64 loss_reported[PT_KIND_MAX]; /* meta_lost already told as PT_KIND_LOSS */
};

static void pt_profile_detach(struct proctap *pt);

/* ------------------------------------------------------------------------ */

static int pt_fail(struct proctap_error *err, int code, int errnum, const char *field,
		   const char *program, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

static int pt_fail(struct proctap_error *err, int code, int errnum, const char *field,
		   const char *program, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	memset(err, 0, sizeof(*err));
	err->code = code;
	err->errnum = errnum;
	if (field)
		snprintf(err->field, sizeof(err->field), "%s", field);
	if (program)
		snprintf(err->program, sizeof(err->program), "%s", program);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return code;
}

static bool pt_pow2(__u64 v)
{
	return v && !(v & (v - 1));
}

static __u64 pt_round_up(__u64 v, __u64 to)
{
	return (v + to - 1) / to * to;
}

/* Defaults applied: the config the instance actually runs with. */
static void pt_config_resolve(const struct proctap_config *in, struct proctap_config *out)
{
	*out = *in;
	if (!out->events)
		out->events = PROCTAP_EV_EXEC | PROCTAP_EV_EXIT;
	if (!out->argv_max)
		out->argv_max = PT_ARGV_DEFAULT;
	if (!out->pages_per_cpu) {
		/* Room for at least two of the largest records, within the
		 * kernel's per-CPU limit. */
		__u64 record = PT_FILENAME_MAX + (__u64)out->argv_max;
		__u64 slack = pt_round_up(record, PT_PAGE_SIZE);

		out->pages_per_cpu = PT_DEFAULT_PAGES;
		while ((__u64)out->pages_per_cpu * PT_PAGE_SIZE < 2 * record &&
		       (__u64)out->pages_per_cpu * 2 * PT_PAGE_SIZE + slack <= PT_ELEM_MAX)
			out->pages_per_cpu *= 2;
	}
	if (!out->ringbuf_bytes)
		out->ringbuf_bytes = PT_DEFAULT_RINGBUF;
	if (!out->flush_us)
		out->flush_us = PT_DEFAULT_FLUSH_US;
	if ((out->events & PROCTAP_EV_SAMPLE) && !out->profile_hz)
		out->profile_hz = PT_PROFILE_HZ_DEFAULT;
	if (out->events & PROCTAP_EV_SYNTH) {
		if (!out->synth_batch)
			out->synth_batch = 1;
		if (!out->synth_ring_bytes)
			out->synth_ring_bytes = out->synth_transport == PROCTAP_SYNTH_PERFBUF
						? PT_SYNTH_PERFBUF_DEFAULT : PT_SYNTH_RINGBUF_DEFAULT;
	}
}

/* Bytes reserved per exec record at most: the data pages must hold one. */
static __u64 pt_max_record(const struct proctap_config *c)
{
	return PT_FILENAME_MAX + (__u64)c->argv_max;
}

/* Slack after each CPU's ring: room for the largest record any program
 * writes (the verifier checks the synthetic source against it too). */
static __u64 pt_slack(const struct proctap_config *c)
{
	__u64 largest = pt_max_record(c);

	if (largest < PT_SYNTH_PAYLOAD_MAX)
		largest = PT_SYNTH_PAYLOAD_MAX;
	if (largest < PT_SAMPLE_DATA_MAX)
		largest = PT_SAMPLE_DATA_MAX;
	return pt_round_up(largest, PT_PAGE_SIZE);
}

int proctap_config_check(const struct proctap_config *in, struct proctap_error *err)
{
	struct proctap_config c;
	__u64 ring;

	if (!in)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "config", NULL, "config is NULL");
	pt_config_resolve(in, &c);
	ring = (__u64)c.pages_per_cpu * PT_PAGE_SIZE;

	if (c.events & ~(__u32)(PROCTAP_EV_EXEC | PROCTAP_EV_EXIT | PROCTAP_EV_SYNTH |
				PROCTAP_EV_SAMPLE))
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "events", NULL,
			       "unknown event bits 0x%x", c.events);
	if (c.events & PROCTAP_EV_SYNTH) {
		if (c.synth_tgid == 0)
			return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "synth_tgid", NULL,
				       "the synthetic source needs the pid whose getppid() triggers it");
		if (c.synth_payload > PT_SYNTH_PAYLOAD_MAX)
			return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "synth_payload", NULL,
				       "synth_payload %u is above %u bytes", c.synth_payload,
				       PT_SYNTH_PAYLOAD_MAX);
		if (c.synth_batch > PT_SYNTH_BATCH_MAX)
			return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "synth_batch", NULL,
				       "synth_batch %u is above %u", c.synth_batch, PT_SYNTH_BATCH_MAX);
		if (c.synth_transport > PROCTAP_SYNTH_PERFBUF)
			return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "synth_transport", NULL,
				       "unknown synth_transport %u", c.synth_transport);
		if (!pt_pow2(c.synth_ring_bytes) || c.synth_ring_bytes < PT_PAGE_SIZE ||
		    c.synth_ring_bytes > (1u << 30))
			return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "synth_ring_bytes", NULL,
				       "synth_ring_bytes %u must be a power of two from %u to 1 GiB",
				       c.synth_ring_bytes, PT_PAGE_SIZE);
	}
	if ((c.events & PROCTAP_EV_SAMPLE) && (c.profile_hz < 1 || c.profile_hz > PT_PROFILE_HZ_MAX))
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "profile_hz", NULL,
			       "profile_hz %u is outside 1..%u samples per second", c.profile_hz,
			       PT_PROFILE_HZ_MAX);
	if (c.argv_max > PT_ARGV_MAX_LIMIT)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "argv_max", NULL,
			       "argv_max %u exceeds the limit of %u bytes", c.argv_max,
			       PT_ARGV_MAX_LIMIT);
	if (!pt_pow2(c.pages_per_cpu))
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "pages_per_cpu", NULL,
			       "pages_per_cpu %u must be a power of two", c.pages_per_cpu);
	if (ring < pt_max_record(&c))
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "pages_per_cpu", NULL,
			       "%u pages (%llu bytes) cannot hold one exec record of up to %llu "
			       "bytes; raise pages_per_cpu or lower argv_max",
			       c.pages_per_cpu, (unsigned long long)ring,
			       (unsigned long long)pt_max_record(&c));
	if (ring + pt_slack(&c) > PT_ELEM_MAX)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "pages_per_cpu", NULL,
			       "data pages plus slack (%llu bytes) exceed the kernel's 4 MiB "
			       "per-CPU limit; lower pages_per_cpu or argv_max",
			       (unsigned long long)(ring + pt_slack(&c)));
	if (!pt_pow2(c.ringbuf_bytes) || c.ringbuf_bytes < PT_PAGE_SIZE)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "ringbuf_bytes", NULL,
			       "ringbuf_bytes %u must be a power of two of at least %u",
			       c.ringbuf_bytes, PT_PAGE_SIZE);
	if (c.flush_us > 10u * 1000 * 1000)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "flush_us", NULL,
			       "flush_us %u is above 10 s", c.flush_us);
	if (c.npids > PT_MAX_PIDS)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "pids", NULL,
			       "%u pids given; at most %u", c.npids, PT_MAX_PIDS);
	for (__u32 i = 0; i < c.npids; i++)
		if (c.pids[i] == 0 || c.pids[i] > (1u << 22))
			return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "pids", NULL,
				       "pid %u is not a valid process id", c.pids[i]);
	if (c.exit_probe > PROCTAP_EXIT_LIVE)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "exit_probe", NULL,
			       "unknown exit_probe %u", c.exit_probe);
	if (c.comm_prefix_len >= PT_COMM_LEN)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "comm_prefix", NULL,
			       "comm_prefix is %u bytes; commands names have at most %u",
			       c.comm_prefix_len, PT_COMM_LEN - 1);
	for (__u32 i = 0; i < c.comm_prefix_len; i++)
		if (c.comm_prefix[i] == '\0')
			return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "comm_prefix", NULL,
				       "comm_prefix holds a NUL byte within its length");
	return PROCTAP_OK;
}

/* ------------------------------------------------------------------------ */

static __u64 pt_ts(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

__u64 proctap_monotonic_ns(void)
{
	return pt_ts(CLOCK_MONOTONIC);
}

/* CLOCK_REALTIME - CLOCK_MONOTONIC, from the tightest of three samples. */
static __s64 pt_realtime_offset(void)
{
	__u64 best_width = ~0ull;
	__s64 best = 0;

	for (int i = 0; i < 3; i++) {
		__u64 m1 = pt_ts(CLOCK_MONOTONIC);
		__u64 r = pt_ts(CLOCK_REALTIME);
		__u64 m2 = pt_ts(CLOCK_MONOTONIC);

		if (m2 - m1 < best_width) {
			best_width = m2 - m1;
			best = (__s64)(r - (m1 + (m2 - m1) / 2));
		}
	}
	return best;
}

static size_t pt_meta_size(__u16 kind)
{
	switch (kind) {
	case PT_KIND_EXEC:
		return sizeof(struct pt_exec);
	case PT_KIND_EXIT:
		return sizeof(struct pt_exit);
	case PT_KIND_SYNTH:
		return sizeof(struct pt_synth);
	case PT_KIND_SAMPLE:
		return sizeof(struct pt_sample);
	case PT_KIND_TRIGGER:
		return sizeof(struct pt_trigger);
	default:
		return 0;
	}
}

int proctap_cons_release(struct proctap_cons *c, __u64 pos, __u32 len)
{
	__u64 cons;

	if (!len || pos + len <= c->cons)
		return 0; /* nothing to release (or released already) */
	if (pos != c->cons) {
		if (c->npending >= PT_PENDING_MAX)
			return -1;
		c->pending[c->npending].pos = pos;
		c->pending[c->npending].end = pos + len;
		c->npending++;
		return 0;
	}
	cons = pos + len;
	for (__u32 i = 0; i < c->npending;) {
		if (c->pending[i].pos == cons) {
			cons = c->pending[i].end;
			c->pending[i] = c->pending[--c->npending];
			i = 0;
		} else {
			i++;
		}
	}
	c->cons = cons;
	return 1;
}

/*
 * Counts one more. The poll thread is the only writer of these counters, so
 * a plain load and store will do: a locked add would also wait for the
 * stores of the record just copied to drain, per record. proctap_stats reads
 * them from any thread.
 */
static inline void pt_bump(_Atomic __u64 *counter)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/*
 * Loads a skeleton with this thread's signals blocked. The verifier gives up
 * with EAGAIN when a signal is pending for the loading thread, and libbpf
 * retries only a few times, so a process whose children exit often (a
 * SIGCHLD each) could fail to load. Blocked here, a process-directed signal
 * goes to another thread, or waits until the load is done.
 */
static int pt_load(struct bpf_object_skeleton *skel)
{
	sigset_t all, old;
	int e;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	e = bpf_object__load_skeleton(skel);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return e;
}

/* Tells the kernel how far it may reuse each CPU's data pages. */
static void pt_publish_cons(struct proctap *pt)
{
	for (__u32 cpu = 0; cpu < pt->ncpus; cpu++) {
		if (pt->cons[cpu].cons == pt->cons_published[cpu])
			continue;
		/* Release: our reads of the bytes happen before the kernel reuses them. */
		__atomic_store_n(&pt->ctl[cpu].cons, pt->cons[cpu].cons, __ATOMIC_RELEASE);
		pt->cons_published[cpu] = pt->cons[cpu].cons;
	}
	pt->released_unpublished = 0;
}

/*
 * Releases a record's data span. The new position is published once per
 * batch of records (pt_meta_consume), or sooner when a quarter of a ring
 * waits: the producer reads cons on every reservation, and a line written
 * per record would bounce between the CPUs on every event.
 */
static void pt_release(struct proctap *pt, __u32 cpu, __u64 pos, __u32 len)
{
	int r = proctap_cons_release(&pt->cons[cpu], pos, len);

	if (r == 0 && len && pos > pt->cons[cpu].cons)
		pt_bump(&pt->nested);
	if (r > 0) {
		pt->released_unpublished += len;
		if (pt->released_unpublished > (pt->ring_mask + 1) / 4)
			pt_publish_cons(pt);
	} else if (r < 0)
		/* Cannot happen with nesting depth < PT_PENDING_MAX. The span
		 * stays unreleased, this CPU's later records count as data_lost,
		 * and ring_stalls says why. */
		pt_bump(&pt->ring_stalls);
}

static void pt_handover(struct proctap *pt, int last)
{
	struct proctap_buf *next;

	pt->buf->realtime_offset_ns = pt_realtime_offset();
	pt->last_handover_ts = pt_ts(CLOCK_MONOTONIC);
	pt_bump(&pt->handovers);
	next = pt->swap(pt->swap_ctx, pt->buf, last);
	pt->buf = last ? NULL : next;
	if (pt->buf) {
		pt->buf->len = 0;
		pt->buf->records = 0;
	} else if (!last) {
		pt->refused = true;
	}
}

/* Per-kind checks that the fixed part agrees with the data length. */
static bool pt_record_valid(const struct pt_hdr *h)
{
	if (h->data_len > h->data_span)
		return false;
	if (h->kind == PT_KIND_EXEC) {
		const struct pt_exec *e = (const struct pt_exec *)h;

		return (__u64)e->filename_len + e->argv_len == h->data_len;
	}
	if (h->kind == PT_KIND_SYNTH)
		return h->data_len == 0 ||
		       h->data_len == ((const struct pt_synth *)h)->payload_len;
	if (h->kind == PT_KIND_SAMPLE) {
		const struct pt_sample *s = (const struct pt_sample *)h;

		return (__u64)s->kstack_len + s->ustack_len == h->data_len &&
		       s->kstack_len % 8 == 0 && s->ustack_len % PT_USER_FRAME_SIZE == 0;
	}
	return h->data_len == 0;
}

/*
 * Appends one record (its fixed part, then data_len bytes from data) to the
 * caller's buffer, handing the buffer over first when the record does not
 * fit. Counts it delivered, or why it was not.
 */
static void pt_append(struct proctap *pt, const struct pt_hdr *h, size_t meta_size,
		      const __u8 *data)
{
	size_t rec_size = pt_round_up(meta_size + h->data_len, 8);
	struct pt_hdr *out;
	__u8 *dst;

	if (pt->buf && pt->buf->len + rec_size > pt->buf->cap && pt->buf->records)
		pt_handover(pt, 0);
	if (!pt->buf) {
		/* The caller refused a buffer (it is stopping): consume and count. */
		pt_bump(&pt->abandoned);
		return;
	}
	if (pt->buf->len + rec_size > pt->buf->cap) {
		pt_bump(&pt->oversize);
		return;
	}
	if (!pt->buf->records)
		pt->buf_first_ts = h->ts_ns;
	dst = pt->buf->data + pt->buf->len;
	memcpy(dst, h, meta_size);
	if (h->data_len)
		memcpy(dst + meta_size, data, h->data_len);
	memset(dst + meta_size + h->data_len, 0, rec_size - meta_size - h->data_len);
	out = (struct pt_hdr *)dst;
	out->data_pos = 0;
	out->data_span = 0;
	out->rec_size = rec_size;
	pt->buf->len += rec_size;
	pt->buf->records++;
	pt_bump(&pt->delivered[h->kind]);
}

/* ring_buffer callback: one metadata record, its data in the data pages. */
static int pt_on_meta(void *ctx, void *data, size_t size)
{
	struct proctap *pt = ctx;
	const struct pt_hdr *h = data;
	size_t meta_size;
	__u64 off;

	if (size >= sizeof(*h) && h->kind == PT_KIND_DOORBELL)
		return 0; /* it woke us; that was all */
	if (size < sizeof(*h) || h->cpu >= pt->ncpus || h->data_span > pt->ring_mask + 1) {
		pt_bump(&pt->invalid);
		return 0;
	}
	off = h->data_pos & pt->ring_mask;
	meta_size = pt_meta_size(h->kind);
	if (!meta_size || size < meta_size || !pt_record_valid(h) ||
	    off + h->data_len > pt->elem_size) {
		pt_bump(&pt->invalid);
	} else {
		pt_append(pt, h, meta_size, pt->pages + (size_t)h->cpu * pt->elem_size + off);
	}
	pt_release(pt, h->cpu, h->data_pos, h->data_span);
	return 0;
}

/* A synthetic record with its payload inline (ringbuf and perf-buffer peers). */
static void pt_on_inline(struct proctap *pt, const void *data, size_t size)
{
	const struct pt_hdr *h = data;

	if (size < sizeof(struct pt_synth) || h->kind != PT_KIND_SYNTH || h->data_span ||
	    h->data_len != ((const struct pt_synth *)h)->payload_len ||
	    size < sizeof(struct pt_synth) + (size_t)h->data_len) {
		pt_bump(&pt->invalid);
		return;
	}
	pt_append(pt, h, sizeof(struct pt_synth), (const __u8 *)data + sizeof(struct pt_synth));
}

static int pt_on_inline_rb(void *ctx, void *data, size_t size)
{
	pt_on_inline(ctx, data, size);
	return 0;
}

static void pt_on_inline_pb(void *ctx, int cpu, void *data, __u32 size)
{
	pt_on_inline(ctx, data, size);
}

/* BPF ringbuf record header (uapi: struct bpf_ringbuf_hdr). */
#define PT_RB_BUSY (1u << 31)
#define PT_RB_DISCARD (1u << 30)
#define PT_RB_HDR 8

/*
 * Takes up to budget records off the metadata ring. The consumer position
 * is stored once at the end (or when a quarter of the ring was read), so
 * producers on other CPUs keep its cache line.
 */
static int pt_meta_consume(struct proctap *pt, int budget)
{
	__u64 cons = *pt->meta_cons;
	__u64 published = cons;
	__u64 prod = __atomic_load_n(pt->meta_prod, __ATOMIC_ACQUIRE);
	int n = 0;

	while (n < budget) {
		const __u32 *hdr;
		__u32 len;

		if (cons == prod) {
			prod = __atomic_load_n(pt->meta_prod, __ATOMIC_ACQUIRE);
			if (cons == prod)
				break;
		}
		hdr = (const __u32 *)(pt->meta_data + (cons & pt->meta_mask));
		len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
		if (len & PT_RB_BUSY)
			break; /* reserved, not yet committed: records behind it wait */
		if (!(len & PT_RB_DISCARD)) {
			pt_on_meta(pt, (void *)(hdr + 2), len & ~(PT_RB_BUSY | PT_RB_DISCARD));
			n++;
		}
		cons += pt_round_up((len & ~(PT_RB_BUSY | PT_RB_DISCARD)) + PT_RB_HDR, 8);
		if (cons - published > (pt->meta_mask + 1) / 4) {
			pt_publish_cons(pt);
			__atomic_store_n(pt->meta_cons, cons, __ATOMIC_RELEASE);
			published = cons;
		}
	}
	pt_publish_cons(pt);
	if (cons != published)
		__atomic_store_n(pt->meta_cons, cons, __ATOMIC_RELEASE);
	return n;
}

/* Is anything committed in the metadata ring? */
static bool pt_meta_pending(struct proctap *pt)
{
	return __atomic_load_n(pt->meta_prod, __ATOMIC_ACQUIRE) != *pt->meta_cons;
}

/*
 * Puts losses in the stream: for each kind whose metadata-lost counter grew
 * since the last report, one PT_KIND_LOSS record with the difference. The
 * counters are summed before the ring is read, so a report follows the
 * records that were sent before the loss it reports.
 */
static void pt_report_losses(struct proctap *pt, const __u64 *lost)
{
	for (int k = 1; k < PT_KIND_MAX; k++) {
		struct pt_loss l;

		if (lost[k] <= pt->loss_reported[k])
			continue;
		memset(&l, 0, sizeof(l));
		l.hdr.kind = PT_KIND_LOSS;
		l.hdr.ts_ns = pt_ts(CLOCK_MONOTONIC);
		l.lost_kind = k;
		l.records = lost[k] - pt->loss_reported[k];
		pt->loss_reported[k] = lost[k];
		pt_append(pt, &l.hdr, sizeof(l), NULL);
	}
}

static void pt_meta_lost(struct proctap *pt, __u64 *lost)
{
	memset(lost, 0, PT_KIND_MAX * sizeof(*lost));
	for (__u32 cpu = 0; cpu < pt->ncpus; cpu++)
		for (int k = 0; k < PT_KIND_MAX; k++)
			lost[k] += __atomic_load_n(&pt->ctl[cpu].meta_lost[k], __ATOMIC_RELAXED);
}

/*
 * Whether a round that emptied the rings hands its batch over now. Sleeping
 * poll loops do: their rounds are already a flush interval apart. A busy
 * poll loop goes round every few tens of nanoseconds, and a hand-over per
 * round would cost more than the records in it under a steady flow. So it
 * hands over at once when nothing was handed over for a flush interval (an
 * isolated event: the lowest latency), and otherwise once per flush
 * interval (a flow: batches).
 */
static bool pt_handover_due(struct proctap *pt)
{
	return !pt->busy_poll || pt_ts(CLOCK_MONOTONIC) - pt->last_handover_ts >= pt->flush_ns;
}

/* One poll round: drain the rings, hand over what was collected. Returns
 * how many records it took, or a negative errno. */
static int pt_drain(struct proctap *pt)
{
	__u64 lost[PT_KIND_MAX];
	int total = 0;

	pt_bump(&pt->wakeups);
	pt_meta_lost(pt, lost);
	for (;;) {
		int n = pt_meta_consume(pt, PT_DRAIN_BUDGET);

		if (pt->rb) {
			int m = ring_buffer__consume_n(pt->rb, PT_DRAIN_BUDGET);

			if (m < 0)
				return m;
			n += m;
		}
		if (pt->pb) {
			int m = perf_buffer__consume(pt->pb);

			if (m < 0)
				return m;
			n += m;
		}
		total += n;
		if (n < PT_DRAIN_BUDGET)
			break;
		pt_report_losses(pt, lost);
		pt_meta_lost(pt, lost);
		/* Under sustained load hand over by age, not only when full. */
		if (pt->buf && pt->buf->records &&
		    pt_ts(CLOCK_MONOTONIC) - pt->buf_first_ts >= pt->flush_ns)
			pt_handover(pt, 0);
	}
	pt_report_losses(pt, lost);
	if (pt->buf && pt->buf->records && pt_handover_due(pt))
		pt_handover(pt, 0);
	return total;
}

/* Records the kernel submitted, and records taken off the ring. */
static void pt_ring_balance(struct proctap *pt, __u64 *emitted, __u64 *consumed)
{
	struct proctap_stats st;

	proctap_stats(pt, &st);
	*emitted = *consumed = 0;
	for (int k = 0; k < PT_KIND_MAX; k++) {
		*emitted += st.emitted[k];
		if (k != PT_KIND_LOSS) /* made here, not taken off the ring */
			*consumed += st.delivered[k];
	}
	*consumed += st.invalid + st.oversize + st.abandoned;
}

/*
 * Stopping: detach first so nothing new is emitted, then drain until every
 * emitted record was taken off the ring (delivered, or counted if no buffer
 * is left). Programs already running when the links went away finish within
 * microseconds; the wait is bounded at about 100 ms.
 */
static int pt_finish(struct proctap *pt)
{
	__u64 emitted, consumed;
	int err = 0;

	proc__detach(pt->skel);
	if (pt->synth)
		synth__detach(pt->synth);
	pt_profile_detach(pt);

	for (int i = 0; i < 100 && !err; i++) {
		usleep(1000);
		err = pt_drain(pt);
		err = err < 0 ? err : 0;
		pt_ring_balance(pt, &emitted, &consumed);
		if (consumed >= emitted)
			break;
	}
	return err;
}

int proctap_run(struct proctap *pt, proctap_swap_fn swap, void *ctx)
{
	struct epoll_event evs[4];
	bool stop = false, active = false;
	int err = 0;

	pt->swap = swap;
	pt->swap_ctx = ctx;
	pt->refused = false;
	pt->buf = swap(ctx, NULL, 0);
	if (!pt->buf)
		return 0;
	pt->buf->len = 0;
	pt->buf->records = 0;

	/*
	 * Two ways to wait. Active (the last round found records): sleep one
	 * flush interval and poll again; records arrive without waking anyone,
	 * so a busy kernel pays no wake-up per record. Idle (the last round
	 * found nothing): announce the sleep (struct pt_wake) and sleep until
	 * the first record rings the doorbell.
	 */
	while (!stop && !pt->refused) {
		struct timespec active_wait = {
			.tv_sec = pt->flush_ns / 1000000000ull,
			.tv_nsec = pt->flush_ns % 1000000000ull,
		};
		int n, got;

		if (pt->busy_poll) {
			/* Spin: no sleep, no wake-up latency; proctap_stop sets the flag. */
			stop = atomic_load_explicit(&pt->stop_requested, memory_order_acquire);
			got = stop ? 0 : pt_drain(pt);
			if (got < 0) {
				err = got;
				break;
			}
			continue;
		}
		if (active) {
			n = epoll_pwait2(pt->epfd, evs, 4, &active_wait, NULL);
		} else {
			__atomic_exchange_n(&pt->wake->sleeping, 1, __ATOMIC_SEQ_CST);
			if (pt_meta_pending(pt)) {
				/* Look once more after announcing: a record that
				 * committed before it rang no bell. */
				__atomic_store_n(&pt->wake->sleeping, 0, __ATOMIC_RELAXED);
				n = 0;
			} else {
				pt_bump(&pt->sleeps);
				n = epoll_wait(pt->epfd, evs, 4,
					       pt->prof ? PT_IDLE_TIMEOUT_PROFILE_MS : PT_IDLE_TIMEOUT_MS);
				__atomic_store_n(&pt->wake->sleeping, 0, __ATOMIC_RELAXED);
			}
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == pt->stopfd) {
				__u64 v;

				if (read(pt->stopfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					err = -errno;
				stop = true;
			}
		}
		if (err || stop)
			break;
		got = pt_drain(pt);
		if (got < 0) {
			err = got;
			break;
		}
		active = got > 0;
	}
	if (!err)
		err = pt_finish(pt);
	if (pt->buf)
		pt_handover(pt, 1);
	return err;
}

void proctap_stop(struct proctap *pt)
{
	__u64 one = 1;
	ssize_t r;

	if (pt) {
		atomic_store_explicit(&pt->stop_requested, true, memory_order_release);
		r = write(pt->stopfd, &one, sizeof(one));
		(void)r; /* EAGAIN: a stop is already pending */
	}
}

void proctap_stats(struct proctap *pt, struct proctap_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (__u32 cpu = 0; cpu < pt->ncpus; cpu++) {
		const volatile struct pt_cpu_ctl *c = &pt->ctl[cpu];

		for (int k = 0; k < PT_KIND_MAX; k++) {
			out->emitted[k] += c->emitted[k];
			out->meta_lost[k] += c->meta_lost[k];
			out->data_lost[k] += c->data_lost[k];
		}
		out->argv_truncated += c->argv_truncated;
		out->argv_fault += c->argv_fault;
		out->data_bytes += c->data_bytes;
		out->kstack_err += c->kstack_err;
		out->ustack_err += c->ustack_err;
		out->targets_full += c->targets_full;
	}
	out->perf_events = pt->nperf;
	out->nested = atomic_load_explicit(&pt->nested, memory_order_relaxed);
	for (int k = 0; k < PT_KIND_MAX; k++)
		out->delivered[k] = atomic_load_explicit(&pt->delivered[k], memory_order_relaxed);
	out->invalid = atomic_load_explicit(&pt->invalid, memory_order_relaxed);
	out->oversize = atomic_load_explicit(&pt->oversize, memory_order_relaxed);
	out->abandoned = atomic_load_explicit(&pt->abandoned, memory_order_relaxed);
	out->ring_stalls = atomic_load_explicit(&pt->ring_stalls, memory_order_relaxed);
	out->handovers = atomic_load_explicit(&pt->handovers, memory_order_relaxed);
	out->wakeups = atomic_load_explicit(&pt->wakeups, memory_order_relaxed);
	out->sleeps = atomic_load_explicit(&pt->sleeps, memory_order_relaxed);
	if (pt->wake) {
		out->doorbells = ((volatile struct pt_wake *)pt->wake)->doorbells;
		out->doorbell_lost = ((volatile struct pt_wake *)pt->wake)->doorbell_lost;
	}
}

static int pt_obj_prog_ids(struct bpf_object *obj, __u32 *ids, int n, int max)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, obj) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		int fd = bpf_program__fd(prog);

		if (fd < 0 || n >= max)
			continue;
		memset(&info, 0, sizeof(info));
		if (bpf_prog_get_info_by_fd(fd, &info, &len) == 0)
			ids[n++] = info.id;
	}
	return n;
}

int proctap_prog_ids(struct proctap *pt, __u32 *ids, int max)
{
	int n = pt_obj_prog_ids(pt->skel->obj, ids, 0, max);

	if (pt->synth)
		n = pt_obj_prog_ids(pt->synth->obj, ids, n, max);
	if (pt->prof)
		n = pt_obj_prog_ids(pt->prof->obj, ids, n, max);
	return n;
}

void proctap_close(struct proctap *pt)
{
	if (!pt)
		return;
	ring_buffer__free(pt->rb);
	perf_buffer__free(pt->pb);
	if (pt->meta_cons)
		munmap(pt->meta_cons, pt->page);
	if (pt->meta_prod)
		munmap((void *)pt->meta_prod, pt->meta_prod_len);
	if (pt->wake)
		munmap(pt->wake, pt->page);
	free(pt->cons_published);
	if (pt->pages)
		munmap((void *)pt->pages, pt->pages_map_len);
	if (pt->ctl)
		munmap(pt->ctl, pt->ctl_map_len);
	if (pt->epfd >= 0)
		close(pt->epfd);
	if (pt->stopfd >= 0)
		close(pt->stopfd);
	pt_profile_detach(pt);
	free(pt->perf_links);
	profile__destroy(pt->prof);
	synth__destroy(pt->synth);
	proc__destroy(pt->skel); /* detaches every link, closes programs and maps */
	free(pt->cons);
	free(pt);
}

/* ------------------------------------------------------------------------ */

static int pt_kernel_error(struct proctap_error *err, int code, int errnum,
			   const char *program, const char *what)
{
	if (errnum == EPERM || errnum == EACCES)
		return pt_fail(err, PROCTAP_E_PRIVILEGE, errnum, NULL, program,
			       "%s: permission denied; run as root or grant CAP_BPF and "
			       "CAP_PERFMON", what);
	return pt_fail(err, code, errnum, NULL, program, "%s: %s%s", what, strerror(errnum),
		       code == PROCTAP_E_LOAD ? " (libbpf printed the verifier log on stderr)" : "");
}

/* Does this kernel's sched_process_exit tracepoint pass group_dead? */
static bool pt_exit_has_group_dead(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t;
	bool found = false;
	int id;

	if (!btf)
		return false;
	id = btf__find_by_name_kind(btf, "btf_trace_sched_process_exit", BTF_KIND_TYPEDEF);
	t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	t = t ? btf__type_by_id(btf, t->type) : NULL; /* pointer */
	t = t && btf_is_ptr(t) ? btf__type_by_id(btf, t->type) : NULL;
	/* (void *ctx, struct task_struct *p, bool group_dead) */
	found = t && btf_is_func_proto(t) && btf_vlen(t) >= 3;
	btf__free(btf);
	return found;
}

/* A shared mapping of a BPF_F_MMAPABLE map (or ringbuf); NULL on failure. */
static void *pt_mmap(int fd, size_t len, bool writable, off_t off)
{
	void *p = mmap(NULL, len, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, off);

	return p == MAP_FAILED ? NULL : p;
}

static int pt_attach(struct proctap *pt, struct bpf_program *prog, struct bpf_link **slot,
		     struct proctap_error *err)
{
	if (!bpf_program__autoload(prog))
		return PROCTAP_OK;
	*slot = bpf_program__attach(prog);
	if (!*slot)
		return pt_kernel_error(err, PROCTAP_E_ATTACH, errno, bpf_program__name(prog),
				       "attaching");
	return PROCTAP_OK;
}

/* Synthetic payload bytes: a pattern a reader can check. */
static __u8 pt_synth_byte(size_t i)
{
	return (__u8)(i * 131 + 7);
}

/*
 * Loads and attaches the synthetic source. It shares the metadata ring and
 * data pages of the proc object, so both write into one transport.
 */
static int pt_synth_load(struct proctap *pt, const struct proctap_config *c,
			 struct proctap_error *err)
{
	__u32 t = c->synth_transport;
	struct synth *s;
	int e;

	s = pt->synth = synth__open();
	if (!s)
		return pt_kernel_error(err, PROCTAP_E_LOAD, errno, NULL,
				       "opening the synthetic source");
	s->rodata->pt_ring_mask = pt->ring_mask;
	s->rodata->pt_meta_half = c->ringbuf_bytes / 2;
	s->rodata->synth_tgid = c->synth_tgid;
	s->rodata->synth_payload = c->synth_payload;
	s->rodata->synth_batch = c->synth_batch;
	s->rodata->synth_syscall = SYS_getppid;
	s->rodata->synth_transport = t;
	for (size_t i = 0; i < sizeof(s->bss->synth_src); i++)
		s->bss->synth_src[i] = pt_synth_byte(i);
	if ((e = bpf_map__reuse_fd(s->maps.pt_meta, bpf_map__fd(pt->skel->maps.pt_meta))) ||
	    (e = bpf_map__reuse_fd(s->maps.pt_ctl, bpf_map__fd(pt->skel->maps.pt_ctl))) ||
	    (e = bpf_map__reuse_fd(s->maps.pt_data, bpf_map__fd(pt->skel->maps.pt_data))) ||
	    (e = bpf_map__reuse_fd(s->maps.pt_wake, bpf_map__fd(pt->skel->maps.pt_wake))) ||
	    (t == PROCTAP_SYNTH_RINGBUF &&
	     (e = bpf_map__set_max_entries(s->maps.synth_rb, c->synth_ring_bytes))))
		return pt_fail(err, PROCTAP_E_LOAD, -e, NULL, NULL,
			       "sharing maps with the synthetic source: %s", strerror(-e));
	bpf_map__set_autocreate(s->maps.synth_rb, t == PROCTAP_SYNTH_RINGBUF);
	bpf_map__set_autocreate(s->maps.synth_pb, t == PROCTAP_SYNTH_PERFBUF);
	e = pt_load(s->skeleton);
	if (e)
		return pt_kernel_error(err, PROCTAP_E_LOAD, -e, NULL,
				       "loading the synthetic source");

	if (t == PROCTAP_SYNTH_PERFBUF) {
		/* Each CPU's scratch: struct pt_synth, then the payload. */
		size_t vsz = pt_round_up(bpf_map__value_size(s->maps.synth_cpu), 8);
		__u8 *vals = calloc(pt->ncpus, vsz);
		__u32 zero = 0;

		if (!vals)
			return pt_fail(err, PROCTAP_E_SYSTEM, ENOMEM, NULL, NULL, "out of memory");
		for (__u32 cpu = 0; cpu < pt->ncpus; cpu++)
			for (size_t i = 0; i < PT_SYNTH_PAYLOAD_MAX; i++)
				vals[cpu * vsz + sizeof(struct pt_synth) + i] = pt_synth_byte(i);
		e = bpf_map__update_elem(s->maps.synth_cpu, &zero, sizeof(zero), vals,
					 pt->ncpus * vsz, BPF_ANY);
		free(vals);
		if (e)
			return pt_kernel_error(err, PROCTAP_E_SYSTEM, -e, NULL,
					       "filling the synthetic payload");
	}
	return pt_attach(pt, s->progs.synth, &s->links.synth, err);
}

/* Detaches the sampler and the target programs (idempotent). */
static void pt_profile_detach(struct proctap *pt)
{
	if (!pt->prof)
		return;
	for (int i = 0; i < pt->nperf; i++) {
		bpf_link__destroy(pt->perf_links[i]); /* closes its perf event too */
		pt->perf_links[i] = NULL;
	}
	profile__detach(pt->prof);
}

/* Reads a small text file (procfs, sysfs) into buf, NUL-terminated.
 * Returns its length, or -1. */
static ssize_t pt_read_text(const char *path, char *buf, size_t size)
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
static int pt_online_cpus(bool *online, int n)
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

/* Opens the cpu-clock event of every online CPU and attaches pf_sample. */
static int pt_profile_sample(struct proctap *pt, __u32 hz, struct proctap_error *err)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CPU_CLOCK, /* no hardware PMU needed */
		.size = sizeof(attr),
		.freq = 1,
		.sample_freq = hz,
	};
	bool *online = calloc(pt->ncpus, sizeof(*online));

	pt->perf_links = calloc(pt->ncpus, sizeof(*pt->perf_links));
	if (!online || !pt->perf_links) {
		free(online);
		return pt_fail(err, PROCTAP_E_SYSTEM, ENOMEM, NULL, NULL, "out of memory");
	}
	if (pt_online_cpus(online, pt->ncpus) < 0) {
		free(online);
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno ? errno : EINVAL, NULL,
				       "reading /sys/devices/system/cpu/online");
	}
	for (__u32 cpu = 0; cpu < pt->ncpus; cpu++) {
		struct bpf_link *link;
		int fd;

		if (!online[cpu])
			continue;
		fd = syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
		if (fd < 0 && errno == ENODEV)
			continue; /* went offline since the list was read */
		if (fd < 0) {
			int e = errno;

			free(online);
			if (e == ENOENT || e == EOPNOTSUPP)
				return pt_fail(err, PROCTAP_E_ATTACH, e, NULL, "pf_sample",
					       "this kernel has no software cpu-clock perf event: %s",
					       strerror(e));
			return pt_kernel_error(err, PROCTAP_E_ATTACH, e, "pf_sample",
					       "opening the cpu-clock perf event");
		}
		link = bpf_program__attach_perf_event(pt->prof->progs.pf_sample, fd);
		if (!link) {
			int e = errno;

			close(fd);
			free(online);
			return pt_kernel_error(err, PROCTAP_E_ATTACH, e, "pf_sample",
					       "attaching to the cpu-clock perf event");
		}
		pt->perf_links[pt->nperf++] = link;
	}
	free(online);
	if (!pt->nperf)
		return pt_fail(err, PROCTAP_E_ATTACH, ENODEV, NULL, "pf_sample", "no CPU is online");
	return PROCTAP_OK;
}

/*
 * Loads the profiler: the sampler and the target programs, sharing the
 * transport maps of the proc object. The exit program is attached before
 * the sampler, so no target can be added that its exit would not remove.
 */
static int pt_profile_load(struct proctap *pt, const struct proctap_config *c,
			   struct proctap_error *err)
{
	struct profile *p;
	int e;

	p = pt->prof = profile__open();
	if (!p)
		return pt_kernel_error(err, PROCTAP_E_LOAD, errno, NULL, "opening the profiler");
	p->rodata->pt_ring_mask = pt->ring_mask;
	p->rodata->pt_meta_half = c->ringbuf_bytes / 2;
	p->rodata->pf_all = c->profile_all != 0;
	if ((e = bpf_map__reuse_fd(p->maps.pt_meta, bpf_map__fd(pt->skel->maps.pt_meta))) ||
	    (e = bpf_map__reuse_fd(p->maps.pt_ctl, bpf_map__fd(pt->skel->maps.pt_ctl))) ||
	    (e = bpf_map__reuse_fd(p->maps.pt_data, bpf_map__fd(pt->skel->maps.pt_data))) ||
	    (e = bpf_map__reuse_fd(p->maps.pt_wake, bpf_map__fd(pt->skel->maps.pt_wake))))
		return pt_fail(err, PROCTAP_E_LOAD, -e, NULL, NULL,
			       "sharing maps with the profiler: %s", strerror(-e));
	bpf_program__set_autoload(p->progs.pf_fork, c->profile_children != 0);
	e = pt_load(p->skeleton);
	if (e)
		return pt_kernel_error(err, PROCTAP_E_LOAD, -e, NULL, "loading the profiler");
	if ((e = pt_attach(pt, p->progs.pf_exit, &p->links.pf_exit, err)) ||
	    (e = pt_attach(pt, p->progs.pf_exec, &p->links.pf_exec, err)) ||
	    (e = pt_attach(pt, p->progs.pf_fork, &p->links.pf_fork, err)))
		return e;
	return pt_profile_sample(pt, c->profile_hz, err);
}

/* /proc/PID/stat: the process' state letter and start time (clock ticks
 * since boot). 0, or -ESRCH when there is no such process (or thread). */
static int pt_proc_stat(__u32 pid, char *state, unsigned long long *start)
{
	char path[64], buf[1024], *p;

	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	if (pt_read_text(path, buf, sizeof(buf)) < 0)
		return -ESRCH;
	/* The command name may hold anything, ')' included: skip to the last one. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u "
			 "%*d %*d %*d %*d %*d %*d %llu", state, start) != 2)
		return -ESRCH;
	return 0;
}

/* Is pid a live process (a thread group leader, not a zombie)? */
static int pt_proc_alive(__u32 pid, unsigned long long *start)
{
	char path[64], buf[4096], *tgid, state;
	int e;

	if ((e = pt_proc_stat(pid, &state, start)))
		return e;
	if (state == 'Z' || state == 'X' || state == 'x')
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%u/status", pid);
	if (pt_read_text(path, buf, sizeof(buf)) < 0)
		return -ESRCH;
	tgid = strstr(buf, "\nTgid:");
	if (!tgid || strtoul(tgid + 6, NULL, 10) != pid)
		return -EINVAL; /* a thread id, not a process id */
	return 0;
}

int proctap_target_add(struct proctap *pt, __u32 pid)
{
	struct pt_target t = { 0 };
	unsigned long long before, after;
	int fd, e;

	if (!pt || !pt->prof || !pid)
		return -EINVAL;
	if ((e = pt_proc_alive(pid, &before)))
		return e;
	fd = bpf_map__fd(pt->prof->maps.pf_targets);
	if (bpf_map_update_elem(fd, &pid, &t, BPF_NOEXIST)) {
		e = errno;
		return e == EEXIST ? 0 : -e; /* E2BIG: the filter is full */
	}
	/* The process may have exited (its exit then found nothing to remove)
	 * or been replaced by another of the same pid since the first look:
	 * look again, and take the entry back unless it is the same process. */
	if (pt_proc_alive(pid, &after) || after != before) {
		bpf_map_delete_elem(fd, &pid);
		return -ESRCH;
	}
	return 0;
}

int proctap_target_remove(struct proctap *pt, __u32 pid)
{
	if (!pt || !pt->prof)
		return -EINVAL;
	if (bpf_map_delete_elem(bpf_map__fd(pt->prof->maps.pf_targets), &pid))
		return -errno;
	return 0;
}

int proctap_targets(struct proctap *pt, __u32 *pids, int max)
{
	__u32 key, next;
	int fd, n = 0;
	void *prev = NULL;

	if (!pt || !pt->prof)
		return -EINVAL;
	fd = bpf_map__fd(pt->prof->maps.pf_targets);
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		if (n < max)
			pids[n] = next;
		n++;
		key = next;
		prev = &key;
	}
	return n;
}

static int pt_watch_key(struct pt_watch_key *key, const char *prefix, __u32 len)
{
	if (!prefix || len == 0 || len >= PT_COMM_LEN || memchr(prefix, '\0', len))
		return -EINVAL;
	memset(key, 0, sizeof(*key));
	key->prefixlen = len * 8;
	memcpy(key->comm, prefix, len);
	return 0;
}

int proctap_watch_add(struct proctap *pt, const char *prefix, __u32 len)
{
	struct pt_watch_key key;

	if (!pt || !pt->prof || pt_watch_key(&key, prefix, len))
		return -EINVAL;
	if (bpf_map_update_elem(bpf_map__fd(pt->prof->maps.pf_watch), &key, &len, BPF_ANY))
		return -errno;
	return 0;
}

int proctap_watch_remove(struct proctap *pt, const char *prefix, __u32 len)
{
	struct pt_watch_key key;

	if (!pt || !pt->prof || pt_watch_key(&key, prefix, len))
		return -EINVAL;
	if (bpf_map_delete_elem(bpf_map__fd(pt->prof->maps.pf_watch), &key))
		return -errno;
	return 0;
}

/* Consumers of the synthetic source's own ring (the peer transports). */
static int pt_synth_consume(struct proctap *pt, const struct proctap_config *c,
			    struct proctap_error *err)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int e;

	if (c->synth_transport == PROCTAP_SYNTH_RINGBUF) {
		/* The peer design as commonly built: libbpf's consumer, default
		 * (adaptive) wake-ups. */
		pt->rb = ring_buffer__new(bpf_map__fd(pt->synth->maps.synth_rb),
					  pt_on_inline_rb, pt, NULL);
		if (!pt->rb)
			return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL,
					       "opening the synthetic ring buffer");
		ev.data.fd = ring_buffer__epoll_fd(pt->rb);
		if (epoll_ctl(pt->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev))
			return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "epoll_ctl");
	} else if (c->synth_transport == PROCTAP_SYNTH_PERFBUF) {
		pt->pb = perf_buffer__new(bpf_map__fd(pt->synth->maps.synth_pb),
					  c->synth_ring_bytes / PT_PAGE_SIZE, pt_on_inline_pb,
					  NULL /* drops: meta_lost, counted in the kernel */, pt, NULL);
		if (!pt->pb)
			return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL,
					       "opening the perf buffer");
		ev.data.fd = perf_buffer__epoll_fd(pt->pb);
		if (epoll_ctl(pt->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev))
			return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "epoll_ctl");
	}
	return PROCTAP_OK;
}

static int pt_setup(struct proctap *pt, const struct proctap_config *c,
		    struct proctap_error *err)
{
	struct epoll_event ev = { .events = EPOLLIN };
	__u64 ring = (__u64)c->pages_per_cpu * PT_PAGE_SIZE;
	long page = sysconf(_SC_PAGESIZE);
	__u32 exit_probe;
	bool want_exit;
	int ncpus, e;

	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
		return pt_fail(err, PROCTAP_E_NO_BTF, errno, NULL, NULL,
			       "kernel BTF (/sys/kernel/btf/vmlinux) is missing; proctap needs "
			       "a kernel built with CONFIG_DEBUG_INFO_BTF=y");
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0)
		return pt_fail(err, PROCTAP_E_SYSTEM, -ncpus, NULL, NULL,
			       "cannot count possible CPUs");
	pt->ncpus = ncpus;
	pt->ring_mask = ring - 1;
	pt->elem_size = ring + pt_slack(c);
	pt->flush_ns = (__u64)c->flush_us * 1000;

	pt->skel = proc__open();
	if (!pt->skel)
		return pt_kernel_error(err, PROCTAP_E_LOAD, errno, NULL, "opening the BPF object");

	pt->skel->rodata->pt_ring_mask = pt->ring_mask;
	pt->skel->rodata->pt_meta_half = c->ringbuf_bytes / 2;
	pt->skel->rodata->pt_argv_max = c->argv_max;
	pt->skel->rodata->pt_filter_pids = c->npids > 0;
	pt->skel->rodata->pt_thread_exits = c->thread_exits != 0;
	pt->skel->rodata->pt_comm_prefix_len = c->comm_prefix_len;
	memcpy((char *)pt->skel->rodata->pt_comm_prefix, c->comm_prefix, PT_COMM_LEN);

	if ((e = bpf_map__set_max_entries(pt->skel->maps.pt_ctl, ncpus)) ||
	    (e = bpf_map__set_max_entries(pt->skel->maps.pt_data, ncpus)) ||
	    (e = bpf_map__set_value_size(pt->skel->maps.pt_data, pt->elem_size)) ||
	    (e = bpf_map__set_max_entries(pt->skel->maps.pt_meta, c->ringbuf_bytes)))
		return pt_fail(err, PROCTAP_E_LOAD, -e, NULL, NULL, "sizing maps: %s", strerror(-e));
	exit_probe = c->exit_probe;
	if (exit_probe == PROCTAP_EXIT_AUTO)
		exit_probe = pt_exit_has_group_dead() ? PROCTAP_EXIT_GROUP_DEAD : PROCTAP_EXIT_LIVE;
	want_exit = !!(c->events & PROCTAP_EV_EXIT);
	bpf_program__set_autoload(pt->skel->progs.pt_exec, !!(c->events & PROCTAP_EV_EXEC));
	bpf_program__set_autoload(pt->skel->progs.pt_exit, want_exit && exit_probe == PROCTAP_EXIT_GROUP_DEAD);
	bpf_program__set_autoload(pt->skel->progs.pt_exit_live, want_exit && exit_probe == PROCTAP_EXIT_LIVE);
	/* Only the signal->live fallback uses the dedupe map. */
	bpf_map__set_autocreate(pt->skel->maps.pt_exit_seen, want_exit && exit_probe == PROCTAP_EXIT_LIVE);

	e = pt_load(pt->skel->skeleton);
	if (e)
		return pt_kernel_error(err, PROCTAP_E_LOAD, -e, NULL, "loading BPF programs");

	for (__u32 i = 0; i < c->npids; i++) {
		__u8 one = 1;

		if (bpf_map__update_elem(pt->skel->maps.pt_pids, &c->pids[i], sizeof(__u32),
					 &one, sizeof(one), BPF_ANY))
			return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL,
					       "filling the pid filter");
	}

	if ((e = pt_attach(pt, pt->skel->progs.pt_exec, &pt->skel->links.pt_exec, err)) ||
	    (e = pt_attach(pt, pt->skel->progs.pt_exit, &pt->skel->links.pt_exit, err)) ||
	    (e = pt_attach(pt, pt->skel->progs.pt_exit_live, &pt->skel->links.pt_exit_live, err)))
		return e;
	if ((c->events & PROCTAP_EV_SYNTH) && (e = pt_synth_load(pt, c, err)))
		return e;
	if ((c->events & PROCTAP_EV_SAMPLE) && (e = pt_profile_load(pt, c, err)))
		return e;
	pt->busy_poll = c->busy_poll != 0;

	pt->ctl_map_len = pt_round_up((__u64)ncpus * sizeof(struct pt_cpu_ctl), page);
	pt->ctl = pt_mmap(bpf_map__fd(pt->skel->maps.pt_ctl), pt->ctl_map_len, true, 0);
	if (!pt->ctl)
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "mapping pt_ctl");
	pt->pages_map_len = pt_round_up((__u64)ncpus * pt->elem_size, page);
	pt->pages = pt_mmap(bpf_map__fd(pt->skel->maps.pt_data), pt->pages_map_len, false, 0);
	if (!pt->pages)
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "mapping pt_data");
	pt->cons = calloc(ncpus, sizeof(*pt->cons));
	if (!pt->cons)
		return pt_fail(err, PROCTAP_E_SYSTEM, ENOMEM, NULL, NULL, "out of memory");

	pt->cons_published = calloc(ncpus, sizeof(*pt->cons_published));
	if (!pt->cons_published)
		return pt_fail(err, PROCTAP_E_SYSTEM, ENOMEM, NULL, NULL, "out of memory");

	/* The metadata ring: the consumer page read-write, then the producer
	 * page and the data (mapped twice by the kernel) read-only. */
	pt->page = page;
	pt->meta_fd = bpf_map__fd(pt->skel->maps.pt_meta);
	pt->meta_mask = c->ringbuf_bytes - 1;
	pt->meta_prod_len = page + 2 * (size_t)c->ringbuf_bytes;
	pt->meta_cons = pt_mmap(pt->meta_fd, page, true, 0);
	pt->meta_prod = pt_mmap(pt->meta_fd, pt->meta_prod_len, false, page);
	if (!pt->meta_cons || !pt->meta_prod)
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "mapping pt_meta");
	pt->meta_data = (const __u8 *)pt->meta_prod + page;
	pt->wake = pt_mmap(bpf_map__fd(pt->skel->maps.pt_wake), page, true, 0);
	if (!pt->wake)
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "mapping pt_wake");
	pt->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pt->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (pt->stopfd < 0 || pt->epfd < 0)
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "creating the poll set");
	ev.data.fd = pt->meta_fd; /* a ringbuf map polls readable when it holds records */
	if (epoll_ctl(pt->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev))
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "epoll_ctl");
	ev.data.fd = pt->stopfd;
	if (epoll_ctl(pt->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev))
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "epoll_ctl");
	if (c->events & PROCTAP_EV_SYNTH)
		return pt_synth_consume(pt, c, err);
	return PROCTAP_OK;
}

struct proctap *proctap_open(const struct proctap_config *cfg, struct proctap_error *err)
{
	struct proctap_config c;
	struct proctap *pt;

	if (err)
		memset(err, 0, sizeof(*err));
	if (proctap_config_check(cfg, err))
		return NULL;
	pt_config_resolve(cfg, &c);

	pt = calloc(1, sizeof(*pt));
	if (!pt) {
		pt_fail(err, PROCTAP_E_SYSTEM, ENOMEM, NULL, NULL, "out of memory");
		return NULL;
	}
	pt->epfd = -1;
	pt->stopfd = -1;
	if (pt_setup(pt, &c, err)) {
		proctap_close(pt);
		return NULL;
	}
	return pt;
}
