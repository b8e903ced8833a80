// SPDX-License-Identifier: Apache-2.0
/*
 * example.c - standalone JSON-lines dumper on libproctap.a.
 *
 *   ./example [--duration SECONDS] [--pid PID]... [--comm PREFIX]
 *             [--argv-max BYTES] [--thread-exits]
 *
 * One JSON object per event on stdout, flushed per line; final stats as one
 * JSON line on stderr. Byte strings (comm, filename, argv) print as JSON
 * strings when they are valid UTF-8 and as {"hex":"..."} otherwise.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "proctap.h"

static struct proctap *g_pt;

static void on_signal(int sig)
{
	(void)sig;
	proctap_stop(g_pt); /* async-signal-safe: one write(2) to an eventfd */
}

/* Length of the valid UTF-8 sequence at s, or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned int cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

static int utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq(s + i, n - i);

		if (!l)
			return 0;
		i += l;
	}
	return 1;
}

static void put_bytes(FILE *f, const void *data, size_t n)
{
	const unsigned char *s = data;

	if (!utf8_valid(s, n)) {
		fputs("{\"hex\":\"", f);
		for (size_t i = 0; i < n; i++)
			fprintf(f, "%02x", s[i]);
		fputs("\"}", f);
		return;
	}
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void put_time(FILE *f, __u64 ts_ns, __s64 offset)
{
	__s64 wall = (__s64)ts_ns + offset;
	time_t sec = wall / 1000000000;
	struct tm tm;
	char buf[32];

	gmtime_r(&sec, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(f, "\"%s.%09lldZ\"", buf, (long long)(wall % 1000000000));
}

static void print_exec(const struct pt_exec *e, __s64 offset)
{
	const char *data = (const char *)(e + 1);
	const char *argv = data + e->filename_len;

	printf("{\"type\":\"exec\",\"ts_ns\":%llu,\"time\":", (unsigned long long)e->hdr.ts_ns);
	put_time(stdout, e->hdr.ts_ns, offset);
	printf(",\"pid\":%u,\"tid\":%u,\"ppid\":%u,\"uid\":%u,\"gid\":%u,\"ns_pid\":%u,"
	       "\"cgroup_id\":%llu,\"comm\":",
	       e->hdr.pid, e->hdr.tid, e->ppid, e->uid, e->gid, e->ns_pid,
	       (unsigned long long)e->cgroup_id);
	put_bytes(stdout, e->comm, strnlen(e->comm, PT_COMM_LEN));
	fputs(",\"filename\":", stdout);
	put_bytes(stdout, data, e->filename_len);
	if (e->hdr.flags & PT_F_FILENAME_TRUNCATED)
		fputs(",\"filename_truncated\":true", stdout);
	fputs(",\"argv\":[", stdout);
	/* argv is NUL-separated; a truncated tail may lack its NUL. */
	for (__u32 start = 0; start < e->argv_len;) {
		const char *nul = memchr(argv + start, '\0', e->argv_len - start);
		__u32 end = nul ? (__u32)(nul - argv) : e->argv_len;

		if (start)
			fputc(',', stdout);
		put_bytes(stdout, argv + start, end - start);
		start = end + 1;
	}
	printf("],\"argv_truncated\":%s,\"data_lost\":%s}\n",
	       e->hdr.flags & (PT_F_ARGV_TRUNCATED | PT_F_ARGV_FAULT) ? "true" : "false",
	       e->hdr.flags & PT_F_DATA_LOST ? "true" : "false");
}

static void print_exit(const struct pt_exit *x, __s64 offset)
{
	__u32 sig = x->exit_code & 0x7f;

	printf("{\"type\":\"exit\",\"ts_ns\":%llu,\"time\":", (unsigned long long)x->hdr.ts_ns);
	put_time(stdout, x->hdr.ts_ns, offset);
	printf(",\"pid\":%u,\"tid\":%u,\"ppid\":%u,\"comm\":", x->hdr.pid, x->hdr.tid, x->ppid);
	put_bytes(stdout, x->comm, strnlen(x->comm, PT_COMM_LEN));
	printf(",\"exit_code\":%u,\"signal\":", (x->exit_code >> 8) & 0xff);
	if (sig)
		printf("%u", sig);
	else
		fputs("null", stdout);
	printf(",\"core_dumped\":%s,\"duration_ns\":%llu,\"thread_exit\":%s}\n",
	       x->exit_code & 0x80 ? "true" : "false",
	       (unsigned long long)(x->hdr.ts_ns > x->start_ns ? x->hdr.ts_ns - x->start_ns : 0),
	       x->hdr.flags & PT_F_THREAD_EXIT ? "true" : "false");
}

