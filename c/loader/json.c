// SPDX-License-Identifier: Apache-2.0
/* json.c - JSON output helpers, and proctap_format_json. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "internal.h"
#include "json.h"

static void pt_json_put(struct pt_json *j, const char *s, size_t n)
{
	if (j->len < j->cap) {
		size_t room = j->cap - j->len;

		memcpy(j->out + j->len, s, n < room ? n : room);
	}
	j->len += n;
}

void pt_json_raw(struct pt_json *j, const char *s)
{
	pt_json_put(j, s, strlen(s));
}

static void pt_json_fmt(struct pt_json *j, const char *fmt, unsigned long long v)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), fmt, v);

	pt_json_put(j, buf, n);
}

static void pt_json_key(struct pt_json *j, const char *key)
{
	pt_json_raw(j, j->first ? "\"" : ",\"");
	j->first = 0;
	pt_json_raw(j, key);
	pt_json_raw(j, "\":");
}

void pt_json_open(struct pt_json *j, const char *key)
{
	pt_json_key(j, key);
	pt_json_raw(j, "{");
	j->first = 1;
}

void pt_json_close(struct pt_json *j)
{
	pt_json_raw(j, "}");
	j->first = 0;
}

void pt_json_u64(struct pt_json *j, const char *key, __u64 v)
{
	pt_json_key(j, key);
	pt_json_fmt(j, "%llu", v);
}

/* A signed number, no key. */
static void pt_json_int(struct pt_json *j, __s64 v)
{
	char buf[32];

	pt_json_put(j, buf, snprintf(buf, sizeof(buf), "%lld", (long long)v));
}

void pt_json_i64(struct pt_json *j, const char *key, __s64 v)
{
	pt_json_key(j, key);
	pt_json_int(j, v);
}

void pt_json_bool(struct pt_json *j, const char *key, int v)
{
	pt_json_key(j, key);
	pt_json_raw(j, v ? "true" : "false");
}

/* Length of the valid UTF-8 sequence at s, or 0 when invalid (the rules of
 * Rust's str::from_utf8: no overlong forms, surrogates or code points past
 * U+10FFFF). */
static size_t pt_utf8_seq(const __u8 *s, size_t n)
{
	__u8 c = s[0];
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

static int pt_utf8_valid(const __u8 *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t l = pt_utf8_seq(s + i, n - i);

		if (!l)
			return 0;
		i += l;
	}
	return 1;
}

static void pt_json_hex(struct pt_json *j, const __u8 *s, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		char two[2] = { digits[s[i] >> 4], digits[s[i] & 15] };

		pt_json_put(j, two, 2);
	}
}

/* A JSON string (serde_json's escapes), or {"hex":"..."} for bytes that are
 * not UTF-8. */
static void pt_json_text(struct pt_json *j, const __u8 *s, size_t n)
{
	if (!pt_utf8_valid(s, n)) {
		pt_json_raw(j, "{\"hex\":\"");
		pt_json_hex(j, s, n);
		pt_json_raw(j, "\"}");
		return;
	}
	pt_json_raw(j, "\"");
	for (size_t i = 0, run = 0; i <= n; i++) {
		const char *esc = NULL;
		char u[8];

		if (i < n) {
			switch (s[i]) {
			case '"':
				esc = "\\\"";
				break;
			case '\\':
				esc = "\\\\";
				break;
			case '\b':
				esc = "\\b";
				break;
			case '\f':
				esc = "\\f";
				break;
			case '\n':
				esc = "\\n";
				break;
			case '\r':
				esc = "\\r";
				break;
			case '\t':
				esc = "\\t";
				break;
			default:
				if (s[i] < 0x20) {
					snprintf(u, sizeof(u), "\\u%04x", s[i]);
					esc = u;
				}
			}
			if (!esc)
				continue;
		}
		pt_json_put(j, (const char *)s + run, i - run);
		if (esc)
			pt_json_raw(j, esc);
		run = i + 1;
	}
	pt_json_raw(j, "\"");
}

void pt_json_str(struct pt_json *j, const char *key, const char *s)
{
	pt_json_key(j, key);
	if (s)
		pt_json_text(j, (const __u8 *)s, strlen(s));
	else
		pt_json_raw(j, "null");
}

void pt_json_bytes(struct pt_json *j, const char *key, const __u8 *s, __u32 n)
{
	pt_json_key(j, key);
	pt_json_text(j, s, n);
}

void pt_json_comm(struct pt_json *j, const char *key, const char *comm)
{
	pt_json_key(j, key);
	pt_json_text(j, (const __u8 *)comm, strnlen(comm, PT_COMM_LEN));
}

/* NUL-separated arguments; the last may lack its NUL. */
void pt_json_argv(struct pt_json *j, const char *key, const __u8 *s, __u32 n)
{
	pt_json_key(j, key);
	pt_json_raw(j, "[");
	for (__u32 start = 0; start < n;) {
		const __u8 *nul = memchr(s + start, '\0', n - start);
		__u32 end = nul ? (__u32)(nul - s) : n;

		if (start)
			pt_json_raw(j, ",");
		pt_json_text(j, s + start, end - start);
		start = end + 1;
	}
	pt_json_raw(j, "]");
}

static void pt_json_addr(struct pt_json *j, __u64 v)
{
	pt_json_fmt(j, "\"0x%llx\"", v);
}

/* Addresses of a stack, 8 bytes each, as hex strings. */
void pt_json_addresses(struct pt_json *j, const char *key, const __u8 *s, __u32 n)
{
	pt_json_key(j, key);
	pt_json_raw(j, "[");
	for (__u32 i = 0; i + 8 <= n; i += 8) {
		__u64 ip;

		memcpy(&ip, s + i, sizeof(ip));
		if (i)
			pt_json_raw(j, ",");
		pt_json_addr(j, ip);
	}
	pt_json_raw(j, "]");
}

