/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proctap.h - the contract between the kernel programs, the C loader and Rust.
 *
 * The records of each event kind are declared in c/events, one TOML file per kind; the build
 * generates their structs, flags, counters and knobs into pt_kinds.h, which
 * this header includes. What is here is the part every kind shares: the
 * record header, the transport's shared memory, and the C API. Every struct
 * has fixed-width fields, explicit padding and a size assert.
 *
 * Part 1 (always visible) is shared with the BPF programs.
 * Part 2 (userspace only) is the C API of libproctap.a.
 */
#ifndef PROCTAP_H
#define PROCTAP_H

#ifndef __bpf__
#include <linux/types.h>
#include <stddef.h>
#endif

/* ---------------------------------------------------------------------------
 * Part 1: records and shared memory layout
 * ------------------------------------------------------------------------- */

#define PT_PAGE_SIZE 4096
#define PT_COMM_LEN 16
/* Pid filter capacity. */
#define PT_MAX_PIDS 1024
/* Processes the command-name filter can follow at once (see filter.bpf.h). */
#define PT_NAMED_MAX 16384
/* Out-of-order data spans the consumer can hold per CPU before it must stall. */
#define PT_PENDING_MAX 32
/* Most synthetic events per trigger. */
#define PT_SYNTH_BATCH_MAX 1024
/* Profiler: sampling frequency default and bound, target and watch-list capacity. */
#define PT_PROFILE_HZ_DEFAULT 19
#define PT_PROFILE_HZ_MAX 999
#define PT_TARGETS_MAX 8192
#define PT_WATCH_MAX 256
/* File descriptors whose writes can be captured at once. */
#define PT_WRITE_FDS_MAX 8
/* cgroups the cgroup filter can hold (a process in any of them, or below,
 * is traced). */
#define PT_MAX_CGROUPS 8

/* Which transport the synthetic source writes to; proctap_config.synth_transport. */
enum proctap_synth_transport {
	PROCTAP_SYNTH_HYBRID = 0,  /* proctap's data pages + metadata ring */
	PROCTAP_SYNTH_RINGBUF = 1, /* one BPF ringbuf, payload inline (a peer design) */
	PROCTAP_SYNTH_PERFBUF = 2, /* a BPF perf buffer, payload inline (a peer design) */
};

/* pt_hdr.flags: bit 0 is common to every kind; the registry numbers the
 * kind's own flags from bit 1 (PT_<KIND>_F_*). */
enum pt_rec_flags {
	/* The data pages had no room: the variable fields are absent. */
	PT_F_DATA_LOST = 1 << 0,
};

/*
 * Common header of every record, both in the metadata ring and in the caller
 * buffers. In the ring, data_pos/data_span locate this record's bytes in its
 * CPU's data pages. When the loader copies the record into a caller buffer it
 * appends the data_len bytes right after the fixed part and sets rec_size;
 * data_pos and data_span are then meaningless and set to zero. The variable
 * fields follow one another in the data, each as long as its <name>_len.
 */
/* An IPv4 or IPv6 address and port in a record (the registry's sockaddr
 * fields): an IPv4 address (or an IPv4-mapped IPv6 one) has family 4 and
 * its 4 bytes first; family 0 means none. */
struct pt_sockaddr {
	__u8 addr[16]; /* network order */
	__u16 port;    /* host order */
	__u8 family;   /* 4, 6, or 0 */
	__u8 pad;
};
#define PT_SOCKADDR_SIZE 20
_Static_assert(sizeof(struct pt_sockaddr) == PT_SOCKADDR_SIZE, "sockaddr size");

