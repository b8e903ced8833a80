/* SPDX-License-Identifier: Apache-2.0 */
/*
 * call.bpf.h - a traced thread's syscall in flight, from its entry
 * tracepoint to its exit tracepoint.
 *
 * The entry keeps the arguments a kind reports at the return (a path, an
 * argv: read then, from the caller's memory as it passed them) in the
 * thread's own storage: made at its first traced call, freed with the
 * thread, so there is no insert or delete per call. A thread is in one
 * syscall at a time, so every syscall kind shares the one slot; the kind
 * that filled it is the only one its exit takes it for.
 */
#ifndef PT_CALL_BPF_H
#define PT_CALL_BPF_H

#include "lib/filter.bpf.h"

struct pt_call {
	__u64 args[4];
	__u32 kind; /* the kind whose exit reports it; 0: none in flight */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pt_call);
} pt_calls SEC(".maps") __weak;

/*
 * At the entry of a syscall reported as `kind`: the current thread's slot
 * to fill, or NULL when its process is not traced (or is the tracer), or
 * when no slot could be made (counted in `not_followed`, a PT_CTR_*).
 */
static __always_inline struct pt_call *pt_call_enter(__u32 kind, __u32 not_followed)
{
	struct task_struct *task = pt_traced_current();
	struct pt_call *c;
	struct pt_emit e;

	if (!task)
		return NULL;
	c = bpf_task_storage_get(&pt_calls, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c) {
		if (pt_emit_init(&e))
			pt_emit_count(&e, not_followed);
		return NULL;
	}
	c->kind = kind;
	return c;
}

/* At the exit: the arguments its entry kept for `kind` (the slot is then
 * free), or false when there are none. */
static __always_inline bool pt_call_exit(__u32 kind, struct pt_call *out)
{
	struct pt_call *c = bpf_task_storage_get(&pt_calls, bpf_get_current_task_btf(), 0, 0);

	if (!c || c->kind != kind)
		return false;
	*out = *c;
	c->kind = 0;
	return true;
}

#endif /* PT_CALL_BPF_H */
