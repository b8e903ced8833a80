/* SPDX-License-Identifier: Apache-2.0 */
/*
 * transport.bpf.h - the kernel half of the hybrid buffer. Programs do not
 * call this directly: they go through emit.bpf.h, the one emit path.
 *
 * Fixed metadata goes into one BPF ringbuf (pt_meta). Variable bytes go into
 * the data pages: one BPF_F_MMAPABLE array element per CPU, holding that
 * CPU's byte ring of pages_per_cpu 4 KiB pages followed by a tail of slack
 * pages as large as the largest record.
 *
 * Why the slack: the verifier bounds a variable-offset access into a map value
 * by max(offset) + max(size) <= value size, without correlating the two. With
 * the slack every record is one contiguous range starting anywhere in the
 * ring, so it is written with one copy and read in place with one copy; a
 * record that runs past the end of the ring lands in the slack instead of
 * wrapping. Positions are monotonic byte counts; ring offset = pos & mask.
 *
 * Ordering rules that keep loss counted and data never garbage:
 *  1. The metadata record is reserved first. If the ringbuf is full the event
 *     is counted in meta_lost and the data pages are not touched.
 *  2. Data space is reserved with a compare-and-swap on the CPU's prod: a
 *     perf-event or another tracing program can nest on the same CPU.
 *     Space is free only when the consumer released it (cons), so nothing
 *     unread is overwritten. No space: PT_F_DATA_LOST, counted in data_lost.
 *  3. Every data reservation is followed by a submitted metadata record that
 *     names it, so the consumer sees every span and can release in order.
 *  4. Records never wake the consumer by themselves; a submit rings a
 *     doorbell only when the consumer said it is going to sleep (struct
 *     pt_wake). Under load nothing is woken, so no interrupts per record.
 */
#ifndef PT_TRANSPORT_BPF_H
#define PT_TRANSPORT_BPF_H

#include "lib/maps.bpf.h"

static __always_inline void pt_count(__u64 *counter, __u64 n)
{
	__sync_fetch_and_add(counter, n);
}

/*
 * Reserves len bytes of this CPU's data ring. Returns the ring position, or
 * -1 when the consumer has not released enough space (or nesting kept the
 * compare-and-swap from winning in a few tries, which is as good as full).
 * Sets *urgent when this reservation filled the ring past half: the
 * consumer is then woken even if it only paused between polls.
 *
 * cons is read with acquire semantics, which weakly ordered CPUs (arm64)
 * need: the consumer stores it with release after reading the bytes it
 * frees, and our writes into those bytes must not move before this load.
 * The load itself is plain (BPF's load-acquire instruction needs kernel
 * 6.15 and LLVM 21), but the only path to a write is a successful
 * compare-and-swap, a fully ordered atomic on every JIT: every load before
 * it, cons included, completes before any store after it.
 */
static __always_inline __s64 pt_data_reserve(struct pt_cpu_ctl *ctl, __u32 len, bool *urgent)
{
	__u64 ring = pt_ring_mask + 1;

	for (int i = 0; i < 4; i++) {
		__u64 prod = *(volatile __u64 *)&ctl->prod;
		__u64 cons = *(volatile __u64 *)&ctl->cons;

		/* Unsigned: a cons ahead of prod (a confused consumer) reads as full. */
		if (prod + len - cons > ring)
			return -1;
		if (__sync_val_compare_and_swap(&ctl->prod, prod, prod + len) == prod) {
			*urgent = prod - cons < ring / 2 && prod + len - cons >= ring / 2;
			return prod;
		}
	}
	return -1;
}

/*
 * Gives back the unused tail of a reservation when nothing was reserved after
 * it. Returns the span the consumer must release.
 */
static __always_inline __u32 pt_data_trim(struct pt_cpu_ctl *ctl, __u64 pos, __u32 reserved,
					  __u32 used)
{
	if (used < reserved &&
	    __sync_val_compare_and_swap(&ctl->prod, pos + reserved, pos + used) == pos + reserved)
		return used;
	return reserved;
}

/*
 * Submits a metadata record of size bytes, then wakes the consumer if it is
 * asleep, or if this record (or its data, urgent) filled a ring past half.
 * The commit is an atomic exchange (a full barrier), so the load of
 * sleeping below cannot see a value older than the consumer's last look at
 * the ring. A lazy record (stack samples, which nobody waits for one by one)
 * never rings for a sleeping consumer, only for a ring past half full: a
 * doorbell is an interrupt, and at a few samples per second it would cost
 * more than the sample (measured on a 2-vCPU VM: ~10 us per sample). The
 * consumer's bounded idle sleep picks those records up.
 */
static __always_inline void pt_submit(void *rec, __u32 size, bool urgent, bool lazy)
{
	__u32 zero = 0;
	struct pt_wake *w;
	struct pt_hdr *bell;
	__u64 avail;

	bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
	w = bpf_map_lookup_elem(&pt_wake, &zero);
	if (!w)
		return;
	if (!urgent) {
		avail = bpf_ringbuf_query(&pt_meta, BPF_RB_AVAIL_DATA);
		urgent = avail >= pt_meta_half && avail < pt_meta_half + size + 8;
	}
	if (!urgent && lazy)
		return;
	if (!urgent) {
		if (!*(volatile __u64 *)&w->sleeping)
			return;
		if (!__sync_lock_test_and_set(&w->sleeping, 0))
			return; /* another program took it */
	}
	bell = bpf_ringbuf_reserve(&pt_meta, sizeof(*bell), 0);
	if (!bell) {
		/* Ring full: leave the bell for the next record to ring. */
		w->sleeping = 1;
		pt_count(&w->doorbell_lost, 1);
		return;
	}
	__builtin_memset(bell, 0, sizeof(*bell));
	bpf_ringbuf_submit(bell, BPF_RB_FORCE_WAKEUP);
	pt_count(&w->doorbells, 1);
}

#endif /* PT_TRANSPORT_BPF_H */