struct pt_hdr {
	__u16 kind;  /* enum pt_rec_kind */
	__u16 flags; /* PT_F_DATA_LOST | PT_<KIND>_F_* */
	__u16 cpu;   /* CPU that produced the record (owner of the data) */
	__u16 hdr_pad;
	__u32 pid; /* tgid */
	__u32 tid;
	__u64 ts_ns;	     /* CLOCK_MONOTONIC */
	__u64 proc_start_ns; /* CLOCK_BOOTTIME start of the process (group leader) */
	__u64 data_pos;	     /* position in the CPU's data ring (monotonic bytes) */
	__u32 data_span;     /* bytes reserved in the data ring (released by the consumer) */
	__u32 data_len;	     /* bytes of variable data (<= data_span) */
	__u32 rec_size;	     /* caller buffer only: whole record, 8-byte aligned */
	__u32 rec_pad;
};
#define PT_HDR_SIZE 56

/* The records of every kind (generated from their declarations in c/events). */
#include "pt_kinds.h"

/* Key of the command-name watch list (an LPM trie over the comm bytes). */
struct pt_watch_key {
	__u32 prefixlen; /* bits */
	char comm[PT_COMM_LEN];
};

/* Value of the profiler's target filter, keyed by tgid. */
struct pt_target {
	__u64 start_ns; /* the process' start (group leader); 0: unknown yet */
	__u32 reason;	/* 0: added by userspace, else PT_TRIGGER_REASON_* */
	__u32 target_pad;
};

/* Value of the command-name filter's table, keyed by tgid. */
struct pt_named {
	__u64 start_ns; /* the process' start (group leader); 0: entered from /proc */
};

/*
 * Per-CPU control block of the data ring, one array element per CPU in a
 * BPF_F_MMAPABLE map. prod is advanced by the kernel (atomically: programs
 * nest on one CPU), cons by the consumer after it copied the bytes out.
 * Counters are kernel-written, indexed by kind (or by PT_CTR_*), and read
 * through the same mapping. prod, cons and the counters sit on separate
 * cache lines.
 */
struct pt_cpu_ctl {
	__u64 prod;
	__u64 prod_pad[7];
	__u64 cons;
	__u64 cons_pad[7];
	__u64 emitted[PT_KIND_MAX];	 /* records submitted to the metadata ring */
	__u64 meta_lost[PT_KIND_MAX];	 /* metadata ring full: event lost entirely */
	__u64 data_lost[PT_KIND_MAX];	 /* data pages full: record sent, data absent */
	__u64 data_bytes[PT_KIND_MAX];	 /* bytes written into the data pages */
	__u64 counters[PT_COUNTERS_MAX]; /* the kinds' own counters (PT_CTR_*) */
};
#define PT_CPU_CTL_SIZE 2688

/*
 * Wake-up protocol between the programs and the one consumer (a
 * BPF_F_MMAPABLE array of one element). Records are submitted without a
 * wake-up; a consumer about to sleep sets sleeping (atomically), then looks
 * at the ring once more. A program that finds sleeping set after its commit
 * takes it (atomically) and submits a zero-kind doorbell record with a
 * forced wake-up. Both sides order their store before their load with a
 * full barrier, so one of them always sees the other: an idle consumer is
 * woken by the first record, a busy one is not interrupted. A record that
 * takes the metadata ring or its CPU's data pages past half full rings the
 * bell too, so a consumer pausing between polls is called back in time.
 */
struct pt_wake {
	__u64 sleeping;	     /* consumer: 1 while it may sleep */
	__u64 doorbells;     /* kernel: wake-ups sent */
	__u64 doorbell_lost; /* kernel: the doorbell found the ring full */
	__u64 wake_pad[5];
};
#define PT_WAKE_SIZE 64

#ifndef __bpf__
_Static_assert(sizeof(struct pt_wake) == PT_WAKE_SIZE, "pt_wake size");
_Static_assert(sizeof(struct pt_hdr) == PT_HDR_SIZE, "pt_hdr size");
_Static_assert(sizeof(struct pt_cpu_ctl) == PT_CPU_CTL_SIZE, "pt_cpu_ctl size");
_Static_assert(offsetof(struct pt_cpu_ctl, cons) == 64, "cons on its own line");
#endif

