// SPDX-License-Identifier: Apache-2.0
/*
 * synth.c - the synthetic source's family (benchmarks, self-tests), with the
 * consumers of its peer transports: one plain BPF ringbuf and one perf
 * buffer carrying the payload inline, drained in the same poll rounds and
 * appended through the same path as proctap's own records.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <bpf/bpf.h>
#include "internal.h"
#include "proctap.skel.h"

#define SYNTH_RINGBUF_DEFAULT (4u << 20)
#define SYNTH_PERFBUF_DEFAULT (2u << 20)

static const char *const synth_maps[] = { "synth_rb", "synth_pb", "synth_cpu", NULL };

static void synth_resolve(struct proctap_config *c)
{
	if (!c->synth_batch)
		c->synth_batch = 1;
	if (!c->synth_ring_bytes)
		c->synth_ring_bytes = c->synth_transport == PROCTAP_SYNTH_PERFBUF
					      ? SYNTH_PERFBUF_DEFAULT
					      : SYNTH_RINGBUF_DEFAULT;
}

static int synth_check(const struct proctap_config *c, struct proctap_error *err)
{
	if (c->synth_tgid == 0)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "synth_tgid", NULL,
			       "the synthetic source needs the pid whose getppid() triggers it");
	if (c->synth_batch > PT_SYNTH_BATCH_MAX)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "synth_batch", NULL,
			       "synth_batch %u is above %u", c->synth_batch, PT_SYNTH_BATCH_MAX);
	if (c->synth_transport > PROCTAP_SYNTH_PERFBUF)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "synth_transport", NULL,
			       "unknown synth_transport %u", c->synth_transport);
	if (!pt_pow2(c->synth_ring_bytes) || c->synth_ring_bytes < PT_PAGE_SIZE ||
	    c->synth_ring_bytes > (1u << 30))
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "synth_ring_bytes", NULL,
			       "synth_ring_bytes %u must be a power of two from %u to 1 GiB",
			       c->synth_ring_bytes, PT_PAGE_SIZE);
	return PROCTAP_OK;
}

/* Synthetic payload bytes: a pattern a reader can check. */
static __u8 synth_byte(size_t i)
{
	return (__u8)(i * 131 + 7);
}

static int synth_configure(struct proctap *pt, struct proctap_error *err)
{
	const struct proctap_config *c = &pt->cfg;
	struct proctap_bpf *s = pt->skel;
	__u32 t = c->synth_transport;
	int e;

	s->rodata->synth_tgid = c->synth_tgid;
	s->rodata->synth_batch = c->synth_batch;
	s->rodata->synth_syscall = SYS_getppid;
	s->rodata->synth_transport = t;
	for (size_t i = 0; i < sizeof(s->bss->synth_src); i++)
		s->bss->synth_src[i] = synth_byte(i);
	bpf_map__set_autocreate(s->maps.synth_rb, t == PROCTAP_SYNTH_RINGBUF);
	bpf_map__set_autocreate(s->maps.synth_pb, t == PROCTAP_SYNTH_PERFBUF);
	if (t == PROCTAP_SYNTH_RINGBUF &&
	    (e = bpf_map__set_max_entries(s->maps.synth_rb, c->synth_ring_bytes)))
		return pt_fail(err, PROCTAP_E_LOAD, -e, NULL, NULL,
			       "sizing the synthetic ring buffer: %s", strerror(-e));
	return PROCTAP_OK;
}

/* The perf-buffer peer copies from each CPU's scratch: struct pt_synth,
 * then the payload, filled here once. */
static int synth_prepare(struct proctap *pt, struct proctap_error *err)
{
	size_t vsz = pt_round_up(bpf_map__value_size(pt->skel->maps.synth_cpu), 8);
	__u32 zero = 0;
	__u8 *vals;
	int e;

	if (pt->cfg.synth_transport != PROCTAP_SYNTH_PERFBUF)
		return PROCTAP_OK;
	vals = calloc(pt->ncpus, vsz);
	if (!vals)
		return pt_fail(err, PROCTAP_E_SYSTEM, ENOMEM, NULL, NULL, "out of memory");
	for (__u32 cpu = 0; cpu < pt->ncpus; cpu++)
		for (size_t i = 0; i < PT_KNOB_SYNTH_PAYLOAD_MAX; i++)
			vals[cpu * vsz + sizeof(struct pt_synth) + i] = synth_byte(i);
	e = bpf_map__update_elem(pt->skel->maps.synth_cpu, &zero, sizeof(zero), vals,
				 pt->ncpus * vsz, BPF_ANY);
	free(vals);
	if (e)
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, -e, NULL,
				       "filling the synthetic payload");
	return PROCTAP_OK;
}

/* A synthetic record with its payload inline (ringbuf and perf-buffer peers). */
static void synth_on_inline(struct proctap *pt, const void *data, size_t size)
{
	const struct pt_hdr *h = data;

	if (size < sizeof(struct pt_synth) || h->kind != PT_KIND_SYNTH || h->data_span ||
	    size < sizeof(struct pt_synth) + (size_t)h->data_len || !pt_record_valid(pt, h, size)) {
		pt_bump(&pt->invalid);
		return;
	}
	pt_append(pt, PT_KIND_SYNTH, h, sizeof(struct pt_synth),
		  (const __u8 *)data + sizeof(struct pt_synth));
}

static int synth_on_rb(void *ctx, void *data, size_t size)
{
	synth_on_inline(ctx, data, size);
	return 0;
}

static void synth_on_pb(void *ctx, int cpu, void *data, __u32 size)
{
	synth_on_inline(ctx, data, size);
}

static int synth_start(struct proctap *pt, struct proctap_error *err)
{
	const struct proctap_config *c = &pt->cfg;

	if (c->synth_transport == PROCTAP_SYNTH_RINGBUF) {
		/* The peer design as commonly built: libbpf's consumer, default
		 * (adaptive) wake-ups. */
		pt->rb = ring_buffer__new(bpf_map__fd(pt->skel->maps.synth_rb), synth_on_rb, pt,
					  NULL);
		if (!pt->rb)
			return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL,
					       "opening the synthetic ring buffer");
		return pt_poll_add(pt, ring_buffer__epoll_fd(pt->rb), err);
	}
	if (c->synth_transport == PROCTAP_SYNTH_PERFBUF) {
		pt->pb = perf_buffer__new(
			bpf_map__fd(pt->skel->maps.synth_pb), c->synth_ring_bytes / PT_PAGE_SIZE,
			synth_on_pb, NULL /* drops: meta_lost, counted in the kernel */, pt, NULL);
		if (!pt->pb)
			return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL,
					       "opening the perf buffer");
		return pt_poll_add(pt, perf_buffer__epoll_fd(pt->pb), err);
	}
	return PROCTAP_OK;
}

static int synth_drain(struct proctap *pt)
{
	int n = 0;

	if (pt->rb)
		n = ring_buffer__consume_n(pt->rb, PT_DRAIN_BUDGET);
	else if (pt->pb)
		n = perf_buffer__consume(pt->pb);
	return n;
}

static void synth_close(struct proctap *pt)
{
	ring_buffer__free(pt->rb);
	perf_buffer__free(pt->pb);
	pt->rb = NULL;
	pt->pb = NULL;
}

const struct pt_family pt_family_synth = {
	.name = "synth",
	.kinds = PT_FAMILY_SYNTH_KINDS,
	.maps = synth_maps,
	.resolve = synth_resolve,
	.check = synth_check,
	.configure = synth_configure,
	.prepare = synth_prepare,
	.start = synth_start,
	.drain = synth_drain,
	.close = synth_close,
};
