// SPDX-License-Identifier: Apache-2.0
/*
 * poll.c - the poll loop: wait (sleep until a doorbell, or spin), drain the
 * rings, hand filled buffers to the caller, and at stop detach and drain
 * until every emitted record was delivered or counted.
 */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>
#include <linux/membarrier.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include "internal.h"

/* Kinds whose batches go to the caller before any other batch, with a
 * batch per kind: the mappings and captures that the samples of the other
 * batches need or fall within. */
static const __u32 pt_lead_kinds[] = { PT_KIND_MAPPING, PT_KIND_CAPTURE };

static void pt_handover_at(struct proctap *pt, struct pt_route *r, int last, __s64 offset);

/* Before route r goes, the lead kinds' batches that hold records. */
static void pt_handover_leads(struct proctap *pt, struct pt_route *r, int last, __s64 offset)
{
	for (size_t i = 0; i < sizeof(pt_lead_kinds) / sizeof(pt_lead_kinds[0]); i++) {
		struct pt_route *lead = &pt->routes[pt_lead_kinds[i]];

		if (lead == r)
			return; /* the leads go in their own order */
		if (lead->buf && lead->buf->records)
			pt_handover_at(pt, lead, last, offset);
	}
}

/* Hands route r's buffer over, stamped with the realtime offset; with
 * last = 0 takes the next one. */
static void pt_handover_at(struct proctap *pt, struct pt_route *r, int last, __s64 offset)
{
	struct proctap_buf *next;
	__u32 kind;

	if (pt->cfg.per_kind_batches)
		pt_handover_leads(pt, r, last, offset);
	if (!r->buf)
		return; /* nothing to hand over */
	kind = r->buf->kind;

	r->buf->realtime_offset_ns = offset;
	pt->last_handover_ts = pt_ts(CLOCK_MONOTONIC);
	pt_bump(&pt->handovers);
	next = pt->swap(pt->swap_ctx, r->buf, last);
	r->buf = last ? NULL : next;
	if (r->buf) {
		r->buf->len = 0;
		r->buf->records = 0;
		r->buf->kind = kind;
	} else if (!last) {
		pt->refused = true;
	}
}

void pt_handover(struct proctap *pt, struct pt_route *r, int last)
{
	pt_handover_at(pt, r, last, pt_realtime_offset());
}

/* The i-th route in use: the one, or the i-th enabled kind's. */
static struct pt_route *pt_route_in_use(struct proctap *pt, int i)
{
	return &pt->routes[pt->cfg.per_kind_batches ? pt->kinds[i] : 0];
}

/* Hands over every buffer holding records (due_only: only those older than
 * the flush interval; last: the final hand-over). The realtime offset is
 * read once for all. */
static void pt_handover_all(struct proctap *pt, bool due_only, int last)
{
	__u64 now = due_only ? pt_ts(CLOCK_MONOTONIC) : 0;
	__s64 offset = 0;
	bool stamped = false;

	for (int i = 0; i < pt->nroutes; i++) {
		struct pt_route *r = pt_route_in_use(pt, i);

		if (!r->buf || (!last && !r->buf->records) ||
		    (due_only && now - r->first_ts < pt->flush_ns))
			continue;
		if (!stamped) {
			offset = pt_realtime_offset();
			stamped = true;
		}
		pt_handover_at(pt, r, last, offset);
	}
}

/*
 * Whether a round that emptied the rings hands its batches over now. Sleeping
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

/* Drains the families' own rings (the synthetic source's peers). */
static int pt_family_drain(struct proctap *pt)
{
	int total = 0;

	for (const struct pt_family *const *f = pt_families; *f; f++) {
		int n;

		if (!(*f)->drain || !pt_family_on(*f, &pt->cfg))
			continue;
		n = (*f)->drain(pt);
		if (n < 0)
			return n;
		total += n;
	}
	return total;
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
		/* The families' rings first: the side band's records are
		 * then merged by time with the ring's (pt_mappings_flush). */
		int m = pt_family_drain(pt);
		int n;

		if (m < 0)
			return m;
		n = pt_meta_consume(pt, PT_DRAIN_BUDGET) + m;
		total += n;
		if (n < PT_DRAIN_BUDGET)
			break;
		pt_report_losses(pt, lost);
		pt_meta_lost(pt, lost);
		/* Under sustained load hand over by age, not only when full. */
		pt_handover_all(pt, true, 0);
	}
	pt_mappings_flush(pt, UINT64_MAX); /* those stamped after the round's last record */
	pt_report_losses(pt, lost);
	if (pt_handover_due(pt))
		pt_handover_all(pt, false, 0);
	return total;
}

/* Records the kernel submitted, and records taken off the rings. */
static void pt_ring_balance(struct proctap *pt, __u64 *emitted, __u64 *consumed)
{
	struct proctap_stats st;

	pt_stats_read(pt, &st);
	*emitted = *consumed = 0;
	for (int k = 0; k < PT_KIND_MAX; k++) {
		*emitted += st.emitted[k];
		if (pt_kind(k) && pt_kind(k)->from_kernel) /* not made here */
			*consumed += st.delivered[k];
	}
	*consumed += st.invalid + st.oversize + st.abandoned;
}

/*
 * Waits until every program run that began before the detach has ended:
 * MEMBARRIER_CMD_GLOBAL is a synchronize_rcu(), and a run of a
 * non-sleepable program is an RCU read-side section (tracepoint, BTF
 * tracepoint, fentry and perf event programs alike), even where the kernel
 * lets it be preempted (7.x tracepoints). False where the kernel refuses
 * (nohz_full CPUs).
 */
static bool pt_runs_ended(void)
{
	return syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0;
}

