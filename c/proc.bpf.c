// SPDX-License-Identifier: Apache-2.0
/*
 * proc.bpf.c - process lifecycle: exec and exit.
 *
 * Both attach as BTF tracepoints (tp_btf), which need neither kprobes nor a
 * mounted tracefs.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "transport.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader before load. */
const volatile __u32 pt_argv_max = PT_ARGV_DEFAULT;
const volatile bool pt_filter_pids = false;
const volatile bool pt_thread_exits = false;
const volatile __u32 pt_comm_prefix_len = 0;
const volatile char pt_comm_prefix[PT_COMM_LEN] = {};

/* Traced tgids when pt_filter_pids is set. Whole-process exits remove theirs. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u8);
	__uint(max_entries, PT_MAX_PIDS);
} pt_pids SEC(".maps");

static __always_inline bool pt_comm_match(const char *comm)
{
	for (int i = 0; i < PT_COMM_LEN; i++) {
		if (i >= pt_comm_prefix_len)
			return true;
		if (comm[i] != pt_comm_prefix[i])
			return false;
	}
	return true;
}

static __always_inline bool pt_pid_match(__u32 tgid)
{
	return !pt_filter_pids || bpf_map_lookup_elem(&pt_pids, &tgid);
}

/* The tgid as the process' own pid namespace numbers it. */
static __always_inline __u32 pt_ns_tgid(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, group_leader, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid upid = {};

	bpf_core_read(&upid, sizeof(upid), &pid->numbers[level & 31]);
	return upid.nr;
}

/*
 * Copies filename and argv into the data pages. The reservation is made for
 * the largest filename and the capped argv, then trimmed to what was written.
 */
