/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kinds.h - the shape of the per-kind tables the registry generates
 * (pt_kinds.c): what the loader needs to size, validate and name records
 * of any kind without a line of code per kind.
 */
#ifndef PT_LOADER_KINDS_H
#define PT_LOADER_KINDS_H

#include <stdbool.h>
#include "proctap.h"

/* A variable field: its length sits at len_off in the record. */
struct pt_data_info {
	const char *name;
	__u16 len_off;
	__u16 unit;  /* the length is a multiple of this */
	__u32 cap;   /* bytes; 0 when a knob sets it */
	__s32 knob;  /* PT_KNOB_* that sets the cap, or -1 */
	bool pieces; /* appended in pieces of any size: a second cap of slack */
};

/* A u32 field whose value must be one of a set (enums, kind numbers). */
struct pt_value_check {
	__u16 off;
	__u64 values; /* bit v: value v is valid */
};

struct pt_kind_info {
	const char *name; /* NULL: no such kind */
	__u32 meta_size;
	__u16 flags_valid; /* every flag bit the kind sets, data_lost included */
	bool from_kernel;  /* false: made by the loader (loss reports, mappings) */
	bool selectable;   /* a config can enable it (not loss reports) */
	bool lazy_wake;
	__u16 ndata;
	struct pt_data_info data[PT_DATA_FIELDS_MAX];
	__u16 nchecks;
	struct pt_value_check checks[PT_CHECKS_MAX];
	const char *programs[PT_PROGRAMS_MAX]; /* loaded and attached when the kind is on */
};

struct pt_counter_info {
	__u32 kind;
	const char *name;
};

struct pt_knob_info {
	const char *name;
	__u32 def, min, max;
};

extern const struct pt_kind_info pt_kind_info[PT_KIND_MAX];
extern const struct pt_counter_info pt_counter_info[PT_COUNTERS_MAX];
extern const struct pt_knob_info pt_knob_info[PT_KNOBS_MAX];

/* The kind's info, or NULL when kind is not declared. */
static inline const struct pt_kind_info *pt_kind(__u32 kind)
{
	return kind < PT_KIND_MAX && pt_kind_info[kind].name ? &pt_kind_info[kind] : NULL;
}

#endif /* PT_LOADER_KINDS_H */