/*
 * Stopping: detach first so nothing new is emitted, wait for the runs in
 * flight, then drain until every emitted record was taken off the ring
 * (delivered, or counted if no buffer is left). Where the kernel cannot
 * wait for the runs, a program preempted inside could still commit after a
 * drain that found the ring balanced: the balance must then also hold a
 * millisecond later, with nothing emitted meanwhile (bounded at about
 * 100 ms), which a run preempted for longer under load can still outlast:
 * once in CI, one record committed after the last drain, uncounted.
 */
static int pt_finish(struct proctap *pt)
{
	__u64 emitted, consumed, before = ~0ull;
	bool ended;
	int err = 0;

	pt_programs_detach(pt);
	ended = pt_runs_ended();
	for (int i = 0; i < 100 && !err; i++) {
		usleep(1000);
		err = pt_drain(pt);
		err = err < 0 ? err : 0;
		pt_ring_balance(pt, &emitted, &consumed);
		if (consumed >= emitted && (ended || emitted == before))
			break;
		before = emitted;
	}
	return err;
}

/* Waits for the next round: returns epoll's count (the stop fd may be
 * among them), or -1 with errno. */
static int pt_wait(struct proctap *pt, bool active, struct epoll_event *evs, int max)
{
	struct timespec flush = {
		.tv_sec = pt->flush_ns / 1000000000ull,
		.tv_nsec = pt->flush_ns % 1000000000ull,
	};
	int n;

	/*
	 * Active (the last round found records): sleep one flush interval and
	 * poll again; records arrive without waking anyone, so a busy kernel
	 * pays no wake-up per record. Idle: announce the sleep (struct pt_wake)
	 * and sleep until the first record rings the doorbell.
	 */
	if (active)
		return epoll_pwait2(pt->epfd, evs, max, &flush, NULL);
	__atomic_exchange_n(&pt->wake->sleeping, 1, __ATOMIC_SEQ_CST);
	if (pt_meta_pending(pt)) {
		/* Look once more after announcing: a record that committed
		 * before it rang no bell. */
		__atomic_store_n(&pt->wake->sleeping, 0, __ATOMIC_RELAXED);
		return 0;
	}
	pt_bump(&pt->sleeps);
	n = epoll_wait(pt->epfd, evs, max, pt->idle_timeout_ms);
	__atomic_store_n(&pt->wake->sleeping, 0, __ATOMIC_RELAXED);
	return n;
}

/* The stop fd fired: 1 (stop), or a negative errno. */
static int pt_take_stop(struct proctap *pt, const struct epoll_event *evs, int n)
{
	for (int i = 0; i < n; i++) {
		__u64 v;

		if (evs[i].data.fd != pt->stopfd)
			continue;
		if (read(pt->stopfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return -errno;
		return 1;
	}
	return 0;
}

static int pt_loop(struct proctap *pt)
{
	struct epoll_event evs[4];
	bool active = false;

	while (!pt->refused) {
		int n, got;

		if (pt->busy_poll) {
			/* Spin: no sleep, no wake-up latency; proctap_stop sets the flag. */
			if (atomic_load_explicit(&pt->stop_requested, memory_order_acquire))
				return 0;
			got = pt_drain(pt);
			if (got < 0)
				return got;
			continue;
		}
		n = pt_wait(pt, active, evs, 4);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		n = pt_take_stop(pt, evs, n);
		if (n)
			return n < 0 ? n : 0;
		got = pt_drain(pt);
		if (got < 0)
			return got;
		active = got > 0;
	}
	return 0;
}

int proctap_run(struct proctap *pt, proctap_swap_fn swap, void *ctx)
{
	int err, fin;

	pt->swap = swap;
	pt->swap_ctx = ctx;
	pt->refused = false;
	err = pt_loop(pt);
	/* Even after an error: detach, and deliver or count what was emitted. */
	fin = pt_finish(pt);
	if (!err)
		err = fin;
	pt_mappings_seal(pt); /* the caller's last marks, and no more */
	pt_handover_all(pt, false, 1);
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

/* The stop eventfd and the epoll set, with the metadata ring in it. */
int pt_poll_open(struct proctap *pt, struct proctap_error *err)
{
	int e;

	pt->flush_ns = (__u64)pt->cfg.flush_us * 1000;
	pt->busy_poll = pt->cfg.busy_poll != 0;
	/* The lead kinds first (pt_handover_leads). */
	for (size_t i = 0; i < sizeof(pt_lead_kinds) / sizeof(pt_lead_kinds[0]); i++)
		if (pt->cfg.events & PROCTAP_EVENT(pt_lead_kinds[i]))
			pt->kinds[pt->nkinds++] = pt_lead_kinds[i];
	for (__u32 kind = 0; kind < PT_KIND_MAX; kind++)
		if (kind != PT_KIND_MAPPING && kind != PT_KIND_CAPTURE &&
		    (pt->cfg.events & PROCTAP_EVENT(kind)))
			pt->kinds[pt->nkinds++] = kind;
	pt->nroutes = pt->cfg.per_kind_batches ? pt->nkinds : 1;
	pt->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pt->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (pt->stopfd < 0 || pt->epfd < 0)
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "creating the poll set");
	/* A ringbuf map polls readable when it holds records. */
	if ((e = pt_poll_add(pt, pt->meta_fd, err)) || (e = pt_poll_add(pt, pt->stopfd, err)))
		return e;
	return PROCTAP_OK;
}

int pt_poll_add(struct proctap *pt, int fd, struct proctap_error *err)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	if (epoll_ctl(pt->epfd, EPOLL_CTL_ADD, fd, &ev))
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "epoll_ctl");
	return PROCTAP_OK;
}

void pt_poll_close(struct proctap *pt)
{
	if (pt->epfd >= 0)
		close(pt->epfd);
	if (pt->stopfd >= 0)
		close(pt->stopfd);
}
