// SPDX-License-Identifier: Apache-2.0
/*
 * config.c - the one place the config's defaults and rules live (Rust calls
 * proctap_config_check too), and the registry's names and sizes as the API
 * exposes them.
 */
#include <errno.h>
#include <string.h>
#include "internal.h"

/* Kinds the config enables, and kinds whose programs may be loaded: every
 * kind of a family that is on, and exec and fork when they name processes
 * for the filter. */
static __u64 pt_loaded_kinds(const struct proctap_config *c)
{
	__u64 kinds = c->events;

	for (const struct pt_family *const *f = pt_families; *f; f++)
		if (pt_family_on(*f, c))
			kinds |= (*f)->kinds;
	if (pt_filter_tracks_names(c))
		kinds |= PROCTAP_EVENT(PT_KIND_EXEC) | PROCTAP_EVENT(PT_KIND_FORK);
	return kinds;
}

__u32 pt_knob_value(const struct proctap_config *c, __u32 knob)
{
	if (knob >= PT_KNOBS)
		return 0;
	return c->knobs_set & (1u << knob) ? c->knobs[knob] : pt_knob_info[knob].def;
}

/* Data bytes of one record of kind k at most: the sum of its caps. With
 * slack, what the verifier sees its programs may write past a record's
 * start: a field appended in pieces counts its cap twice (emit.bpf.h). */
static __u64 pt_kind_data_max(const struct proctap_config *c, const struct pt_kind_info *k,
			      bool slack)
{
	__u64 sum = 0;

	for (int i = 0; i < k->ndata; i++) {
		const struct pt_data_info *d = &k->data[i];
		__u64 cap = d->knob >= 0 ? pt_knob_value(c, d->knob) : d->cap;

		sum += slack && d->pieces ? 2 * cap : cap;
	}
	return sum;
}

static __u64 pt_data_max_of(const struct proctap_config *c, __u64 kinds, bool slack)
{
	__u64 largest = 0;

	for (__u32 kind = 0; kind < PT_KIND_MAX; kind++) {
		const struct pt_kind_info *k = pt_kind(kind);
		__u64 max = k && (kinds & PROCTAP_EVENT(kind)) ? pt_kind_data_max(c, k, slack) : 0;

		if (max > largest)
			largest = max;
	}
	return largest;
}

__u64 pt_data_max(const struct proctap_config *c)
{
	return pt_data_max_of(c, c->events, false);
}

/* The verifier checks every loaded program's writes against the slack. */
__u64 pt_slack(const struct proctap_config *c)
{
	return pt_round_up(pt_data_max_of(c, pt_loaded_kinds(c), true), PT_PAGE_SIZE);
}

void pt_config_resolve(const struct proctap_config *in, struct proctap_config *out)
{
	*out = *in;
	if (!out->events)
		out->events = PROCTAP_EVENT(PT_KIND_EXEC) | PROCTAP_EVENT(PT_KIND_EXIT);
	for (__u32 k = 0; k < PT_KNOBS; k++)
		out->knobs[k] = pt_knob_value(in, k);
	out->knobs_set |= (1u << PT_KNOBS) - 1;
	if (!out->pages_per_cpu) {
		/* Room for at least two of the largest records, within the
		 * kernel's per-CPU limit. */
		__u64 record = pt_data_max(out);

		out->pages_per_cpu = PT_DEFAULT_PAGES;
		for (const struct pt_family *const *f = pt_families; *f; f++) {
			__u32 pages = (*f)->default_pages && pt_family_on(*f, out)
					      ? (*f)->default_pages(out)
					      : 0;

			if (pages > out->pages_per_cpu)
				out->pages_per_cpu = pages;
		}
		while ((__u64)out->pages_per_cpu * PT_PAGE_SIZE < 2 * record &&
		       (__u64)out->pages_per_cpu * 2 * PT_PAGE_SIZE + pt_slack(out) <= PT_ELEM_MAX)
			out->pages_per_cpu *= 2;
	}
	if (!out->ringbuf_bytes)
		out->ringbuf_bytes = PT_DEFAULT_RINGBUF;
	if (!out->flush_us)
		out->flush_us = PT_DEFAULT_FLUSH_US;
	for (const struct pt_family *const *f = pt_families; *f; f++)
		if ((*f)->resolve && pt_family_on(*f, out))
			(*f)->resolve(out);
}

