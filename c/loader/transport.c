// SPDX-License-Identifier: Apache-2.0
/*
 * transport.c - the user half of the hybrid buffer: size the maps, map them,
 * take records off the metadata ring, check each against its kind's table,
 * copy it with its bytes (read in place from the data pages) into the
 * caller's buffer of its route, and release the bytes to the kernel.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <bpf/bpf.h>
#include "internal.h"
#include "proctap.skel.h"

/* BPF ringbuf record header (uapi: struct bpf_ringbuf_hdr). */
#define PT_RB_BUSY (1u << 31)
#define PT_RB_DISCARD (1u << 30)
#define PT_RB_HDR 8

/* Before load: the sizes of the shared maps and the read-only data they need. */
int pt_transport_configure(struct proctap *pt, struct proctap_error *err)
{
	const struct proctap_config *c = &pt->cfg;
	__u64 ring = (__u64)c->pages_per_cpu * PT_PAGE_SIZE;
	struct proctap_bpf *s = pt->skel;
	int e;

	pt->ring_mask = ring - 1;
	pt->elem_size = ring + pt_slack(c);
	s->rodata->pt_ring_mask = pt->ring_mask;
	s->rodata->pt_meta_half = c->ringbuf_bytes / 2;
	if ((e = bpf_map__set_max_entries(s->maps.pt_ctl, pt->ncpus)) ||
	    (e = bpf_map__set_max_entries(s->maps.pt_data, pt->ncpus)) ||
	    (e = bpf_map__set_value_size(s->maps.pt_data, pt->elem_size)) ||
	    (e = bpf_map__set_max_entries(s->maps.pt_meta, c->ringbuf_bytes)))
		return pt_fail(err, PROCTAP_E_LOAD, -e, NULL, NULL, "sizing maps: %s",
			       strerror(-e));
	return PROCTAP_OK;
}

/* After load: map the control blocks, data pages, metadata ring and wake page. */
int pt_transport_open(struct proctap *pt, struct proctap_error *err)
{
	struct proctap_bpf *s = pt->skel;

	pt->page = sysconf(_SC_PAGESIZE);
	pt->ctl_map_len = pt_round_up((__u64)pt->ncpus * sizeof(struct pt_cpu_ctl), pt->page);
	pt->ctl = pt_mmap(bpf_map__fd(s->maps.pt_ctl), pt->ctl_map_len, true, 0);
	if (!pt->ctl)
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "mapping pt_ctl");
	pt->pages_map_len = pt_round_up((__u64)pt->ncpus * pt->elem_size, pt->page);
	pt->pages = pt_mmap(bpf_map__fd(s->maps.pt_data), pt->pages_map_len, false, 0);
	if (!pt->pages)
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "mapping pt_data");
	pt->cons = calloc(pt->ncpus, sizeof(*pt->cons));
	pt->cons_published = calloc(pt->ncpus, sizeof(*pt->cons_published));
	if (!pt->cons || !pt->cons_published)
		return pt_fail(err, PROCTAP_E_SYSTEM, ENOMEM, NULL, NULL, "out of memory");

	/* The metadata ring: the consumer page read-write, then the producer
	 * page and the data (mapped twice by the kernel) read-only. */
	pt->meta_fd = bpf_map__fd(s->maps.pt_meta);
	pt->meta_mask = pt->cfg.ringbuf_bytes - 1;
	pt->meta_prod_len = pt->page + 2 * (size_t)pt->cfg.ringbuf_bytes;
	pt->meta_cons = pt_mmap(pt->meta_fd, pt->page, true, 0);
	pt->meta_prod = pt_mmap(pt->meta_fd, pt->meta_prod_len, false, pt->page);
	if (!pt->meta_cons || !pt->meta_prod)
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "mapping pt_meta");
	pt->meta_data = (const __u8 *)pt->meta_prod + pt->page;
	pt->wake = pt_mmap(bpf_map__fd(s->maps.pt_wake), pt->page, true, 0);
	if (!pt->wake)
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL, "mapping pt_wake");
	return PROCTAP_OK;
}

