// SPDX-License-Identifier: Apache-2.0
/*
 * mappings.c - the profiler's side band: the kernel's own perf records of
 * executable mmaps, of execs (the comm change an exec makes), of forks and of exits,
 * taken from a dummy software event on every online CPU and put in the
 * stream as mapping records.
 *
 * The stack-copy unwinder needs the mappings of the process a sample came
 * from. /proc/PID/maps has them only while the process lives, and a
 * short-lived process is often gone before its first sample is read. perf
 * record solves this the same way: it keeps the kernel's MMAP2, COMM, FORK
 * and EXIT records beside the samples. The exits let a consumer drop what
 * it holds of a process without being told by anyone else. At the start,
 * the executable mappings of every running process are read from /proc
 * into mmap records, as perf record synthesizes them. The caller's capture
 * marks (marks.c) join the same merge, so a capture's start and stop come
 * in time order with the samples they bracket.
 *
 * Ordering: each poll round drains these before it takes records off the
 * metadata ring and sorts them by time; then each record taken off the ring
 * is preceded by the mapping records stamped before it, and the rest follow
 * at the end of the round. So the stream is in time order: a sample taken
 * just before an exec is unwound with the mappings before it. A mapping made
 * before a sample was written before it, so its record is in this round or
 * an earlier one, except when the mapping and the sample both happen between
 * the side band's drain and the ring read that follows (microseconds).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/sysmacros.h>
#include <linux/perf_event.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "internal.h"

/* Pages of each CPU's side-band ring (plus its header page): 256 KiB holds
 * about 2000 mmap records, many poll rounds of an exec storm. */
#define SIDE_PAGES 64

/* perf's sample_id trailer (sample_id_all with TID | TIME). */
struct side_id {
	__u32 pid, tid;
	__u64 time;
};

struct side_mmap2 {
	struct perf_event_header h;
	__u32 pid, tid;
	__u64 addr, len, pgoff;
	__u32 maj, min;
	__u64 ino, ino_generation;
	__u32 prot, flags;
	char filename[];
};

struct side_task { /* PERF_RECORD_FORK and _EXIT */
	struct perf_event_header h;
	__u32 pid, ppid, tid, ptid;
	__u64 time;
};

struct side_comm {
	struct perf_event_header h;
	__u32 pid, tid;
	char comm[];
};

struct side_lost {
	struct perf_event_header h;
	__u64 id, lost;
};

/* One record of a round: the fixed part and where its data (a path or a
 * cgroup) is. */
struct side_item {
	union {
		struct pt_hdr hdr;
		struct pt_mapping mapping;
		struct pt_capture capture;
	} rec;
	__u32 meta_size;
	size_t path_off;
	size_t seq; /* order read: a CPU's ring is in time order */
};

struct pt_side {
	int map_fd;
	struct perf_buffer *pb;
	struct side_item *items;
	size_t n, cap;
	size_t next; /* the first item not appended yet */
	size_t seq;  /* items queued so far: their order among equal times */
	char *paths;
	size_t paths_len, paths_cap;
	_Atomic __u64 lost; /* records the kernel could not write (ring full) */
};

void *pt_grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t c = *cap ? *cap : 64;
	void *q;

	while (c < need)
		c *= 2;
	if (c == *cap)
		return p;
	q = realloc(p, c * elem);
	if (q)
		*cap = c;
	return q;
}

/* Queues one record: meta_size bytes of fixed part, then len of data. */
static void side_push_record(struct pt_side *s, const struct pt_hdr *h, size_t meta_size,
			     const char *data, size_t len)
{
	struct side_item *items;
	char *paths;

	if (meta_size > sizeof(items->rec))
		return;
	items = pt_grow(s->items, &s->cap, s->n + 1, sizeof(*items));
	if (!items) {
		s->lost++; /* out of memory: counted like a full ring */
		return;
	}
	s->items = items;
	paths = pt_grow(s->paths, &s->paths_cap, s->paths_len + len, 1);
	if (!paths) {
		s->lost++;
		return;
	}
	s->paths = paths;
	memcpy(s->paths + s->paths_len, data, len);
	memcpy(&s->items[s->n].rec, h, meta_size);
	s->items[s->n].rec.hdr.data_len = len;
	s->items[s->n].meta_size = meta_size;
	s->items[s->n].path_off = s->paths_len;
	s->items[s->n].seq = s->seq++;
	s->paths_len += len;
	s->n++;
}

/* Queues a mapping record with its path (len bytes, no NUL). */
static void side_push(struct pt_side *s, struct pt_mapping *rec, const char *path, size_t len)
{
	rec->path_len = len;
	side_push_record(s, &rec->hdr, sizeof(*rec), path, len);
}

/* The header every mapping record starts with. */
static struct pt_mapping side_record(__u32 change, __u32 pid, __u32 tid, __u64 ts)
{
	struct pt_mapping rec = { 0 };

	rec.hdr.kind = PT_KIND_MAPPING;
	rec.hdr.ts_ns = ts;
	rec.hdr.pid = pid;
	rec.hdr.tid = tid;
	rec.change = change;
	return rec;
}