static int pt_check_knobs(const struct proctap_config *in, struct proctap_error *err)
{
	if (in->knobs_set >> PT_KNOBS)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "knobs", NULL,
			       "knobs_set 0x%x names knobs that do not exist (%u are declared)",
			       in->knobs_set, PT_KNOBS);
	for (__u32 k = 0; k < PT_KNOBS; k++) {
		const struct pt_knob_info *info = &pt_knob_info[k];
		__u32 v = pt_knob_value(in, k);

		if (v < info->min || v > info->max)
			return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, info->name, NULL,
				       "%u bytes is outside %u..%u", v, info->min, info->max);
	}
	return PROCTAP_OK;
}

static int pt_check_buffers(const struct proctap_config *c, struct proctap_error *err)
{
	__u64 ring = (__u64)c->pages_per_cpu * PT_PAGE_SIZE;
	__u64 data_max = pt_data_max(c), slack = pt_slack(c);

	if (!pt_pow2(c->pages_per_cpu))
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "pages_per_cpu", NULL,
			       "pages_per_cpu %u must be a power of two", c->pages_per_cpu);
	if (ring < data_max)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "pages_per_cpu", NULL,
			       "%u pages (%llu bytes) cannot hold one record of up to %llu bytes "
			       "of data; raise pages_per_cpu or lower the caps (argv_max)",
			       c->pages_per_cpu, (unsigned long long)ring,
			       (unsigned long long)data_max);
	if (ring + slack > PT_ELEM_MAX)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "pages_per_cpu", NULL,
			       "data pages plus slack (%llu bytes) exceed the kernel's 4 MiB "
			       "per-CPU limit; lower pages_per_cpu or the caps (argv_max)",
			       (unsigned long long)(ring + slack));
	if (!pt_pow2(c->ringbuf_bytes) || c->ringbuf_bytes < PT_PAGE_SIZE)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "ringbuf_bytes", NULL,
			       "ringbuf_bytes %u must be a power of two of at least %u",
			       c->ringbuf_bytes, PT_PAGE_SIZE);
	if (c->flush_us > 10u * 1000 * 1000)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "flush_us", NULL,
			       "flush_us %u is above 10 s", c->flush_us);
	return PROCTAP_OK;
}

int proctap_config_check(const struct proctap_config *in, struct proctap_error *err)
{
	struct proctap_config c;
	__u64 selectable = 0;
	int e;

	if (!in)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "config", NULL, "config is NULL");
	for (__u32 kind = 0; kind < PT_KIND_MAX; kind++)
		if (pt_kind(kind) && pt_kind(kind)->selectable)
			selectable |= PROCTAP_EVENT(kind);
	if (in->events & ~selectable)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "events", NULL,
			       "events 0x%llx names kinds a config cannot enable",
			       (unsigned long long)in->events);
	if ((e = pt_check_knobs(in, err)))
		return e;
	pt_config_resolve(in, &c);
	if ((e = pt_check_buffers(&c, err)))
		return e;
	for (const struct pt_family *const *f = pt_families; *f; f++)
		if ((*f)->check && pt_family_on(*f, &c) && (e = (*f)->check(&c, err)))
			return e;
	return PROCTAP_OK;
}

int proctap_config_knob(struct proctap_config *cfg, __u32 knob, __u32 value)
{
	if (!cfg || knob >= PT_KNOBS)
		return -EINVAL;
	cfg->knobs[knob] = value;
	cfg->knobs_set |= 1u << knob;
	return 0;
}

__u64 proctap_max_record(const struct proctap_config *cfg)
{
	struct proctap_config c;
	__u64 largest = PT_LOST_SIZE;

	if (proctap_config_check(cfg, NULL))
		return 0;
	pt_config_resolve(cfg, &c);
	for (__u32 kind = 0; kind < PT_KIND_MAX; kind++) {
		const struct pt_kind_info *k = pt_kind(kind);
		__u64 size;

		if (!k || !(c.events & PROCTAP_EVENT(kind)))
			continue;
		size = pt_round_up(k->meta_size + pt_kind_data_max(&c, k, false), 8);
		if (size > largest)
			largest = size;
	}
	return largest;
}

const char *proctap_kind_name(__u32 kind)
{
	return pt_kind(kind) ? pt_kind(kind)->name : NULL;
}

const char *proctap_counter_name(__u32 index, __u32 *kind)
{
	if (index >= PT_COUNTERS)
		return NULL;
	if (kind)
		*kind = pt_counter_info[index].kind;
	return pt_counter_info[index].name;
}

int proctap_knob(const char *name)
{
	for (__u32 k = 0; name && k < PT_KNOBS; k++)
		if (!strcmp(pt_knob_info[k].name, name))
			return k;
	return -1;
}
