/* SPDX-License-Identifier: Apache-2.0 */
/*
 * internal.h - the loader's instance and the interfaces between its parts:
 *
 *   bootstrap.c  open and close: the order of everything below
 *   config.c     defaults, rules, knobs, largest record
 *   programs.c   which programs load, the load itself, generic attach
 *   transport.c  mapping the rings, consuming records, releasing data
 *   poll.c       the poll loop, buffer hand-over, stop
 *   stats.c      counters and loss reports
 *   procfs.c     small /proc and /sys readers
 *   proc.c, profile.c, synth.c   one family each (struct pt_family)
 *
 * No signal handlers, no threads, no process-global state: every bit of
 * state lives in struct proctap, so instances coexist.
 */
#ifndef PT_LOADER_INTERNAL_H
#define PT_LOADER_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>
#include <bpf/libbpf.h>
#include "proctap.h"
#include "kinds.h"

#define PT_DEFAULT_PAGES 64
#define PT_DEFAULT_RINGBUF (1u << 20)
#define PT_DEFAULT_FLUSH_US 10000
/* The kernel refuses array values above KMALLOC_MAX_SIZE (4 MiB on x86-64). */
#define PT_ELEM_MAX (4u << 20)
/* Records consumed between two checks of the flush deadline. */
#define PT_DRAIN_BUDGET 1024

struct proctap;

/*
 * A family of event kinds (the declarations in c/events name it): the loader code that
 * configures its programs beyond the generic path. Every hook is optional;
 * hooks run only when one of the family's kinds is enabled (or always).
 */
struct pt_family {
	const char *name;
	__u64 kinds; /* PT_FAMILY_<NAME>_KINDS */
	bool always; /* on whatever is enabled (the filter serves every kind) */
	/* Maps only its programs use: not created while the family is off. */
	const char *const *maps;
	/* Data pages per CPU its config needs at least, when pages_per_cpu is
	 * left 0 (a flow of bytes needs more than PT_DEFAULT_PAGES); NULL: no
	 * more than that. */
	__u32 (*default_pages)(const struct proctap_config *c);
	/* Defaults of the family's own config fields. */
	void (*resolve)(struct proctap_config *c);
	/* Rules of the family's own config fields (no kernel access). */
	int (*check)(const struct proctap_config *c, struct proctap_error *err);
	/* Before load: read-only data, programs and maps to load or not. */
	int (*configure)(struct proctap *pt, struct proctap_error *err);
	/* After load, before attach: fill maps the programs read. */
	int (*prepare)(struct proctap *pt, struct proctap_error *err);
	/* After the generic attach: attach what is not generic, open own rings. */
	int (*start)(struct proctap *pt, struct proctap_error *err);
	/* Rings of its own to drain in each poll round; records taken or -errno. */
	int (*drain)(struct proctap *pt);
	/* Detaches what start attached (idempotent). */
	void (*detach)(struct proctap *pt);
	/* Frees what start allocated. */
	void (*close)(struct proctap *pt);
};

extern const struct pt_family pt_filter;
extern const struct pt_family pt_family_proc;
extern const struct pt_family pt_family_files;
extern const struct pt_family pt_family_oom;
extern const struct pt_family pt_family_net;
extern const struct pt_family pt_family_profile;
extern const struct pt_family pt_family_synth;

/* Every family, NULL-terminated. */
extern const struct pt_family *const pt_families[];

static inline bool pt_family_on(const struct pt_family *f, const struct proctap_config *c)
{
	return f->always || (c->events & f->kinds) != 0;
}

/* The caller buffer records of one kind (or of every kind) go into. */
struct pt_route {
	struct proctap_buf *buf;
	__u64 first_ts; /* ts_ns of its first record */
};

struct proctap {
	struct proctap_config cfg; /* as resolved */
	struct proctap_bpf *skel;
	struct bpf_link **links; /* generic attach, in attach order */
	int nlinks;
	int nprogs; /* programs in the object (links' capacity) */
	__u32 ncpus;
	/* Caps of every kind's variable fields, resolved (knobs applied). */
	__u32 caps[PT_KIND_MAX][PT_DATA_FIELDS_MAX];

