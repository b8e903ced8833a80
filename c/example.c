// SPDX-License-Identifier: Apache-2.0
/*
 * example.c - standalone JSON-lines dumper on libproctap.a.
 *
 *   ./example [--duration SECONDS] [--pid PID]... [--comm PREFIX] [--cgroup DIR]...
 *             [--argv-max BYTES] [--thread-exits] [--fork] [--failed-execs] [--files]
 *             [--stdio] [--capture-fd FD]... [--write-max BYTES] [--oom]
 *             [--tracepoint CATEGORY:NAME]... [--net-raw]
 *
 * One JSON object per event on stdout (proctap_format_json: the same output
 * as the Rust dumper), flushed per batch; final stats as one JSON line on
 * stderr. --duration 0 loads, attaches and stops at once (a self-test);
 * without --duration it runs until SIGINT or SIGTERM. Exit status: 0, 1 when
 * tracing or writing failed (stdout full or closed: the stats still print),
 * 2 for a usage or config mistake.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <linux/magic.h>
#include "proctap.h"

static struct proctap *volatile g_pt;
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
	if (g_pt)
		proctap_stop(g_pt); /* async-signal-safe: one write(2) to an eventfd */
}

struct dumper {
	struct proctap_buf buf;
	char *line;
	size_t line_cap;
	int write_errno; /* stdout failed: stop */
};

/* One record as a JSON line on stdout; 0, or -1 when stdout failed. */
static int print_record(struct dumper *d, const struct pt_hdr *h, __s64 offset)
{
	long n = proctap_format_json(h, h->rec_size, offset, d->line, d->line_cap);

	if (n < 0)
		return 0; /* a kind this dumper does not print */
	if ((size_t)n + 2 > d->line_cap) {
		char *bigger = realloc(d->line, n + 2);

		if (!bigger)
			return errno = ENOMEM, -1;
		d->line = bigger;
		d->line_cap = n + 2;
		proctap_format_json(h, h->rec_size, offset, d->line, d->line_cap);
	}
	d->line[n] = '\n';
	return fwrite(d->line, 1, n + 1, stdout) == (size_t)n + 1 ? 0 : -1;
}

static struct proctap_buf *swap(void *ctx, struct proctap_buf *filled, int last)
{
	struct dumper *d = ctx;

	for (__u32 off = 0; filled && !d->write_errno && off < filled->len;) {
		const struct pt_hdr *h = (const void *)(filled->data + off);

		if (print_record(d, h, filled->realtime_offset_ns))
			d->write_errno = errno ? errno : EIO;
		off += h->rec_size;
	}
	if (filled && !d->write_errno && fflush(stdout))
		d->write_errno = errno ? errno : EIO;
	if (last || d->write_errno)
		return NULL; /* stdout failed: proctap_run stops, the rest is counted */
	d->buf.len = 0;
	return &d->buf;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: example [--duration SECONDS] [--pid PID]... [--comm PREFIX] [--cgroup DIR]...\n"
		"               [--argv-max BYTES] [--thread-exits] [--fork] [--failed-execs] [--files]\n"
		"               [--stdio] [--capture-fd FD]... [--write-max BYTES] [--oom]\n"
		"               [--tracepoint CATEGORY:NAME]... [--net-raw]\n");
}

static int parse_u32(const char *s, const char *what, __u32 *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v > 0xffffffffUL || *s == '-') {
		fprintf(stderr, "example: %s: not a number: %s\n", what, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno || *end || end == s || !(*out >= 0) || *out > 1e9) {
		fprintf(stderr, "example: --duration: not a number of seconds: %s\n", s);
		return -1;
	}
	return 0;
}

/* Adds a cgroup v2 directory to the cgroup filter (its id is its inode
 * number); 0, or -1 with the reason printed. */