static const struct side_id *side_trailer(const struct perf_event_header *h, size_t fixed)
{
	if (h->size < fixed + sizeof(struct side_id))
		return NULL;
	return (const struct side_id *)((const char *)h + h->size - sizeof(struct side_id));
}

static void side_mmap(struct pt_side *s, const struct perf_event_header *h)
{
	const struct side_mmap2 *m = (const void *)h;
	const struct side_id *id = side_trailer(h, sizeof(*m));
	struct pt_mapping rec;
	size_t room;

	if (!id || (h->misc & PERF_RECORD_MISC_MMAP_BUILD_ID))
		return;
	room = h->size - sizeof(*m) - sizeof(*id);
	rec = side_record(PT_MAPPING_CHANGE_MMAP, m->pid, m->tid, id->time);
	rec.start = m->addr;
	rec.len = m->len;
	rec.pgoff = m->pgoff;
	rec.dev = makedev(m->maj, m->min);
	rec.inode = m->ino;
	side_push(s, &rec, m->filename, strnlen(m->filename, room < 4095 ? room : 4095));
}

/* A fork of a new process, or the exit of a process' first thread (the
 * kernel reports every thread's; the others change nothing here). */
static void side_task(struct pt_side *s, const struct perf_event_header *h)
{
	const struct side_task *t = (const void *)h;
	bool exit = h->type == PERF_RECORD_EXIT;
	struct pt_mapping rec;

	if (h->size < sizeof(*t))
		return;
	if (exit ? t->tid != t->pid : t->pid == t->ppid) /* a thread shares its mappings */
		return;
	rec = side_record(exit ? PT_MAPPING_CHANGE_EXIT : PT_MAPPING_CHANGE_FORK, t->pid, t->tid,
			  t->time);
	rec.parent_pid = exit ? 0 : t->ppid;
	side_push(s, &rec, "", 0);
}

static void side_exec(struct pt_side *s, const struct perf_event_header *h)
{
	const struct side_comm *c = (const void *)h;
	const struct side_id *id = side_trailer(h, sizeof(*c));
	struct pt_mapping rec;

	if (!id || !(h->misc & PERF_RECORD_MISC_COMM_EXEC))
		return;
	rec = side_record(PT_MAPPING_CHANGE_EXEC, c->pid, c->tid, id->time);
	side_push(s, &rec, "", 0);
}

static enum bpf_perf_event_ret side_on_record(void *ctx, int cpu, struct perf_event_header *h)
{
	struct pt_side *s = ctx;

	(void)cpu;
	switch (h->type) {
	case PERF_RECORD_MMAP2:
		side_mmap(s, h);
		break;
	case PERF_RECORD_FORK:
	case PERF_RECORD_EXIT:
		side_task(s, h);
		break;
	case PERF_RECORD_COMM:
		side_exec(s, h);
		break;
	case PERF_RECORD_LOST:
		if (h->size >= sizeof(struct side_lost))
			s->lost += ((const struct side_lost *)h)->lost;
		break;
	default:
		break;
	}
	return LIBBPF_PERF_EVENT_CONT;
}

/* The executable mappings of one running process, from /proc/PID/maps. */
static void side_scan_process(struct pt_side *s, __u32 pid, __u64 ts)
{
	char path[64], line[PATH_MAX + 128];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return; /* gone already, or not ours to read */
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, pgoff, inode;
		unsigned int maj, min;
		struct pt_mapping rec;
		char perms[5];
		size_t len;
		int at = 0;

		if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu %n", &start, &end, perms, &pgoff,
			   &maj, &min, &inode, &at) < 7 ||
		    !at || perms[2] != 'x' || end <= start)
			continue;
		len = strcspn(line + at, "\n");
		if (!len)
			continue; /* anonymous: nothing names it */
		rec = side_record(PT_MAPPING_CHANGE_MMAP, pid, pid, ts);
		rec.start = start;
		rec.len = end - start;
		rec.pgoff = pgoff;
		rec.dev = makedev(maj, min);
		rec.inode = inode;
		side_push(s, &rec, line + at, len);
	}
	fclose(f);
}

/*
 * Records of the executable mappings of every process running now, as perf
 * record makes at its start: the side band tells only of changes, and a
 * process started before the tracer may exit before a consumer reads its
 * /proc. Stamped ts, before any sample, so they come first.
 */
static void side_scan(struct pt_side *s, __u64 ts)
{
	DIR *proc = opendir("/proc");
	struct dirent *d;

	if (!proc)
		return;
	while ((d = readdir(proc))) {
		char *end;
		unsigned long pid = strtoul(d->d_name, &end, 10);

		if (d->d_name[0] >= '1' && d->d_name[0] <= '9' && !*end && pid <= UINT32_MAX)
			side_scan_process(s, (__u32)pid, ts);
	}
	closedir(proc);
}

