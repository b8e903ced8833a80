// SPDX-License-Identifier: Apache-2.0
/*
 * synth.bpf.c - a synthetic event source for benchmarks and self-tests.
 *
 * Every getppid() of one process (synth_tgid) emits synth_batch events, each
 * carrying synth_payload bytes, through one of three transports:
 *
 *   hybrid   proctap's own: metadata ring + per-CPU data pages (the maps
 *            are shared with proc.bpf.c by the loader)
 *   ringbuf  the usual design: one BPF ringbuf, payload inline
 *   perfbuf  the older usual design: a perf buffer, payload inline
 *
 * Each copies the payload once from the same source bytes, so a benchmark
 * compares the transports and nothing else.
 * getppid is the trigger because it is about the cheapest syscall. The
 * programs attach to the raw sys_enter tracepoint (fentry is refused on some
 * kernels, including the 6.18 one this was built on), check the syscall
 * number and the tgid first, and leave at once for everything else.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "transport.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader before load. */
const volatile __u32 synth_tgid = 0;
const volatile __u32 synth_payload = 64;
const volatile __u32 synth_batch = 1;
const volatile long synth_syscall = 110; /* __NR_getppid on x86_64 */
const volatile __u32 synth_transport = 0; /* enum proctap_synth_transport */

/* The payload every event copies; the loader fills it before load. */
__u8 synth_src[PT_SYNTH_PAYLOAD_MAX];

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096); /* sized by the loader */
} synth_rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} synth_pb SEC(".maps");

/* perf output copies from one contiguous buffer: header + payload, with the
 * payload filled in by the loader, so it is copied once per event as well. */
struct synth_scratch {
	struct pt_synth rec;
	__u8 payload[PT_SYNTH_PAYLOAD_MAX];
	__u64 seq; /* this CPU's attempts so far */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct synth_scratch);
	__uint(max_entries, 1);
} synth_cpu SEC(".maps");

struct synth_loop {
	struct pt_cpu c;
	struct synth_scratch *s;
	void *ctx;
	__u64 pid_tgid;
	__u32 cpu;
};

static __always_inline void synth_hdr(struct pt_synth *r, struct synth_loop *x, __u64 seq)
{
	pt_hdr_init(&r->hdr, PT_KIND_SYNTH, x->cpu, x->pid_tgid, bpf_ktime_get_ns());
	r->seq = seq;
	r->payload_len = synth_payload;
	r->synth_pad = 0;
}

/* Copies the payload to dst and stamps seq into its first 8 bytes. */
static __always_inline void synth_fill(__u8 *dst, __u64 seq)
{
	if (synth_payload == 0)
		return;
	bpf_probe_read_kernel(dst, synth_payload, synth_src);
	if (synth_payload >= sizeof(seq))
		*(__u64 *)dst = seq;
}

static int synth_hybrid_one(__u64 i, struct synth_loop *x)
{
	struct pt_cpu_ctl *ctl = x->c.ctl;
	__u64 seq = x->s->seq++;
	struct pt_synth *r;
	bool urgent = false;
	__s64 pos;

	r = bpf_ringbuf_reserve(&pt_meta, sizeof(*r), 0);
	if (!r) {
		pt_count(&ctl->meta_lost[PT_KIND_SYNTH], 1);
		return 0;
	}
	synth_hdr(r, x, seq);
	if (synth_payload) {
		pos = pt_data_reserve(ctl, synth_payload, &urgent);
		if (pos < 0) {
			r->hdr.flags |= PT_F_DATA_LOST;
			pt_count(&ctl->data_lost[PT_KIND_SYNTH], 1);
		} else {
			synth_fill(x->c.pages + (pos & pt_ring_mask), seq);
			r->hdr.data_pos = pos;
			r->hdr.data_span = synth_payload;
			r->hdr.data_len = synth_payload;
			pt_count(&ctl->data_bytes, synth_payload);
		}
	}
	pt_submit(r, sizeof(*r), urgent);
	pt_count(&ctl->emitted[PT_KIND_SYNTH], 1);
	return 0;
}

static int synth_ringbuf_one(__u64 i, struct synth_loop *x)
{
	struct pt_cpu_ctl *ctl = x->c.ctl;
	__u64 seq = x->s->seq++;
	struct pt_synth *r;

	/* synth_payload is read-only data: the verifier sees a constant size. */
	r = bpf_ringbuf_reserve(&synth_rb, sizeof(*r) + synth_payload, 0);
	if (!r) {
		pt_count(&ctl->meta_lost[PT_KIND_SYNTH], 1);
		return 0;
	}
	synth_hdr(r, x, seq);
	r->hdr.data_len = synth_payload;
	synth_fill((__u8 *)(r + 1), seq);
	bpf_ringbuf_submit(r, 0);
	pt_count(&ctl->emitted[PT_KIND_SYNTH], 1);
	pt_count(&ctl->data_bytes, synth_payload);
	return 0;
}

static int synth_perfbuf_one(__u64 i, struct synth_loop *x)
{
	struct pt_cpu_ctl *ctl = x->c.ctl;
	struct synth_scratch *s = x->s;
	__u64 seq = s->seq++;

	synth_hdr(&s->rec, x, seq);
	s->rec.hdr.data_len = synth_payload;
	if (synth_payload >= sizeof(seq))
		*(__u64 *)s->payload = seq;
	if (bpf_perf_event_output(x->ctx, &synth_pb, BPF_F_CURRENT_CPU, s,
				  sizeof(s->rec) + synth_payload)) {
		pt_count(&ctl->meta_lost[PT_KIND_SYNTH], 1);
		return 0;
	}
	pt_count(&ctl->emitted[PT_KIND_SYNTH], 1);
	pt_count(&ctl->data_bytes, synth_payload);
	return 0;
}

/* The per-trigger prologue: filter, then this CPU's state. */
static __always_inline bool synth_begin(struct synth_loop *x, void *ctx, long id)
{
	__u32 zero = 0;

	if (id != synth_syscall)
		return false;
	x->pid_tgid = bpf_get_current_pid_tgid();
	if ((x->pid_tgid >> 32) != synth_tgid)
		return false;
	if (!pt_cpu_get(&x->c, &x->cpu))
		return false;
	x->s = bpf_map_lookup_elem(&synth_cpu, &zero);
	x->ctx = ctx;
	return x->s != NULL;
}

/* One program; the loader picks the transport before load and the
 * verifier drops the other two paths (synth_transport is read-only data). */
SEC("tp_btf/sys_enter")
int BPF_PROG(synth, struct pt_regs *regs, long id)
{
	struct synth_loop x;

	if (!synth_begin(&x, ctx, id))
		return 0;
	if (synth_transport == PROCTAP_SYNTH_HYBRID)
		bpf_loop(synth_batch, synth_hybrid_one, &x, 0);
	else if (synth_transport == PROCTAP_SYNTH_RINGBUF)
		bpf_loop(synth_batch, synth_ringbuf_one, &x, 0);
	else
		bpf_loop(synth_batch, synth_perfbuf_one, &x, 0);
	return 0;
}