void pt_transport_close(struct proctap *pt)
{
	if (pt->meta_cons)
		munmap(pt->meta_cons, pt->page);
	if (pt->meta_prod)
		munmap((void *)pt->meta_prod, pt->meta_prod_len);
	if (pt->wake)
		munmap(pt->wake, pt->page);
	if (pt->pages)
		munmap((void *)pt->pages, pt->pages_map_len);
	if (pt->ctl)
		munmap(pt->ctl, pt->ctl_map_len);
	free(pt->cons_published);
	free(pt->cons);
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
	} else if (r < 0) {
		/* Cannot happen with nesting depth < PT_PENDING_MAX. The span
		 * stays unreleased, this CPU's later records count as data_lost,
		 * and ring_stalls says why. */
		pt_bump(&pt->ring_stalls);
	}
}

static __u32 pt_u32_at(const struct pt_hdr *h, __u32 off)
{
	__u32 v;

	memcpy(&v, (const __u8 *)h + off, sizeof(v));
	return v;
}

/*
 * The declaration of the record's kind, when the record agrees with it: a
 * known kind, the whole fixed part and data (size: the record's bytes),
 * known flags, variable-field lengths that are multiples of their unit (and
 * within caps[], when given) and sum to data_len, enum fields within their
 * values. NULL when it does not.
 */
static const struct pt_kind_info *pt_shape_of(const struct pt_hdr *h, size_t size,
					      const __u32 *caps)
{
	const struct pt_kind_info *k = pt_kind(h->kind);
	__u64 sum = 0;

	if (!k || size < k->meta_size + (size_t)h->data_len || (h->flags & ~k->flags_valid))
		return NULL;
	if ((h->flags & PT_F_DATA_LOST) && h->data_len)
		return NULL;
	for (int i = 0; i < k->ndata; i++) {
		__u32 len = pt_u32_at(h, k->data[i].len_off);

		if (len % k->data[i].unit || (caps && len > caps[i]))
			return NULL;
		sum += len;
	}
	if (sum != h->data_len)
		return NULL;
	for (int i = 0; i < k->nchecks; i++) {
		__u32 v = pt_u32_at(h, k->checks[i].off);

		if (v >= 64 || !(k->checks[i].values & (1ull << v)))
			return NULL;
	}
	return k;
}

bool pt_record_shape(const struct pt_hdr *h, size_t size)
{
	return pt_shape_of(h, size, NULL) != NULL;
}

/* A record from the kernel, meta_bytes of it in the metadata ring: its
 * kind's declaration when it has the shape, is of a kind the config
 * enables, and has every variable field within this instance's cap; else
 * NULL. */
const struct pt_kind_info *pt_record_valid(struct proctap *pt, const struct pt_hdr *h,
					   size_t meta_bytes)
{
	const struct pt_kind_info *k = pt_kind(h->kind);

	if (!k || !(pt->cfg.events & PROCTAP_EVENT(h->kind)) || meta_bytes < k->meta_size)
		return NULL;
	return pt_shape_of(h, k->meta_size + (size_t)h->data_len,
			   pt->caps[h->kind & (PT_KIND_MAX - 1)]);
}

/* The route of a kind: its own with per-kind batches, else the one. */
static struct pt_route *pt_route_of(struct proctap *pt, __u32 kind)
{
	return &pt->routes[pt->cfg.per_kind_batches ? kind & (PT_KIND_MAX - 1) : 0];
}

/* A buffer for route r from the caller; false when it refused (stopping). */
static bool pt_route_fill(struct proctap *pt, struct pt_route *r)
{
	if (pt->refused)
		return false;
	r->buf = pt->swap(pt->swap_ctx, NULL, 0);
	if (!r->buf) {
		pt->refused = true;
		return false;
	}
	r->buf->len = 0;
	r->buf->records = 0;
	r->buf->kind = pt->cfg.per_kind_batches ? (__u32)(r - pt->routes) : PROCTAP_BUF_MIXED;
	return true;
}