static int add_cgroup(struct proctap_config *cfg, const char *dir)
{
	struct statfs fs;
	struct stat st;

	if (cfg->ncgroups >= PT_MAX_CGROUPS) {
		fprintf(stderr, "example: at most %d --cgroup\n", PT_MAX_CGROUPS);
		return -1;
	}
	if (statfs(dir, &fs) || stat(dir, &st)) {
		fprintf(stderr, "example: --cgroup %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (fs.f_type != CGROUP2_SUPER_MAGIC || !S_ISDIR(st.st_mode)) {
		fprintf(stderr,
			"example: --cgroup %s: not a cgroup v2 directory (on a v1/v2 hybrid, "
			"under /sys/fs/cgroup/unified)\n",
			dir);
		return -1;
	}
	cfg->cgroup_ids[cfg->ncgroups++] = st.st_ino;
	return 0;
}

/* Adds write events of fd (once) to exec and exit; 0, or -1 when full. */
static int add_write_fd(struct proctap_config *cfg, __s32 fd)
{
	cfg->events |= PROCTAP_EVENT(PT_KIND_EXEC) | PROCTAP_EVENT(PT_KIND_EXIT) |
		       PROCTAP_EVENT(PT_KIND_WRITE);
	for (__u32 i = 0; i < cfg->write_nfds; i++)
		if (cfg->write_fds[i] == fd)
			return 0;
	if (cfg->write_nfds >= PT_WRITE_FDS_MAX) {
		fprintf(stderr, "example: at most %d fds to capture\n", PT_WRITE_FDS_MAX);
		return -1;
	}
	cfg->write_fds[cfg->write_nfds++] = fd;
	return 0;
}

/* Adds the tracepoint declared at build (PROCTAP_EVENTS) as name
 * "CATEGORY:NAME" to exec and exit; 0, or -1 when none is. */
static int add_tracepoint(struct proctap_config *cfg, const char *name)
{
	for (__u32 kind = PT_TRACEPOINT_FIRST_KIND; kind < PT_KIND_MAX; kind++) {
		const char *known = proctap_kind_name(kind);

		if (known && !strcmp(known, name)) {
			cfg->events |= PROCTAP_EVENT(PT_KIND_EXEC) | PROCTAP_EVENT(PT_KIND_EXIT) |
				       PROCTAP_EVENT(kind);
			return 0;
		}
	}
	fprintf(stderr,
		"example: --tracepoint %s: not declared when proctap was built "
		"(list it in the PROCTAP_EVENTS file and rebuild)\n",
		name);
	return -1;
}

/* Parses argv into cfg and *duration (< 0: none). 0, or the exit status. */
static int parse_args(int argc, char **argv, struct proctap_config *cfg, double *duration)
{
	static const struct option opts[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "pid", required_argument, NULL, 'p' },
		{ "comm", required_argument, NULL, 'c' },
		{ "cgroup", required_argument, NULL, 'g' },
		{ "argv-max", required_argument, NULL, 'a' },
		{ "thread-exits", no_argument, NULL, 't' },
		{ "fork", no_argument, NULL, 'f' },
		{ "failed-execs", no_argument, NULL, 'x' },
		{ "files", no_argument, NULL, 'o' },
		{ "stdio", no_argument, NULL, 's' },
		{ "capture-fd", required_argument, NULL, 'F' },
		{ "write-max", required_argument, NULL, 'w' },
		{ "oom", no_argument, NULL, 'O' },
		{ "tracepoint", required_argument, NULL, 'T' },
		{ "net-raw", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	__u32 v;
	int opt;

	*duration = -1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			if (parse_seconds(optarg, duration))
				return 2;
			break;
		case 'p':
			if (cfg->npids >= PT_MAX_PIDS) {
				fprintf(stderr, "example: at most %d --pid\n", PT_MAX_PIDS);
				return 2;
			}
			if (parse_u32(optarg, "--pid", &cfg->pids[cfg->npids++]))
				return 2;
			break;
		case 'c':
			cfg->comm_prefix_len = strlen(optarg);
			if (cfg->comm_prefix_len >= PT_COMM_LEN) {
				fprintf(stderr, "example: --comm: at most %d bytes\n",
					PT_COMM_LEN - 1);
				return 2;
			}
			memcpy(cfg->comm_prefix, optarg, cfg->comm_prefix_len);
			break;
		case 'g':
			if (add_cgroup(cfg, optarg))
				return 2;
			break;
		case 'a':
			if (parse_u32(optarg, "--argv-max", &v))
				return 2;
			proctap_config_knob(cfg, PT_KNOB_ARGV_MAX, v);
			break;
		case 't':
			cfg->thread_exits = 1;
			break;
		case 'f': /* each option adds its kind to exec and exit */
			cfg->events |= PROCTAP_EVENT(PT_KIND_EXEC) | PROCTAP_EVENT(PT_KIND_EXIT) |
				       PROCTAP_EVENT(PT_KIND_FORK);
			break;
		case 'x':
			cfg->events |= PROCTAP_EVENT(PT_KIND_EXEC) | PROCTAP_EVENT(PT_KIND_EXIT) |
				       PROCTAP_EVENT(PT_KIND_EXEC_FAILED);
			break;
		case 'o':
			cfg->events |= PROCTAP_EVENT(PT_KIND_EXEC) | PROCTAP_EVENT(PT_KIND_EXIT) |
				       PROCTAP_EVENT(PT_KIND_OPEN);
			break;
		case 'O':
			cfg->events |= PROCTAP_EVENT(PT_KIND_EXEC) | PROCTAP_EVENT(PT_KIND_EXIT) |
				       PROCTAP_EVENT(PT_KIND_OOM_KILL);
			break;
		case 'N': /* connections (opened and closed come together), their bytes */
			cfg->events |= PROCTAP_EVENT(PT_KIND_EXEC) | PROCTAP_EVENT(PT_KIND_EXIT) |
				       PROCTAP_EVENT(PT_KIND_CONN_OPEN) |
				       PROCTAP_EVENT(PT_KIND_CONN_CLOSE) |
				       PROCTAP_EVENT(PT_KIND_NET_DATA);
			break;
		case 'T':
			if (add_tracepoint(cfg, optarg))
				return 2;
			break;
		case 's': /* fds 1 and 2, with any --capture-fd */
			if (add_write_fd(cfg, 1) || add_write_fd(cfg, 2))
				return 2;
			break;
		case 'F':
			if (parse_u32(optarg, "--capture-fd", &v))
				return 2;
			if (v > 0x7fffffff) {
				fprintf(stderr,
					"example: --capture-fd: %s is not a file descriptor\n",
					optarg);
				return 2;
			}
			if (add_write_fd(cfg, (__s32)v))
				return 2;
			break;
		case 'w':
			if (parse_u32(optarg, "--write-max", &v))
				return 2;
			proctap_config_knob(cfg, PT_KNOB_WRITE_MAX, v);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "example: unexpected argument %s\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	return 0;
}

static void print_stats(struct proctap *pt)
{
	struct proctap_stats st;
	__u64 exec, exit, data_lost = 0, meta_lost = 0;

	proctap_stats(pt, &st);
	exec = st.delivered[PT_KIND_EXEC];
	exit = st.delivered[PT_KIND_EXIT];
	for (int k = 0; k < PT_KIND_MAX; k++) {
		data_lost += st.data_lost[k];
		meta_lost += st.meta_lost[k];
	}
	/* The Rust dumper's top-level keys: every loss counter, then detail there. */
	fprintf(stderr,
		"{\"type\":\"stats\",\"events\":%llu,\"exec\":%llu,\"exit\":%llu,"
		"\"reserve_failures\":%llu,\"dropped_data\":%llu,\"invalid\":%llu,"
		"\"oversize\":%llu,\"abandoned\":%llu,\"undelivered\":0,\"ring_stalls\":%llu,"
		"\"missed_runs\":%llu,\"argv_truncated\":%llu,\"argv_fault\":%llu}\n",
		(unsigned long long)(exec + exit), (unsigned long long)exec,
		(unsigned long long)exit, (unsigned long long)meta_lost,
		(unsigned long long)data_lost, (unsigned long long)st.invalid,
		(unsigned long long)st.oversize, (unsigned long long)st.abandoned,
		(unsigned long long)st.ring_stalls, (unsigned long long)st.missed_runs,
		(unsigned long long)st.counters[PT_CTR_EXEC_ARGV_TRUNCATED],
		(unsigned long long)st.counters[PT_CTR_EXEC_ARGV_FAULT]);
}

static void handle_signals(void (*handler)(int), double duration)
{
	struct sigaction sa = { .sa_handler = handler, .sa_flags = SA_RESTART };
	struct itimerval t = { 0 };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	if (duration > 0) {
		t.it_value.tv_sec = (time_t)duration;
		t.it_value.tv_usec = (suseconds_t)((duration - (double)(time_t)duration) * 1e6);
		if (!t.it_value.tv_sec && !t.it_value.tv_usec)
			t.it_value.tv_usec = 1;
	}
	setitimer(ITIMER_REAL, &t, NULL);
}

int main(int argc, char **argv)
{
	struct proctap_config cfg = {};
	struct proctap_error err;
	struct dumper d = { 0 };
	struct proctap *pt;
	double duration;
	__u64 need;
	int rc;

	if ((rc = parse_args(argc, argv, &cfg, &duration)))
		return rc;
	/* Before open: a signal while loading stops cleanly too. A closed stdout
	 * is a write error (EPIPE), not a silent death. */
	signal(SIGPIPE, SIG_IGN);
	handle_signals(on_signal, -1);
	pt = proctap_open(&cfg, &err);
	if (!pt) {
		if (err.code == PROCTAP_E_CONFIG) {
			fprintf(stderr, "example: invalid config field `%s`: %s\n", err.field,
				err.message);
			return 2;
		}
		fprintf(stderr, "example: %s%s%s\n", err.message, err.program[0] ? " in " : "",
			err.program);
		return 1;
	}
	g_pt = pt;
	if (g_stop || duration == 0)
		proctap_stop(pt);
	else
		handle_signals(on_signal, duration);

	/* The largest record the config allows always fits. */
	need = proctap_max_record(&cfg);
	d.buf.cap = need > (1u << 20) ? need : (1u << 20);
	d.buf.data = aligned_alloc(8, d.buf.cap);
	d.line_cap = 64 << 10;
	d.line = malloc(d.line_cap);
	if (!d.buf.data || !d.line) {
		fprintf(stderr, "example: out of memory\n");
		proctap_close(pt);
		return 1;
	}
	d.buf.kind = PROCTAP_BUF_MIXED;
	rc = proctap_run(pt, swap, &d);
	/* No handler may reach the instance once it is closed. */
	handle_signals(SIG_IGN, -1);
	g_pt = NULL;
	if (d.write_errno)
		fprintf(stderr, "example: writing stdout: %s\n", strerror(d.write_errno));
	else if (rc)
		fprintf(stderr, "example: polling: %s\n", strerror(-rc));
	print_stats(pt);
	proctap_close(pt);
	free(d.buf.data);
	free(d.line);
	return rc || d.write_errno ? 1 : 0;
}
