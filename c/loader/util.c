// SPDX-License-Identifier: Apache-2.0
/* util.c - typed errors, clocks and mappings shared by the loader's parts. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <bpf/btf.h>
#include "internal.h"

int pt_fail(struct proctap_error *err, int code, int errnum, const char *field, const char *program,
	    const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	memset(err, 0, sizeof(*err));
	err->code = code;
	err->errnum = errnum;
	if (field)
		snprintf(err->field, sizeof(err->field), "%s", field);
	if (program)
		snprintf(err->program, sizeof(err->program), "%s", program);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return code;
}

/* An error the kernel returned: a missing privilege is its own class. */
int pt_kernel_error(struct proctap_error *err, int code, int errnum, const char *program,
		    const char *what)
{
	if (errnum == EPERM || errnum == EACCES)
		return pt_fail(err, PROCTAP_E_PRIVILEGE, errnum, NULL, program,
			       "%s: permission denied; run as root or grant CAP_BPF and "
			       "CAP_PERFMON",
			       what);
	return pt_fail(err, code, errnum, NULL, program, "%s: %s%s", what, strerror(errnum),
		       code == PROCTAP_E_LOAD ? " (libbpf printed the verifier log on stderr)"
					      : "");
}

__u64 pt_ts(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

__u64 proctap_monotonic_ns(void)
{
	return pt_ts(CLOCK_MONOTONIC);
}

/* CLOCK_REALTIME - CLOCK_MONOTONIC, from the tightest of three samples. */
__s64 pt_realtime_offset(void)
{
	__u64 best_width = ~0ull;
	__s64 best = 0;

	for (int i = 0; i < 3; i++) {
		__u64 m1 = pt_ts(CLOCK_MONOTONIC);
		__u64 r = pt_ts(CLOCK_REALTIME);
		__u64 m2 = pt_ts(CLOCK_MONOTONIC);

		if (m2 - m1 < best_width) {
			best_width = m2 - m1;
			best = (__s64)(r - (m1 + (m2 - m1) / 2));
		}
	}
	return best;
}

/* A shared mapping of a BPF_F_MMAPABLE map (or ringbuf); NULL on failure. */
void *pt_mmap(int fd, size_t len, bool writable, off_t off)
{
	void *p = mmap(NULL, len, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd,
		       off);

	return p == MAP_FAILED ? NULL : p;
}

int pt_tracepoint_arg_kind(const char *tp, int arg)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t;
	char name[128];
	int id, kind = -1;

	if (!btf)
		return -1;
	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	id = btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF);
	t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	t = t ? btf__type_by_id(btf, t->type) : NULL; /* a pointer to the prototype */
	t = t && btf_is_ptr(t) ? btf__type_by_id(btf, t->type) : NULL;
	if (t && btf_is_func_proto(t) && arg < btf_vlen(t)) {
		id = btf__resolve_type(btf, btf_params(t)[arg].type);
		t = id >= 0 ? btf__type_by_id(btf, id) : NULL;
		kind = t ? btf_kind(t) : -1;
	}
	btf__free(btf);
	return kind;
}

bool pt_btf_has_member(const char *type, const char *member)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t;
	bool found = false;
	int id;

	if (!btf)
		return false;
	id = btf__find_by_name_kind(btf, type, BTF_KIND_STRUCT);
	t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	for (int i = 0; t && i < btf_vlen(t) && !found; i++)
		found = !strcmp(btf__name_by_offset(btf, btf_members(t)[i].name_off), member);
	btf__free(btf);
	return found;
}
