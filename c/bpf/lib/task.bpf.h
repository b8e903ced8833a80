/* SPDX-License-Identifier: Apache-2.0 */
/* task.bpf.h - small CO-RE readers of task_struct shared by the programs. */
#ifndef PT_TASK_BPF_H
#define PT_TASK_BPF_H

/* The tgid as the process' own pid namespace numbers it. */
static __always_inline __u32 pt_ns_tgid(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, group_leader, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid upid = {};

	bpf_core_read(&upid, sizeof(upid), &pid->numbers[level & 31]);
	return upid.nr;
}

/* CLOCK_MONOTONIC start of the task's process (its group leader). */
static __always_inline __u64 pt_process_start(struct task_struct *task)
{
	return BPF_CORE_READ(task, group_leader, start_time);
}

/* Does comm start with the first len bytes of prefix? */
static __always_inline bool pt_comm_has_prefix(const char *comm, const volatile char *prefix,
					       __u32 len)
{
	for (int i = 0; i < PT_COMM_LEN; i++) {
		if (i >= len)
			return true;
		if (comm[i] != prefix[i])
			return false;
	}
	return true;
}

#endif /* PT_TASK_BPF_H */