/* 0 is printed as nothing; else {"errno":N} with N positive. */
void pt_json_errno(struct pt_json *j, const char *key, __s32 err)
{
	if (!err)
		return;
	pt_json_key(j, key);
	pt_json_raw(j, "{\"errno\":");
	pt_json_int(j, err == INT_MIN ? INT_MAX : -(__s64)err);
	pt_json_raw(j, "}");
}

void pt_json_exit_status(struct pt_json *j, __u32 status)
{
	pt_json_u64(j, "exit_code", (status >> 8) & 0xff);
	pt_json_key(j, "signal");
	if (status & 0x7f)
		pt_json_fmt(j, "%llu", status & 0x7f);
	else
		pt_json_raw(j, "null");
	pt_json_bool(j, "core_dumped", status & 0x80);
}

/* Gregorian (year, month, day) of a day count since 1970-01-01. */
static void pt_civil(long long days, long long *y, unsigned *m, unsigned *d)
{
	long long z = days + 719468;
	long long era = (z >= 0 ? z : z - 146096) / 146097;
	long long doe = z - era * 146097;
	long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	long long mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yoe + era * 400 + (*m <= 2);
}

static long long pt_div_floor(long long a, long long b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* RFC 3339 UTC with nanoseconds of CLOCK_MONOTONIC ts_ns + offset. */
void pt_json_time(struct pt_json *j, const char *key, __u64 ts_ns, __s64 offset)
{
	long long wall, secs, nanos, days, sod, y;
	unsigned m, d;
	char buf[64];

	if (__builtin_add_overflow((long long)ts_ns, (long long)offset, &wall))
		wall = offset < 0 ? LLONG_MIN : LLONG_MAX;
	secs = pt_div_floor(wall, 1000000000);
	nanos = wall - secs * 1000000000;
	days = pt_div_floor(secs, 86400);
	sod = secs - days * 86400;
	pt_civil(days, &y, &m, &d);
	pt_json_key(j, key);
	pt_json_put(j, buf,
		    snprintf(buf, sizeof(buf), "\"%04lld-%02u-%02uT%02lld:%02lld:%02lld.%09lldZ\"",
			     y, m, d, sod / 3600, sod % 3600 / 60, sod % 60, nanos));
}

long proctap_format_json(const void *rec, size_t len, __s64 realtime_offset_ns, char *out,
			 size_t cap)
{
	const struct pt_hdr *h = rec;
	struct pt_json j = { .out = out, .cap = cap, .len = 0 };

	if (!rec || len < sizeof(*h) || !pt_record_shape(h, len))
		return -1;
	if (pt_json_record(&j, h, realtime_offset_ns))
		return -1;
	if (cap)
		out[j.len < cap ? j.len : cap - 1] = '\0';
	return (long)j.len;
}

/* A syscall's return: the value, or the errno (positive) when it failed. */
void pt_json_result(struct pt_json *j, const char *key, __s64 ret)
{
	pt_json_key(j, key);
	if (ret >= 0) {
		pt_json_fmt(j, "%llu", (unsigned long long)ret);
		pt_json_raw(j, ",\"errno\":null");
		return;
	}
	pt_json_raw(j, "null");
	pt_json_key(j, "errno");
	pt_json_int(j, ret < -(__s64)INT_MAX ? INT_MAX : -ret);
}

/* a.b.c.d */
static void pt_json_dotted(struct pt_json *j, const __u8 *a)
{
	for (int i = 0; i < 4; i++)
		pt_json_fmt(j, i ? ".%llu" : "%llu", a[i]);
}

/* An IPv6 address as RFC 5952 and Rust's Ipv6Addr write it: lowercase hex
 * groups, the longest run of two or more zero groups (the first of equal
 * ones) as "::", IPv4-mapped ones as ::ffff:a.b.c.d. */
static void pt_json_ipv6(struct pt_json *j, const __u8 *a)
{
	__u16 g[8];
	int best = -1, best_len = 1;

	for (int i = 0; i < 8; i++)
		g[i] = (__u16)(a[2 * i] << 8 | a[2 * i + 1]);
	if (!g[0] && !g[1] && !g[2] && !g[3] && !g[4] && g[5] == 0xffff) {
		pt_json_raw(j, "::ffff:");
		pt_json_dotted(j, a + 12);
		return;
	}
	for (int i = 0; i < 8;) {
		int n = 0;

		while (i + n < 8 && !g[i + n])
			n++;
		if (n > best_len) {
			best = i;
			best_len = n;
		}
		i += n ? n : 1;
	}
	for (int i = 0; i < 8; i++) {
		if (i == best) {
			pt_json_raw(j, "::");
			i += best_len - 1;
			continue;
		}
		if (i && i != best + best_len)
			pt_json_raw(j, ":");
		pt_json_fmt(j, "%llx", g[i]);
	}
}

void pt_json_sockaddr(struct pt_json *j, const char *key, const struct pt_sockaddr *a)
{
	pt_json_key(j, key);
	switch (a->family) {
	case 4:
		pt_json_raw(j, "\"");
		pt_json_dotted(j, a->addr);
		pt_json_fmt(j, ":%llu\"", a->port);
		break;
	case 6:
		pt_json_raw(j, "\"[");
		pt_json_ipv6(j, a->addr);
		pt_json_fmt(j, "]:%llu\"", a->port);
		break;
	default:
		pt_json_raw(j, "null");
	}
}
