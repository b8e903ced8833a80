// SPDX-License-Identifier: Apache-2.0
/*
 * synth.bpf.c - a synthetic event source for benchmarks and self-tests.
 *
 * Every getppid() of one process (synth_tgid) emits synth_batch events, each
 * carrying pt_knob_synth_payload bytes, through one of three transports:
 *
 *   hybrid   proctap's own, through the emit path like every kind
 *   ringbuf  the usual design: one BPF ringbuf, payload inline (a peer)
 *   perfbuf  the older usual design: a perf buffer, payload inline (a peer)
 *
 * Each copies the payload once from the same source bytes, so a benchmark
 * compares the transports and nothing else. getppid is the trigger because
 * it is about the cheapest syscall. The program attaches to the raw
 * sys_enter tracepoint (fentry is refused on some kernels, including the
 * 6.18 one this was built on), checks the syscall number and the tgid
 * first, and leaves at once for everything else.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "pt_kinds.bpf.h"

/* Set by the loader before load. */
const volatile __u32 synth_tgid = 0;
const volatile __u32 synth_batch = 1;
const volatile long synth_syscall = 110;  /* __NR_getppid on x86_64 */
const volatile __u32 synth_transport = 0; /* enum proctap_synth_transport */

/* The payload every event copies; the loader fills it before load. */
__u8 synth_src[PT_KNOB_SYNTH_PAYLOAD_MAX];

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
	__u8 payload[PT_KNOB_SYNTH_PAYLOAD_MAX];
	__u64 seq; /* this CPU's attempts so far */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct synth_scratch);
	__uint(max_entries, 1);
} synth_cpu SEC(".maps");

struct synth_loop {
	struct pt_emit e; /* initialized: this CPU's counters, for the peers */
	struct synth_scratch *s;
	void *ctx;
	__u64 pid_tgid;
};

/* The header of a peer's inline record: what pt_emit_open fills for ours. */
static __always_inline void synth_peer_hdr(struct pt_synth *r, struct synth_loop *x, __u64 seq)
{
	__builtin_memset(r, 0, sizeof(*r));
	pt_hdr_fill(&r->hdr, PT_KIND_SYNTH, x->e.cpu, x->pid_tgid);
	r->hdr.data_len = pt_knob_synth_payload;
	r->seq = seq;
	r->payload_len = pt_knob_synth_payload;
}

static int synth_hybrid_one(__u64 i, struct synth_loop *x)
{
	__u64 seq = x->s->seq++;
	struct pt_synth *r;
	struct pt_emit e;

	r = pt_synth_open(&e, x->pid_tgid);
	if (!r)
		return 0;
	r->seq = seq;
	if (pt_knob_synth_payload && pt_synth_reserve(&e, pt_knob_synth_payload) &&
	    pt_synth_payload_kmem(&e, synth_src, pt_knob_synth_payload) >= (long)sizeof(seq))
		*(__u64 *)e.dst = seq;
	pt_synth_commit(&e);
	return 0;
}

static int synth_ringbuf_one(__u64 i, struct synth_loop *x)
{
	__u64 seq = x->s->seq++;
	struct pt_synth *r;

	/* The knob is read-only data: the verifier sees a constant size. */
	r = bpf_ringbuf_reserve(&synth_rb, sizeof(*r) + pt_knob_synth_payload, 0);
	if (!r) {
		pt_emit_peer_lost(&x->e, PT_KIND_SYNTH);
		return 0;
	}
	synth_peer_hdr(r, x, seq);
	if (pt_knob_synth_payload) {
		bpf_probe_read_kernel(r + 1, pt_knob_synth_payload, synth_src);
		if (pt_knob_synth_payload >= sizeof(seq))
			*(__u64 *)(r + 1) = seq;
	}
	bpf_ringbuf_submit(r, 0);
	pt_emit_peer_sent(&x->e, PT_KIND_SYNTH, pt_knob_synth_payload);
	return 0;
}

static int synth_perfbuf_one(__u64 i, struct synth_loop *x)
{
	struct synth_scratch *s = x->s;
	__u64 seq = s->seq++;

	synth_peer_hdr(&s->rec, x, seq);
	if (pt_knob_synth_payload >= sizeof(seq))
		*(__u64 *)s->payload = seq;
	if (bpf_perf_event_output(x->ctx, &synth_pb, BPF_F_CURRENT_CPU, s,
				  sizeof(s->rec) + pt_knob_synth_payload)) {
		pt_emit_peer_lost(&x->e, PT_KIND_SYNTH);
		return 0;
	}
	pt_emit_peer_sent(&x->e, PT_KIND_SYNTH, pt_knob_synth_payload);
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
	if (!pt_emit_init(&x->e))
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
