/* SPDX-License-Identifier: Apache-2.0 */
/*
 * netsys.bpf.h - the data syscalls of sockets by number, per architecture,
 * and the syscall number in a thread's saved user registers: a socket
 * tracepoint finds which call moved the bytes (and so where they are).
 * The registers come from bpf_task_pt_regs, a BTF pointer: read directly.
 */
#ifndef PT_NETSYS_BPF_H
#define PT_NETSYS_BPF_H

#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#if defined(__TARGET_ARCH_x86)
#define PT_SYSCALL_NR(regs) ((__u32)(regs)->orig_ax)
#define PT_NR_READ 0
#define PT_NR_WRITE 1
#define PT_NR_READV 19
#define PT_NR_WRITEV 20
#define PT_NR_SENDFILE 40
#define PT_NR_SENDTO 44
#define PT_NR_RECVFROM 45
#define PT_NR_SENDMSG 46
#define PT_NR_RECVMSG 47
#define PT_NR_RECVMMSG 299
#define PT_NR_SENDMMSG 307
#elif defined(__TARGET_ARCH_arm64)
/* The generic syscall table (include/uapi/asm-generic/unistd.h). */
#define PT_SYSCALL_NR(regs) ((__u32)(regs)->syscallno)
#define PT_NR_READ 63
#define PT_NR_WRITE 64
#define PT_NR_READV 65
#define PT_NR_WRITEV 66
#define PT_NR_SENDFILE 71
#define PT_NR_SENDTO 206
#define PT_NR_RECVFROM 207
#define PT_NR_SENDMSG 211
#define PT_NR_RECVMSG 212
#define PT_NR_RECVMMSG 243
#define PT_NR_SENDMMSG 269
#else
#error "netsys.bpf.h: syscall numbers for this architecture are missing"
#endif

#endif /* PT_NETSYS_BPF_H */