static __always_inline void pt_exec_data(struct pt_cpu *c, struct pt_exec *e,
					 struct task_struct *task, struct linux_binprm *bprm,
					 bool *urgent)
{
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	__u64 arg_start = BPF_CORE_READ(mm, arg_start);
	__u64 arg_end = BPF_CORE_READ(mm, arg_end);
	__u64 argv_size = arg_end > arg_start ? arg_end - arg_start : 0;
	__u64 want = argv_size;
	__u32 need, fname_len = 0, argv_len = 0, used;
	long n;
	__s64 pos;
	__u8 *dst;

	if (want > pt_argv_max)
		want = pt_argv_max;
	e->argv_size = argv_size > 0xffffffffULL ? 0xffffffffU : argv_size;

	need = PT_FILENAME_MAX + want;
	pos = pt_data_reserve(c->ctl, need, urgent);
	if (pos < 0) {
		e->hdr.flags |= PT_F_DATA_LOST;
		pt_count(&c->ctl->data_lost[PT_KIND_EXEC], 1);
		return;
	}
	dst = c->pages + (pos & pt_ring_mask);

	n = bpf_probe_read_kernel_str(dst, PT_FILENAME_MAX, BPF_CORE_READ(bprm, filename));
	if (n > 0)
		fname_len = (n - 1) & (PT_FILENAME_MAX - 1);
	if (n == PT_FILENAME_MAX)
		e->hdr.flags |= PT_F_FILENAME_TRUNCATED;

	if (want && bpf_probe_read_user(dst + fname_len, want, (void *)arg_start) == 0) {
		argv_len = want;
		if (want < argv_size) {
			e->hdr.flags |= PT_F_ARGV_TRUNCATED;
			pt_count(&c->ctl->argv_truncated, 1);
		}
	} else if (want) {
		e->hdr.flags |= PT_F_ARGV_FAULT;
		pt_count(&c->ctl->argv_fault, 1);
	}

	used = fname_len + argv_len;
	e->filename_len = fname_len;
	e->argv_len = argv_len;
	e->hdr.data_pos = pos;
	e->hdr.data_len = used;
	e->hdr.data_span = pt_data_trim(c->ctl, pos, need, used);
	pt_count(&c->ctl->data_bytes, used);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(pt_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	struct pt_cpu c;
	struct pt_exec *e;
	char comm[PT_COMM_LEN];
	bool urgent = false;
	__u32 cpu;

	if (!pt_pid_match(pid_tgid >> 32))
		return 0;
	bpf_get_current_comm(comm, sizeof(comm));
	if (!pt_comm_match(comm))
		return 0;
	if (!pt_cpu_get(&c, &cpu))
		return 0;

	e = bpf_ringbuf_reserve(&pt_meta, sizeof(*e), 0);
	if (!e) {
		pt_count(&c.ctl->meta_lost[PT_KIND_EXEC], 1);
		return 0;
	}
	pt_hdr_init(&e->hdr, PT_KIND_EXEC, cpu, pid_tgid, bpf_ktime_get_ns());
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	e->ns_pid = pt_ns_tgid(task);
	e->cgroup_id = bpf_get_current_cgroup_id();
	__builtin_memcpy(e->comm, comm, sizeof(comm));
	e->filename_len = 0;
	e->argv_len = 0;
	e->argv_size = 0;
	e->exec_pad = 0;

	pt_exec_data(&c, e, task, bprm, &urgent);

	pt_submit(e, sizeof(*e), urgent);
	pt_count(&c.ctl->emitted[PT_KIND_EXEC], 1);
	return 0;
}

/* Reports an exit; process_gone says the whole process ended. */
static __always_inline int pt_on_exit(struct task_struct *task, bool process_gone)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct pt_cpu c;
	struct pt_exit *x;
	__u32 cpu;

	if (!process_gone && !pt_thread_exits)
		return 0;
	if (!pt_pid_match(tgid))
		return 0;
	if (!pt_comm_match(task->comm))
		return 0;
	if (pt_filter_pids && process_gone)
		bpf_map_delete_elem(&pt_pids, &tgid); /* pids are reused */
	if (!pt_cpu_get(&c, &cpu))
		return 0;

	x = bpf_ringbuf_reserve(&pt_meta, sizeof(*x), 0);
	if (!x) {
		pt_count(&c.ctl->meta_lost[PT_KIND_EXIT], 1);
		return 0;
	}
	pt_hdr_init(&x->hdr, PT_KIND_EXIT, cpu, pid_tgid, bpf_ktime_get_ns());
	if (!process_gone)
		x->hdr.flags |= PT_F_THREAD_EXIT;
	x->ppid = BPF_CORE_READ(task, real_parent, tgid);
	x->exit_code = BPF_CORE_READ(task, exit_code);
	x->start_ns = process_gone ? BPF_CORE_READ(task, group_leader, start_time)
				   : BPF_CORE_READ(task, start_time);
	bpf_probe_read_kernel(x->comm, sizeof(x->comm), task->comm);

	pt_submit(x, sizeof(*x), false);
	pt_count(&c.ctl->emitted[PT_KIND_EXIT], 1);
	return 0;
}

/* Kernels whose sched_process_exit passes group_dead: the thread that took
 * signal->live to zero, exactly one per process. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(pt_exit, struct task_struct *task, bool group_dead)
{
	return pt_on_exit(task, group_dead);
}

/* Older kernels: signal->live is already zero for every thread that exits
 * after the last decrement, and threads of an exit_group exit in parallel, so
 * several may see zero. The first to claim (signal_struct, start time)
 * reports the process exit; the start time keeps a reused signal_struct
 * address from matching. */
struct pt_exit_key {
	__u64 signal;
	__u64 start_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct pt_exit_key);
	__type(value, __u8);
	__uint(max_entries, 4096);
} pt_exit_seen SEC(".maps");

SEC("tp_btf/sched_process_exit")
int BPF_PROG(pt_exit_live, struct task_struct *task)
{
	struct pt_exit_key key = {};
	__u8 one = 1;
	bool gone = BPF_CORE_READ(task, signal, live.counter) == 0;

	if (gone) {
		key.signal = (__u64)BPF_CORE_READ(task, signal);
		key.start_ns = BPF_CORE_READ(task, group_leader, start_time);
		gone = bpf_map_update_elem(&pt_exit_seen, &key, &one, BPF_NOEXIST) == 0;
	}
	return pt_on_exit(task, gone);
}