static int side_by_time(const void *a, const void *b)
{
	const struct side_item *x = a, *y = b;

	if (x->rec.hdr.ts_ns != y->rec.hdr.ts_ns)
		return x->rec.hdr.ts_ns < y->rec.hdr.ts_ns ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int pt_mappings_start(struct proctap *pt, struct proctap_error *err)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_DUMMY, /* counts nothing: side-band records only */
		.size = sizeof(attr),
		.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME,
		.sample_id_all = 1,
		.mmap = 1,  /* executable mappings only (no mmap_data); the kernel
			    * makes none unless some event asks for .mmap */
		.mmap2 = 1, /* ... in the MMAP2 form, with device and inode */
		.comm = 1,
		.comm_exec = 1,
		.task = 1,
		.use_clockid = 1,
		.clockid = CLOCK_MONOTONIC, /* the clock of every record's ts_ns */
		.watermark = 1,
		.wakeup_watermark = SIDE_PAGES * PT_PAGE_SIZE / 2, /* drained by poll rounds */
	};
	struct pt_side *s = calloc(1, sizeof(*s));

	if (!s)
		return pt_fail(err, PROCTAP_E_SYSTEM, ENOMEM, NULL, NULL, "out of memory");
	pt->side = s;
	if (pt_marks_open(pt))
		return pt_fail(err, PROCTAP_E_SYSTEM, ENOMEM, NULL, NULL, "out of memory");
	s->map_fd = bpf_map_create(BPF_MAP_TYPE_PERF_EVENT_ARRAY, "pt_side", sizeof(int),
				   sizeof(int), pt->ncpus, NULL);
	if (s->map_fd < 0)
		return pt_kernel_error(err, PROCTAP_E_SYSTEM, errno, NULL,
				       "creating the mappings side band's perf event array");
	s->pb = perf_buffer__new_raw(s->map_fd, SIDE_PAGES, &attr, side_on_record, s, NULL);
	if (!s->pb)
		return pt_kernel_error(err, PROCTAP_E_ATTACH, errno, NULL,
				       "opening the perf side band of executable mappings");
	/* After the side band opened: a mapping made during the scan is in
	 * one or the other, or both (which does no harm). */
	side_scan(s, pt_ts(CLOCK_MONOTONIC));
	return PROCTAP_OK;
}

/* Queues a record the caller made (pt_marks_take) among this round's. */
void pt_side_queue(struct proctap *pt, const struct pt_hdr *h, size_t meta_size, const void *data,
		   size_t len)
{
	if (pt->side)
		side_push_record(pt->side, h, meta_size, data, len);
}

/* The stream ends (after the last drain): marks queued since go in last,
 * and later ones are refused. */
void pt_mappings_seal(struct proctap *pt)
{
	struct pt_side *s = pt->side;

	if (!s)
		return;
	pt_marks_seal(pt);
	s->n = s->next = 0;
	s->paths_len = 0;
	pt_marks_take(pt);
	pt_mappings_flush(pt, UINT64_MAX);
}

/* Appends the round's mapping records stamped at or before ts, in time
 * order (ts = UINT64_MAX: all that are left). */
void pt_mappings_flush(struct proctap *pt, __u64 ts)
{
	struct pt_side *s = pt->side;

	for (; s && s->next < s->n && s->items[s->next].rec.hdr.ts_ns <= ts; s->next++) {
		const struct side_item *it = &s->items[s->next];

		pt_append(pt, it->rec.hdr.kind, &it->rec.hdr, it->meta_size,
			  (const __u8 *)s->paths + it->path_off);
	}
}

/* Takes what the side band holds and sorts it by time, to be merged with
 * the ring's records (pt_mappings_flush). Returns the records taken, or
 * -errno. */
int pt_mappings_drain(struct proctap *pt)
{
	struct pt_side *s = pt->side;
	size_t kept;
	int e;

	if (!s || !s->pb)
		return 0;
	if (s->next == s->n) {
		s->n = s->next = 0;
		s->paths_len = 0;
	} else if (s->next) {
		/* A round that takes more than the ring's budget drains again:
		 * what the last pass left is stamped after the ring records
		 * taken so far, not after those still in the ring, so it is
		 * sorted with the new records rather than appended now (its
		 * paths stay where they are). */
		memmove(s->items, s->items + s->next, (s->n - s->next) * sizeof(*s->items));
		s->n -= s->next;
		s->next = 0;
	}
	kept = s->n;
	pt_marks_take(pt);
	e = perf_buffer__consume(s->pb);
	if (e < 0)
		return e;
	qsort(s->items, s->n, sizeof(*s->items), side_by_time);
	return s->n - kept > INT_MAX ? INT_MAX : (int)(s->n - kept);
}

/* Records the side band's ring could not hold (reported as lost mapping
 * records, and in proctap_stats' meta_lost). */
__u64 pt_mappings_lost(const struct proctap *pt)
{
	return pt->side ? atomic_load_explicit(&pt->side->lost, memory_order_relaxed) : 0;
}

void pt_mappings_close(struct proctap *pt)
{
	struct pt_side *s = pt->side;

	pt_marks_close(pt);
	if (!s)
		return;
	perf_buffer__free(s->pb);
	if (s->map_fd >= 0)
		close(s->map_fd);
	free(s->items);
	free(s->paths);
	free(s);
	pt->side = NULL;
}