/*
 * Appends one record (its fixed part, then data_len bytes from data) to the
 * caller's buffer of the route of kind `route`, handing the buffer over
 * first when the record does not fit. Counts it delivered, or why it was not.
 */
/* A record that could not be appended: the kernel's count in ctr (the
 * ring's balance at stop relies on those), the loader's own as lost. */
static void pt_count_dropped(struct proctap *pt, __u32 kind, _Atomic __u64 *ctr)
{
	if (pt_kind(kind)->from_kernel)
		pt_bump(ctr);
	else if (kind != PT_KIND_LOST)
		pt_bump(&pt->loader_lost[kind & (PT_KIND_MAX - 1)]);
}

void pt_append(struct proctap *pt, __u32 route, const struct pt_hdr *h, size_t meta_size,
	       const __u8 *data)
{
	size_t rec_size = pt_round_up(meta_size + h->data_len, 8);
	struct pt_route *r = pt_route_of(pt, route);
	struct pt_hdr *out;
	__u8 *dst;

	if (r->buf && r->buf->len + rec_size > r->buf->cap && r->buf->records)
		pt_handover(pt, r, 0); /* the lead kinds' batches go first */
	if (!r->buf && !pt_route_fill(pt, r)) {
		/* The caller refused a buffer (it is stopping): consume and count
		 * (a loss report is no event: what it reports is counted already). */
		pt_count_dropped(pt, h->kind, &pt->abandoned);
		return;
	}
	if (r->buf->len + rec_size > r->buf->cap) {
		pt_count_dropped(pt, h->kind, &pt->oversize);
		return;
	}
	if (!r->buf->records)
		r->first_ts = h->ts_ns;
	dst = r->buf->data + r->buf->len;
	memcpy(dst, h, meta_size);
	if (h->data_len)
		memcpy(dst + meta_size, data, h->data_len);
	memset(dst + meta_size + h->data_len, 0, rec_size - meta_size - h->data_len);
	out = (struct pt_hdr *)dst;
	out->data_pos = 0;
	out->data_span = 0;
	out->rec_size = rec_size;
	r->buf->len += rec_size;
	r->buf->records++;
	pt_bump(&pt->delivered[h->kind & (PT_KIND_MAX - 1)]);
}

/* One metadata record; its data in the data pages. */
static void pt_on_meta(struct proctap *pt, const struct pt_hdr *h, size_t size)
{
	const struct pt_kind_info *k;
	__u64 off;

	if (size >= sizeof(*h) && h->kind == PT_KIND_DOORBELL)
		return; /* it woke us; that was all */
	if (size < sizeof(*h) || h->cpu >= pt->ncpus || h->data_span > pt->ring_mask + 1) {
		pt_bump(&pt->invalid);
		return;
	}
	off = h->data_pos & pt->ring_mask;
	k = h->data_len > h->data_span || off + h->data_len > pt->elem_size
		    ? NULL
		    : pt_record_valid(pt, h, size);
	if (k) {
		if (pt->side) /* profiling: the side band's records before it go first */
			pt_mappings_flush(pt, h->ts_ns);
		pt_append(pt, h->kind, h, k->meta_size,
			  pt->pages + (size_t)h->cpu * pt->elem_size + off);
	} else {
		pt_bump(&pt->invalid);
	}
	pt_release(pt, h->cpu, h->data_pos, h->data_span);
}

/*
 * Takes up to budget records off the metadata ring. The consumer position
 * is stored once at the end (or when a quarter of the ring was read), so
 * producers on other CPUs keep its cache line.
 */
int pt_meta_consume(struct proctap *pt, int budget)
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
			pt_on_meta(pt, (const struct pt_hdr *)(hdr + 2),
				   len & ~(PT_RB_BUSY | PT_RB_DISCARD));
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
bool pt_meta_pending(struct proctap *pt)
{
	return __atomic_load_n(pt->meta_prod, __ATOMIC_ACQUIRE) != *pt->meta_cons;
}
