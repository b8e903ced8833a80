// SPDX-License-Identifier: Apache-2.0
/*
 * marks.c - records the caller makes: a pressure watch's capture start and
 * stop (proctap_capture_mark), from any thread. They wait in an inbox until
 * the poll thread's next drain of the side band (mappings.c), which stamps
 * nothing more and merges them by time with the samples. After the stream
 * ended, marks are refused rather than left unread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

/* One mark, a whole struct pt_capture and its cgroup path. */
struct pt_mark {
	void *rec;
	size_t size;
};

struct pt_marks {
	pthread_mutex_t lock;
	struct pt_mark *inbox;
	size_t n, cap;
	bool sealed; /* the stream ended */
};

int pt_marks_open(struct proctap *pt)
{
	pt->marks = calloc(1, sizeof(*pt->marks));
	if (!pt->marks)
		return -ENOMEM;
	pthread_mutex_init(&pt->marks->lock, NULL);
	return 0;
}

void pt_marks_close(struct proctap *pt)
{
	struct pt_marks *m = pt->marks;

	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->inbox[i].rec);
	free(m->inbox);
	pthread_mutex_destroy(&m->lock);
	free(m);
	pt->marks = NULL;
}

/* Queues every mark among the side band's records of this round. */
void pt_marks_take(struct proctap *pt)
{
	struct pt_marks *m = pt->marks;
	struct pt_mark *inbox;
	size_t n;

	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	inbox = m->inbox;
	n = m->n;
	m->inbox = NULL;
	m->n = m->cap = 0;
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; i < n; i++) {
		const struct pt_capture *c = inbox[i].rec;

		pt_side_queue(pt, &c->hdr, sizeof(*c), c + 1, c->cgroup_len);
		free(inbox[i].rec);
	}
	free(inbox);
}

/* From now on marks are refused (-ESHUTDOWN). */
void pt_marks_seal(struct proctap *pt)
{
	if (!pt->marks)
		return;
	pthread_mutex_lock(&pt->marks->lock);
	pt->marks->sealed = true;
	pthread_mutex_unlock(&pt->marks->lock);
}

/* A capture record from the caller: whole, of a known state, resource and
 * stall, its cgroup within the cap. */
static bool pt_capture_valid(const struct pt_capture *c, size_t size)
{
	return size >= sizeof(*c) && c->hdr.kind == PT_KIND_CAPTURE && !c->hdr.flags &&
	       c->hdr.data_len == c->cgroup_len && c->cgroup_len <= PT_CAPTURE_DATA_MAX &&
	       sizeof(*c) + c->cgroup_len <= size && c->state <= PT_CAPTURE_STATE_STOP &&
	       c->resource <= PT_CAPTURE_RESOURCE_IO && c->stall <= PT_CAPTURE_STALL_FULL;
}

int proctap_capture_mark(struct proctap *pt, const void *rec, size_t size)
{
	struct pt_marks *m = pt ? pt->marks : NULL;
	struct pt_mark *inbox;
	struct pt_capture *copy;
	bool sealed;

	if (!m)
		return -EINVAL;
	if (!rec || !pt_capture_valid(rec, size))
		return -EBADMSG;
	copy = malloc(size);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, rec, size);
	copy->hdr.ts_ns = pt_ts(CLOCK_MONOTONIC);
	copy->hdr.pid = copy->hdr.tid = copy->hdr.cpu = 0;
	pthread_mutex_lock(&m->lock);
	sealed = m->sealed;
	inbox = sealed ? NULL : pt_grow(m->inbox, &m->cap, m->n + 1, sizeof(*inbox));
	if (inbox) {
		m->inbox = inbox;
		m->inbox[m->n++] = (struct pt_mark){ copy, size };
	}
	pthread_mutex_unlock(&m->lock);
	if (!inbox) {
		free(copy);
		return sealed ? -ESHUTDOWN : -ENOMEM;
	}
	return 0;
}