	/* profile family: pf_sample on each online CPU's cpu-clock */
	struct bpf_link **perf_links;
	int nperf;
	/* profile family: the executable-mappings side band (mappings.c) */
	struct pt_side *side;
	struct pt_marks *marks; /* the caller's capture marks (marks.c) */
	/* synth family: consumers of the peer transports */
	struct ring_buffer *rb;
	struct perf_buffer *pb;

	/* transport: data pages and control blocks */
	struct pt_cpu_ctl *ctl; /* mmap of pt_ctl, one element per CPU */
	size_t ctl_map_len;
	const __u8 *pages; /* mmap of pt_data, read only */
	size_t pages_map_len;
	size_t elem_size; /* ring + slack, bytes per CPU */
	__u64 ring_mask;
	struct proctap_cons *cons;  /* per CPU */
	__u64 *cons_published;	    /* per CPU: last cons stored to pt_ctl */
	__u64 released_unpublished; /* bytes released since the last publish */
	/* transport: the metadata ring, consumed here directly (not through
	 * libbpf's ring_buffer) so the consumer position is published once per
	 * batch of records instead of once per record */
	int meta_fd;
	/* filter: mmap of pt_maybe (tgids that may be traced), or NULL */
	__u64 *maybe;
	size_t maybe_len;
	__u32 maybe_words;
	/* cgroup socket programs: the cgroup2 root they attach to, or -1 */
	int cgroup2_fd;
	__u64 meta_mask;	/* ring bytes - 1 */
	__u64 *meta_cons;	/* consumer page (read-write) */
	const __u64 *meta_prod; /* producer page */
	const __u8 *meta_data;	/* data pages, mapped twice back to back */
	size_t meta_prod_len;
	struct pt_wake *wake; /* mmap of pt_wake (one page) */
	size_t page;	      /* system page size */

	/* poll loop */
	bool busy_poll;
	_Atomic bool stop_requested;
	int epfd;
	int stopfd;
	__u64 flush_ns;
	int idle_timeout_ms;
	proctap_swap_fn swap;
	void *swap_ctx;
	struct pt_route routes[PT_KIND_MAX]; /* [0] unless per_kind_batches */
	int nroutes;			     /* routes in use: 1, or nkinds */
	__u32 kinds[PT_KIND_MAX];	     /* the enabled kinds, the only ones */
	int nkinds;			     /* that can lose records */
	__u64 last_handover_ts;
	bool refused; /* swap returned NULL */

	/* loader counters; written by the poll thread, read by any */
	_Atomic __u64 delivered[PT_KIND_MAX];
	_Atomic __u64 invalid;
	_Atomic __u64 oversize;
	_Atomic __u64 abandoned;
	/* records the loader made (mapping, capture) and could not deliver:
	 * counted with the kind's meta_lost, as the kernel's are */
	_Atomic __u64 loader_lost[PT_KIND_MAX];
	_Atomic __u64 ring_stalls;
	_Atomic __u64 handovers;
	_Atomic __u64 wakeups;
	_Atomic __u64 sleeps;
	_Atomic __u64 nested;
	__u64 loss_reported[PT_KIND_MAX]; /* meta_lost already told as PT_KIND_LOST */
};

/* util.c */
/* The BTF kind of argument `arg` (0 is the tracepoint's own ctx) of the
 * kernel's BTF tracepoint `tp` (btf_trace_<tp>), through typedefs and
 * qualifiers; -1 when the kernel has no such tracepoint or argument. */
int pt_tracepoint_arg_kind(const char *tp, int arg);
/* Does the kernel's BTF have struct `type` with a member `member`? */
bool pt_btf_has_member(const char *type, const char *member);
int pt_fail(struct proctap_error *err, int code, int errnum, const char *field, const char *program,
	    const char *fmt, ...) __attribute__((format(printf, 6, 7)));
int pt_kernel_error(struct proctap_error *err, int code, int errnum, const char *program,
		    const char *what);
__u64 pt_ts(clockid_t clk);
__s64 pt_realtime_offset(void);
void *pt_mmap(int fd, size_t len, bool writable, off_t off);
static inline bool pt_pow2(__u64 v)
{
	return v && !(v & (v - 1));
}
static inline __u64 pt_round_up(__u64 v, __u64 to)
{
	return (v + to - 1) / to * to;
}
/* Counts one more: the poll thread is the only writer, so a plain load and
 * store will do (a locked add would also wait for the stores of the record
 * just copied to drain, per record); proctap_stats reads from any thread. */