struct dumper {
	struct proctap_buf buf;
	__u64 storage[(1 << 20) / 8];
};

static struct proctap_buf *swap(void *ctx, struct proctap_buf *filled, int last)
{
	struct dumper *d = ctx;

	if (filled) {
		for (__u32 off = 0; off < filled->len;) {
			const struct pt_hdr *h = (const void *)(filled->data + off);

			if (h->kind == PT_KIND_EXEC)
				print_exec((const void *)h, filled->realtime_offset_ns);
			else if (h->kind == PT_KIND_EXIT)
				print_exit((const void *)h, filled->realtime_offset_ns);
			off += h->rec_size;
		}
		fflush(stdout);
	}
	if (last)
		return NULL;
	d->buf.len = 0;
	return &d->buf;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: example [--duration SECONDS] [--pid PID]... [--comm PREFIX]\n"
		   "               [--argv-max BYTES] [--thread-exits]\n");
}

static int parse_u32(const char *s, const char *what, __u32 *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v > 0xffffffffUL) {
		fprintf(stderr, "example: %s: not a number: %s\n", what, s);
		return -1;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static struct dumper d;
	static const struct option opts[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "pid", required_argument, NULL, 'p' },
		{ "comm", required_argument, NULL, 'c' },
		{ "argv-max", required_argument, NULL, 'a' },
		{ "thread-exits", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct proctap_config cfg = {};
	struct proctap_error err;
	struct proctap_stats st;
	struct sigaction sa = { .sa_handler = on_signal };
	__u32 duration = 0;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			if (parse_u32(optarg, "--duration", &duration))
				return 2;
			break;
		case 'p':
			if (cfg.npids >= PT_MAX_PIDS) {
				fprintf(stderr, "example: at most %d --pid\n", PT_MAX_PIDS);
				return 2;
			}
			if (parse_u32(optarg, "--pid", &cfg.pids[cfg.npids++]))
				return 2;
			break;
		case 'c':
			cfg.comm_prefix_len = strlen(optarg);
			if (cfg.comm_prefix_len >= PT_COMM_LEN) {
				fprintf(stderr, "example: --comm: at most %d bytes\n", PT_COMM_LEN - 1);
				return 2;
			}
			memcpy(cfg.comm_prefix, optarg, cfg.comm_prefix_len);
			break;
		case 'a':
			if (parse_u32(optarg, "--argv-max", &cfg.argv_max))
				return 2;
			break;
		case 't':
			cfg.thread_exits = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	g_pt = proctap_open(&cfg, &err);
	if (!g_pt) {
		fprintf(stderr, "example: %s%s%s%s%s\n", err.message,
			err.field[0] ? " (field " : "", err.field, err.field[0] ? ")" : "",
			err.program[0] ? err.program : "");
		return 1;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	if (duration)
		alarm(duration);

	d.buf.data = (__u8 *)d.storage;
	d.buf.cap = sizeof(d.storage);
	rc = proctap_run(g_pt, swap, &d);
	/* No handler may reach the instance once it is closed. */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	alarm(0);

	proctap_stats(g_pt, &st);
	fprintf(stderr,
		"{\"type\":\"stats\",\"events\":%llu,\"exec\":%llu,\"exit\":%llu,"
		"\"dropped_data\":%llu,\"reserve_failures\":%llu,\"argv_truncated\":%llu,"
		"\"invalid\":%llu,\"oversize\":%llu}\n",
		(unsigned long long)(st.delivered[PT_KIND_EXEC] + st.delivered[PT_KIND_EXIT]),
		(unsigned long long)st.delivered[PT_KIND_EXEC],
		(unsigned long long)st.delivered[PT_KIND_EXIT],
		(unsigned long long)(st.data_lost[PT_KIND_EXEC] + st.data_lost[PT_KIND_EXIT]),
		(unsigned long long)(st.meta_lost[PT_KIND_EXEC] + st.meta_lost[PT_KIND_EXIT]),
		(unsigned long long)st.argv_truncated, (unsigned long long)st.invalid,
		(unsigned long long)st.oversize);
	proctap_close(g_pt);
	g_pt = NULL;
	return rc ? 1 : 0;
}