/* ---------------------------------------------------------------------------
 * Part 2: the C API (userspace only)
 * ------------------------------------------------------------------------- */
#ifndef __bpf__

#ifdef __cplusplus
extern "C" {
#endif

/* How the profiler takes user stacks; proctap_config.profile_unwind. */
enum proctap_unwind {
	/* The kernel walks frame pointers (raw return addresses, placed with
	 * the mapping records): cheap, but code built without frame pointers
	 * loses its callers. */
	PROCTAP_UNWIND_FP = 0,
	/* The kernel copies the user registers and the top of the user stack
	 * (knob stack_copy_max), unwound in userspace from .eh_frame. */
	PROCTAP_UNWIND_STACK_COPY = 1,
};

/* proctap_config.events: one bit per kind. */
#define PROCTAP_EVENT(kind) (1ull << (kind))

/* How exits tell a process exit from a thread exit; proctap_config.exit_probe. */
enum proctap_exit_probe {
	PROCTAP_EXIT_AUTO = 0,	     /* TRACEPOINT, else GROUP_DEAD, else LIVE */
	PROCTAP_EXIT_GROUP_DEAD = 1, /* sched_process_exit's group_dead argument */
	PROCTAP_EXIT_LIVE = 2,	     /* signal->live == 0, deduplicated (older kernels) */
	PROCTAP_EXIT_TRACEPOINT = 3, /* group_dead of the classic tracepoint's record */
};

struct proctap_config {
	/* PROCTAP_EVENT(PT_KIND_*) of each kind to trace; 0 means exec and exit.
	 * Samples and triggers come together (the profiler), with its settings
	 * below and proctap_target_add; the synthetic source with synth_*. */
	__u64 events;
	/* Caps of variable fields (PT_KNOB_*), used where knobs_set has the
	 * knob's bit; the others take their default. */
	__u32 knobs[PT_KNOBS_MAX];
	__u32 knobs_set;
	__u32 pages_per_cpu;	/* data pages per CPU, power of two; 0: at least 64
	                          (512 with net_data), enough for two of the
	                          largest records */
	__u32 ringbuf_bytes;	/* metadata ring size, power of two >= 4096; 0 means 1 MiB */
	__u32 flush_us;		/* upper bound on how long a record waits in a
	                          caller buffer before it is handed over; 0 means 10000 */
	__u32 thread_exits;	/* nonzero: report every thread exit, not just processes */
	__u32 npids;		/* number of valid entries in pids; 0: all processes */
	__u32 comm_prefix_len;	/* 0: no command-name filter */
	__u32 exit_probe;	/* proctap_exit_probe; 0 picks from kernel BTF */
	__u32 busy_poll;	/* nonzero: spin on the rings instead of sleeping
	                          (lowest latency, one CPU kept busy) */
	__u32 per_kind_batches; /* nonzero: each caller buffer holds records of one
	                           kind (and the loss reports of that kind) */
	char comm_prefix[PT_COMM_LEN];
	/* Processes (tgids, existing when the instance opens) to trace. */
	__u32 pids[PT_MAX_PIDS];
	/* Synthetic source, with PROCTAP_EVENT(PT_KIND_SYNTH): every getppid()
	 * of process synth_tgid emits synth_batch events of
	 * knobs[PT_KNOB_SYNTH_PAYLOAD] bytes. */
	__u32 synth_tgid;
	__u32 synth_batch;	/* 1..PT_SYNTH_BATCH_MAX; 0 means 1 */
	__u32 synth_transport;	/* proctap_synth_transport */
	__u32 synth_ring_bytes; /* ringbuf: its size; perfbuf: bytes per CPU (power
	                           of two pages); 0: 4 MiB / 2 MiB */
	/* Profiler, with PROCTAP_EVENT(PT_KIND_SAMPLE). */
	__u32 profile_hz;	/* samples per second per CPU; 0 means 19, at most 999 */
	__u32 profile_all;	/* nonzero: sample every process, not just targets */
	__u32 profile_children; /* nonzero: a profiled process' children are profiled */
	__u32 profile_unwind;	/* proctap_unwind: how user stacks are taken */
	__u32 offcpu_min_us;	/* off-CPU samples: the shortest sleep reported;
	                          0 means 1000 */
	/* Writes, with PROCTAP_EVENT(PT_KIND_WRITE): the fds whose writes are
	 * captured (0 <= fd, each once); write_nfds 0 means 1 and 2. */
	__u32 write_nfds;
	__s32 write_fds[PT_WRITE_FDS_MAX];
	/* cgroup v2 ids (a cgroup2 directory's inode number, as events'
	 * cgroup_id give them): only processes in one of these cgroups or
	 * below are traced. ncgroups 0: no cgroup filter. */
	__u32 ncgroups;
	__u64 cgroup_ids[PT_MAX_CGROUPS];
};
#define PROCTAP_CONFIG_SIZE 4368
_Static_assert(sizeof(struct proctap_config) == PROCTAP_CONFIG_SIZE, "config size");

/* proctap_buf.kind of a buffer that may hold records of any kind. */
#define PROCTAP_BUF_MIXED 0xffffffffu

/*
 * A caller-owned buffer. The loader appends records (each starting with a
 * struct pt_hdr whose rec_size gives its 8-byte aligned length) at data + len.
 * data must be 8-byte aligned. owner is never touched by the loader.
 */
struct proctap_buf {
	__u8 *data;
	__u32 cap;
	__u32 len;
	__u32 records;
	__u32 kind; /* per_kind_batches: the kind of its records; else PROCTAP_BUF_MIXED */
	__s64 realtime_offset_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC at hand-over */
	void *owner;
};
#define PROCTAP_BUF_SIZE 40
_Static_assert(sizeof(struct proctap_buf) == PROCTAP_BUF_SIZE, "buf size");

/*
 * Buffer hand-over. Called with filled = NULL for an empty buffer to fill
 * (when a record needs one), and with each buffer the loader filled
 * (returning the next empty one to fill, or NULL to make proctap_run()
 * return). When proctap_run() returns it hands every buffer it holds back
 * once more with last = 1 (possibly holding records, possibly empty); the
 * return value of those calls is ignored and should be NULL.
 */
typedef struct proctap_buf *(*proctap_swap_fn)(void *ctx, struct proctap_buf *filled, int last);

/* Totals over all CPUs plus loader-side counters. */
struct proctap_stats {
	__u64 emitted[PT_KIND_MAX];	 /* kernel: records submitted */
	__u64 meta_lost[PT_KIND_MAX];	 /* kernel: metadata ring full, event lost;
					  * loader-made kinds: side band full,
					  * or no batch took them (at stop) */
	__u64 data_lost[PT_KIND_MAX];	 /* kernel: data pages full, record without data */
	__u64 data_bytes[PT_KIND_MAX];	 /* kernel: bytes written into the data pages */
	__u64 delivered[PT_KIND_MAX];	 /* loader: records appended to caller buffers */
	__u64 counters[PT_COUNTERS_MAX]; /* kernel: the kinds' own counters (PT_CTR_*) */
	__u64 invalid;			 /* loader: records that failed validation (skipped) */
	__u64 oversize;			 /* loader: records larger than a caller buffer */
	__u64 abandoned;		 /* loader: records dropped because swap refused a buffer */
	__u64 ring_stalls;		 /* loader: spans the consumer could not release (a bug) */
	__u64 handovers;		 /* loader: buffers handed to the caller */
	__u64 wakeups;			 /* loader: poll rounds */
	__u64 sleeps;			 /* loader: times the poll thread went to sleep */
	__u64 doorbells;		 /* kernel: wake-ups sent to a sleeping consumer */
	__u64 doorbell_lost;		 /* kernel: a wake-up found the ring full (the
	                        consumer's idle timeout picks those up) */
	__u64 perf_events;		 /* loader: sampling events opened (online CPUs) */
	__u64 nested;			 /* loader: data spans that arrived ahead of an earlier
	                        span of their CPU (a program ran nested in another
	                        one); released in order */
	__u64 missed_runs;		 /* kernel: runs of proctap's programs the kernel
	                        skipped, their events lost (the programs'
	                        recursion_misses: one nested in another, or, where
	                        tracepoints are preemptible, a task preempted
	                        inside a BTF-tracepoint or fentry program) */
};
#define PROCTAP_STATS_SIZE 3168
_Static_assert(sizeof(struct proctap_stats) == PROCTAP_STATS_SIZE, "stats size");

/* Error classes; proctap_error.code. */
enum proctap_errc {
	PROCTAP_OK = 0,
	PROCTAP_E_CONFIG = 1,	   /* invalid config; field names the field */
	PROCTAP_E_PRIVILEGE = 2,   /* needs root or CAP_BPF + CAP_PERFMON */
	PROCTAP_E_NO_BTF = 3,	   /* kernel has no BTF at /sys/kernel/btf/vmlinux */
	PROCTAP_E_LOAD = 4,	   /* the verifier or the kernel refused a program/map */
	PROCTAP_E_ATTACH = 5,	   /* attaching a program failed; program names it */
	PROCTAP_E_SYSTEM = 6,	   /* another system call failed (mmap, epoll, ...) */
	PROCTAP_E_UNSUPPORTED = 7, /* the kernel lacks what an enabled kind needs;
	                              field names the feature */
};

struct proctap_error {
	__s32 code;	  /* enum proctap_errc */
	__s32 errnum;	  /* errno, positive, when the kernel said no */
	char field[32];	  /* PROCTAP_E_CONFIG: the config field; UNSUPPORTED: the feature */
	char program[32]; /* PROCTAP_E_ATTACH/LOAD: the BPF program */
	char message[192];
};
#define PROCTAP_ERROR_SIZE 264
_Static_assert(sizeof(struct proctap_error) == PROCTAP_ERROR_SIZE, "error size");

/*
 * Consumer-side bookkeeping of one CPU's data ring (internal; exported so it
 * can be tested). The kernel may reuse bytes below cons only, so cons moves
 * over contiguous released spans; a span released ahead of an earlier one
 * (programs nesting on a CPU) waits in pending.
 */
struct proctap_span {
	__u64 pos;
	__u64 end;
};

struct proctap_cons {
	__u64 cons;
	__u32 npending;
	__u32 cons_pad;
	struct proctap_span pending[PT_PENDING_MAX];
};
#define PROCTAP_CONS_SIZE 528
_Static_assert(sizeof(struct proctap_cons) == PROCTAP_CONS_SIZE, "cons size");

/* Releases [pos, pos + len). Returns 1 when cons advanced, 0 when the span
 * waits for earlier ones, -1 when pending is full (the span stays unreleased). */
int proctap_cons_release(struct proctap_cons *c, __u64 pos, __u32 len);

struct proctap;

/* Validates cfg, opens, sizes, loads and attaches. NULL on failure, err filled. */
struct proctap *proctap_open(const struct proctap_config *cfg, struct proctap_error *err);

/*
 * Runs the poll loop on the calling thread until proctap_stop() or until swap
 * returns NULL. Returns 0, or a negative errno. Records are appended to the
 * buffers swap provides; a buffer is handed back when it is full or when a
 * poll round ends. Before returning it detaches the programs and drains the
 * ring: every record the kernel emitted is then delivered or counted
 * (abandoned, when swap had no buffer left). The instance stays readable for
 * stats until proctap_close(); it does not trace again.
 */
int proctap_run(struct proctap *pt, proctap_swap_fn swap, void *ctx);

/* Makes proctap_run() return after a final drain. Async-signal-safe, any thread. */
void proctap_stop(struct proctap *pt);

/* Snapshot of the counters. Any thread. */
void proctap_stats(struct proctap *pt, struct proctap_stats *out);

/* BPF program ids of this instance (for leak checks); returns how many. */
int proctap_prog_ids(struct proctap *pt, __u32 *ids, int max);

/* Detaches and frees everything. Not concurrently with proctap_run(). */
void proctap_close(struct proctap *pt);

/*
 * The profiler's targets, changed at run time (any thread). Adding a pid
 * that does not exist, or exits while it is added, fails with -ESRCH and
 * leaves nothing behind; a full filter fails with -E2BIG. Removing a pid
 * that is not a target returns -ENOENT. Targets leave by themselves when
 * their process exits. All return 0 or a negative errno, and -EINVAL when
 * the instance does not profile.
 */
int proctap_target_add(struct proctap *pt, __u32 pid);
int proctap_target_remove(struct proctap *pt, __u32 pid);
/* Up to max target pids into pids; returns how many there are in all. */
int proctap_targets(struct proctap *pt, __u32 *pids, int max);
/* Command-name prefixes (1..15 bytes, no NUL): a process whose exec matches
 * one becomes a target in the kernel, with a trigger event. Processes
 * already running are not affected: the caller scans for those. */
int proctap_watch_add(struct proctap *pt, const char *prefix, __u32 len);
int proctap_watch_remove(struct proctap *pt, const char *prefix, __u32 len);

/*
 * Stops copying the bytes of a connection (its conn_id) in net_data: a
 * consumer that found nothing to parse on it gives up, and the kernel then
 * only counts its bytes (conn_close still has them). Any thread. 0, or a
 * negative errno: -EINVAL when net_data is off. (Connections take their
 * give-up at their next message; of 4096 pending, the oldest make room.)
 */
int proctap_net_give_up(struct proctap *pt, __u64 conn_id);

/*
 * Puts a capture record into the stream: a pressure watch of the caller's
 * says a capture of a cgroup starts or stops. rec is a struct pt_capture of
 * size bytes with the cgroup path (cgroup_len = hdr.data_len bytes) right
 * after it; the loader stamps the time and merges it with the samples in
 * time order at the next poll round. Any thread. 0, or a negative errno:
 * -EINVAL when the instance does not profile, -EBADMSG for a record that is
 * not a whole, valid capture, -ESHUTDOWN once proctap_run has returned (the
 * stream has ended). A mark stamped while a round reads the ring may come
 * after samples of that round stamped later.
 */
int proctap_capture_mark(struct proctap *pt, const void *rec, size_t size);

/* CLOCK_MONOTONIC now, in nanoseconds: the clock of every ts_ns. */
__u64 proctap_monotonic_ns(void);

/* Validates a config without touching the kernel. 0 or PROCTAP_E_CONFIG. */
int proctap_config_check(const struct proctap_config *cfg, struct proctap_error *err);

/* Sets knob (PT_KNOB_*) to value in cfg. 0, or -EINVAL for an unknown knob. */
int proctap_config_knob(struct proctap_config *cfg, __u32 knob, __u32 value);

/* Bytes of the largest record (8-byte aligned) the config lets the loader
 * append: a caller buffer must hold at least one. 0 for an invalid config. */
__u64 proctap_max_record(const struct proctap_config *cfg);

/* The registry's names: of a kind (NULL if unknown), of counter index (and
 * its kind in *kind, when kind is not NULL; NULL past the last counter), and
 * the index of a knob (-1 if unknown). */
const char *proctap_kind_name(__u32 kind);
const char *proctap_counter_name(__u32 index, __u32 *kind);
int proctap_knob(const char *name);

/*
 * Formats one record (as the loader appends it to a caller buffer) as the
 * JSON object of its kind, NUL-terminated, into out. Returns the length the
 * whole object has (as snprintf does: out holds it when it is < cap), or -1
 * when the record is not valid or its kind unknown.
 */
long proctap_format_json(const void *rec, size_t len, __s64 realtime_offset_ns, char *out,
			 size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* !__bpf__ */
#endif /* PROCTAP_H */
