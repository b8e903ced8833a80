// SPDX-License-Identifier: Apache-2.0
/*
 * bootstrap.c - open and close an instance: the order in which the loader's
 * parts (c/loader/internal.h) set up the one BPF object and tear it down.
 *
 *   check the config -> open the object -> pick programs and maps (from the
 *   kinds the config enables) -> size the transport -> families configure
 *   -> set knobs -> load -> families prepare -> map the transport, build
 *   the poll set -> attach -> families start
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/btf.h>
#include "loader/internal.h"
#include "proctap.skel.h"

/* The families, in the order they are configured and started. */
const struct pt_family *const pt_families[] = {
	&pt_filter,	&pt_family_proc,    &pt_family_files, &pt_family_oom,
	&pt_family_net, &pt_family_profile, &pt_family_synth, NULL,
};

/* Sets a u32 variable of the object's read-only data by name (the knobs:
 * their names come from the registry, not from the skeleton). */
static int pt_set_rodata_u32(struct proctap *pt, const char *name, __u32 value)
{
	struct btf *btf = bpf_object__btf(pt->skel->obj);
	int id = btf ? btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC) : -1;
	const struct btf_type *sec = id > 0 ? btf__type_by_id(btf, id) : NULL;
	const struct btf_var_secinfo *vs = sec ? btf_var_secinfos(sec) : NULL;
	size_t size;
	__u8 *data = bpf_map__initial_value(pt->skel->maps.rodata, &size);

	for (int i = 0; vs && data && i < btf_vlen(sec); i++) {
		const struct btf_type *var = btf__type_by_id(btf, vs[i].type);

		if (strcmp(btf__name_by_offset(btf, var->name_off), name))
			continue;
		if (vs[i].size != sizeof(value) || vs[i].offset + sizeof(value) > size)
			return -EINVAL;
		memcpy(data + vs[i].offset, &value, sizeof(value));
		return 0;
	}
	return -ENOENT;
}

/* The caps of every kind's variable fields, for the programs (knobs in
 * read-only data) and for validating records. */
static int pt_set_caps(struct proctap *pt, struct proctap_error *err)
{
	for (__u32 knob = 0; knob < PT_KNOBS; knob++) {
		char name[64];
		int e;

		snprintf(name, sizeof(name), "pt_knob_%s", pt_knob_info[knob].name);
		if ((e = pt_set_rodata_u32(pt, name, pt->cfg.knobs[knob])))
			return pt_fail(err, PROCTAP_E_LOAD, -e, NULL, NULL,
				       "the BPF object has no read-only u32 %s", name);
	}
	for (__u32 kind = 0; kind < PT_KIND_MAX; kind++) {
		const struct pt_kind_info *k = pt_kind(kind);

		for (int i = 0; k && i < k->ndata; i++)
			pt->caps[kind][i] = k->data[i].knob >= 0 ? pt->cfg.knobs[k->data[i].knob]
								 : k->data[i].cap;
	}
	return PROCTAP_OK;
}

/* Calls one hook of every family that is on; stops at the first error. */
#define PT_FAMILIES_CALL(pt, hook, err)                                                            \
	({                                                                                         \
		int e__ = PROCTAP_OK;                                                              \
		for (const struct pt_family *const *f__ = pt_families; *f__ && !e__; f__++)        \
			if ((*f__)->hook && pt_family_on(*f__, &(pt)->cfg))                        \
				e__ = (*f__)->hook((pt), (err));                                   \
		e__;                                                                               \
	})

/* A kind that never wakes a sleeping consumer is delivered by the bounded
 * idle sleep: 100 ms then. Otherwise 1 s (each timed wake-up costs ~50 us of
 * CPU on a small VM, and nothing else waits for it). */
static int pt_idle_timeout_ms(const struct proctap_config *c)
{
	for (__u32 kind = 0; kind < PT_KIND_MAX; kind++)
		if (pt_kind(kind) && pt_kind(kind)->lazy_wake && (c->events & PROCTAP_EVENT(kind)))
			return 100;
	return 1000;
}

static int pt_setup(struct proctap *pt, struct proctap_error *err)
{
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
	pt->idle_timeout_ms = pt_idle_timeout_ms(&pt->cfg);
	pt->skel = proctap_bpf__open();
	if (!pt->skel)
		return pt_kernel_error(err, PROCTAP_E_LOAD, errno, NULL, "opening the BPF object");
	if ((e = pt_programs_select(pt, err)) || (e = pt_transport_configure(pt, err)) ||
	    (e = PT_FAMILIES_CALL(pt, configure, err)) || (e = pt_set_caps(pt, err)) ||
	    (e = pt_programs_load(pt, err)) || (e = PT_FAMILIES_CALL(pt, prepare, err)) ||
	    (e = pt_transport_open(pt, err)) || (e = pt_poll_open(pt, err)) ||
	    (e = pt_programs_attach(pt, err)) || (e = PT_FAMILIES_CALL(pt, start, err)))
		return e;
	return PROCTAP_OK;
}

struct proctap *proctap_open(const struct proctap_config *cfg, struct proctap_error *err)
{
	struct proctap *pt;

	if (err)
		memset(err, 0, sizeof(*err));
	if (proctap_config_check(cfg, err))
		return NULL;
	pt = calloc(1, sizeof(*pt));
	if (!pt) {
		pt_fail(err, PROCTAP_E_SYSTEM, ENOMEM, NULL, NULL, "out of memory");
		return NULL;
	}
	pt_config_resolve(cfg, &pt->cfg);
	pt->epfd = -1;
	pt->stopfd = -1;
	pt->meta_fd = -1;
	pt->cgroup2_fd = -1;
	if (pt_setup(pt, err)) {
		proctap_close(pt);
		return NULL;
	}
	return pt;
}

void proctap_close(struct proctap *pt)
{
	if (!pt)
		return;
	pt_programs_detach(pt);
	for (const struct pt_family *const *f = pt_families; *f; f++)
		if ((*f)->close && pt_family_on(*f, &pt->cfg))
			(*f)->close(pt);
	pt_poll_close(pt);
	pt_transport_close(pt);
	proctap_bpf__destroy(pt->skel); /* closes programs and maps */
	if (pt->cgroup2_fd >= 0)
		close(pt->cgroup2_fd);
	free(pt->links);
	free(pt);
}