static inline void pt_bump(_Atomic __u64 *counter)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* config.c */
void pt_config_resolve(const struct proctap_config *in, struct proctap_config *out);
__u32 pt_knob_value(const struct proctap_config *c, __u32 knob);
/* Data bytes of the largest record of an enabled kind (sum of its caps). */
__u64 pt_data_max(const struct proctap_config *c);
/* Slack after each CPU's ring: room for the largest record. */
__u64 pt_slack(const struct proctap_config *c);

/* programs.c */
int pt_programs_select(struct proctap *pt, struct proctap_error *err);
int pt_programs_load(struct proctap *pt, struct proctap_error *err);
int pt_programs_attach(struct proctap *pt, struct proctap_error *err);
void pt_programs_detach(struct proctap *pt);
int pt_attach(struct bpf_program *prog, struct bpf_link **slot, struct proctap_error *err);
void pt_set_autoload(struct proctap *pt, const char *prog, bool on);

/* transport.c */
int pt_transport_configure(struct proctap *pt, struct proctap_error *err);
int pt_transport_open(struct proctap *pt, struct proctap_error *err);
void pt_transport_close(struct proctap *pt);
int pt_meta_consume(struct proctap *pt, int budget);
bool pt_meta_pending(struct proctap *pt);
/* Appends a record to the buffer of the route of kind `route`. */
void pt_append(struct proctap *pt, __u32 route, const struct pt_hdr *h, size_t meta_size,
	       const __u8 *data);
/* Record checks against the registry: shape only (size: fixed part and
 * data), or shape, origin and this instance's caps (the fixed part's size). */
bool pt_record_shape(const struct pt_hdr *h, size_t size);
const struct pt_kind_info *pt_record_valid(struct proctap *pt, const struct pt_hdr *h,
					   size_t meta_bytes);

/* poll.c */
void pt_handover(struct proctap *pt, struct pt_route *r, int last);
int pt_poll_open(struct proctap *pt, struct proctap_error *err);
void pt_poll_close(struct proctap *pt);
int pt_poll_add(struct proctap *pt, int fd, struct proctap_error *err);

/* mappings.c: the profiler's side band of executable mappings */
int pt_mappings_start(struct proctap *pt, struct proctap_error *err);
int pt_mappings_drain(struct proctap *pt);
void pt_mappings_flush(struct proctap *pt, __u64 ts);
void pt_mappings_seal(struct proctap *pt);
void pt_side_queue(struct proctap *pt, const struct pt_hdr *h, size_t meta_size, const void *data,
		   size_t len);
/* Grows an array of elem-sized items to hold need (doubling); NULL when out of memory. */
void *pt_grow(void *p, size_t *cap, size_t need, size_t elem);
int pt_marks_open(struct proctap *pt);
void pt_marks_close(struct proctap *pt);
void pt_marks_take(struct proctap *pt);
void pt_marks_seal(struct proctap *pt);
__u64 pt_mappings_lost(const struct proctap *pt);
void pt_mappings_close(struct proctap *pt);

/* stats.c */
/* proctap_stats without what needs a system call per program (missed_runs
 * stays 0): for the loader's own checks. */
void pt_stats_read(struct proctap *pt, struct proctap_stats *out);
void pt_report_losses(struct proctap *pt, const __u64 *lost);
void pt_meta_lost(struct proctap *pt, __u64 *lost);

/* filter.c: does the comm prefix need per-process decisions? */
bool pt_filter_tracks_names(const struct proctap_config *c);

/* procfs.c */
ssize_t pt_read_text(const char *path, char *buf, size_t size);
int pt_online_cpus(bool *online, int n);
int pt_proc_alive(__u32 pid, unsigned long long *start, __u32 *tgid);
int pt_proc_enter(int fd, __u32 pid, const void *value);
int pt_tracefs_ready(struct proctap_error *err);
int pt_cgroup2_root(int *fd, struct proctap_error *err);

#endif /* PT_LOADER_INTERNAL_H */
