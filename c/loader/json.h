/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.h - the pieces the generated JSON printers (pt_json.c) are made of.
 * Output matches the Rust serializer byte for byte: serde_json's escapes,
 * RFC 3339 times with nanoseconds, byte strings as text when they are valid
 * UTF-8 and as {"hex":"..."} otherwise.
 */
#ifndef PT_LOADER_JSON_H
#define PT_LOADER_JSON_H

#include <stddef.h>
#include "proctap.h"

/* An output buffer that counts what did not fit (snprintf-like). */
struct pt_json {
	char *out;
	size_t cap;
	size_t len; /* what the whole output needs, even past cap */
	int first;  /* the next key opens an object: no comma before it */
};

void pt_json_raw(struct pt_json *j, const char *s);
/* ,"key":{ ... } around the keys written in between. */
void pt_json_open(struct pt_json *j, const char *key);
void pt_json_close(struct pt_json *j);
/* Each writes ,"key":value */
void pt_json_u64(struct pt_json *j, const char *key, __u64 v);
void pt_json_i64(struct pt_json *j, const char *key, __s64 v);
void pt_json_bool(struct pt_json *j, const char *key, int v);
void pt_json_str(struct pt_json *j, const char *key, const char *s);
void pt_json_time(struct pt_json *j, const char *key, __u64 ts_ns, __s64 offset);
void pt_json_bytes(struct pt_json *j, const char *key, const __u8 *s, __u32 n);
void pt_json_comm(struct pt_json *j, const char *key, const char *comm);
void pt_json_argv(struct pt_json *j, const char *key, const __u8 *s, __u32 n);
void pt_json_addresses(struct pt_json *j, const char *key, const __u8 *s, __u32 n);
void pt_json_errno(struct pt_json *j, const char *key, __s32 err);
void pt_json_exit_status(struct pt_json *j, __u32 status);
void pt_json_result(struct pt_json *j, const char *key, __s64 ret);
/* "1.2.3.4:80", "[::1]:80" (as Rust's SocketAddr shows it), or null. */
void pt_json_sockaddr(struct pt_json *j, const char *key, const struct pt_sockaddr *a);

/* Generated: the printer of h's kind; -1 for an unknown kind. */
int pt_json_record(struct pt_json *j, const struct pt_hdr *h, __s64 offset);

#endif /* PT_LOADER_JSON_H */
