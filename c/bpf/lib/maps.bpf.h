/* SPDX-License-Identifier: Apache-2.0 */
/*
 * maps.bpf.h - the transport's maps and read-only data, declared once.
 *
 * Every .bpf.c includes this; the definitions are weak, so `bpftool gen
 * object` links them into one map each in the one object the loader opens.
 */
#ifndef PT_MAPS_BPF_H
#define PT_MAPS_BPF_H

#include "proctap.h"

/* Set by the loader before load. */
const volatile __u64 pt_ring_mask
	__weak = PT_PAGE_SIZE - 1;		    /* data ring bytes - 1 (power of two) */
const volatile __u64 pt_meta_half __weak = 1 << 19; /* half the metadata ring's bytes */

/* Fixed metadata of every record. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* set by the loader */
} pt_meta SEC(".maps") __weak;

/* Per-CPU control blocks (positions, counters), mapped by the consumer. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct pt_cpu_ctl);
	__uint(max_entries, 1); /* set to the number of possible CPUs */
} pt_ctl SEC(".maps") __weak;

/* Per-CPU data pages: a byte ring plus slack. No BTF value type: the loader
 * sizes the value (ring + slack) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, PT_PAGE_SIZE);
	__uint(max_entries, 1); /* set to the number of possible CPUs */
} pt_data SEC(".maps") __weak;

/* The wake-up protocol with the consumer (struct pt_wake). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct pt_wake);
	__uint(max_entries, 1);
} pt_wake SEC(".maps") __weak;

#endif /* PT_MAPS_BPF_H */
