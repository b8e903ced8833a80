// SPDX-License-Identifier: Apache-2.0
/*
 * net.bpf.c - the TCP and UDP connections of traced processes: opened
 * (connect, accept, or first used after tracing began), the bytes their
 * data syscalls moved, closed (the socket file's last close).
 *
 * A connection is keyed by its struct sock, with an id unique for the
 * host's uptime. The fd is confirmed to be an AF_INET or AF_INET6 socket
 * in the kernel (its file's inode is a socket). Each syscall's entry keeps
 * the fd in the thread's own storage (not lib/call.bpf.h's slot: write and
 * writev are the write kind's too); its exit reports. A process that is
 * not traced costs one lookup.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "pt_kinds.bpf.h"
#include "lib/filter.bpf.h"

#define PT_AF_INET 2
#define PT_AF_INET6 10
#define PT_S_IFMT 00170000
#define PT_S_IFSOCK 0140000
#define PT_EINPROGRESS 115
#define PT_SOCK_STREAM 1
#define PT_SOCK_DGRAM 2

/* What a syscall in flight will do with its fd. */
enum { PT_NET_NONE, PT_NET_CONNECT, PT_NET_SEND, PT_NET_RECV };

struct pt_net_call {
	__s32 fd;
	__u32 what;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pt_net_call);
} pt_net_calls SEC(".maps");

/* A connection seen, by its struct sock. */
struct pt_conn {
	__u64 id;
	__u64 sent;
	__u64 received;
	__u32 role;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, struct pt_conn);
	__uint(max_entries, 65536);
} pt_conns SEC(".maps");

/* Before Linux 6.13 a file counted its references in f_count. */
struct file___pre613 {
	atomic_long_t f_count;
} __attribute__((preserve_access_index));

/* Whether this close drops the file's last reference. */
static __always_inline bool pt_file_last_ref(struct file *file)
{
	if (bpf_core_field_exists(struct file___pre613, f_count))
		return BPF_CORE_READ((struct file___pre613 *)file, f_count.counter) == 1;
	/* file_ref_t: 0 is one reference. */
	return BPF_CORE_READ(file, f_ref.refcnt.counter) == 0;
}

/* The current task's fd as an AF_INET or AF_INET6 socket, or NULL. */
static __always_inline struct sock *pt_fd_sock(__s32 fd, struct file **filep)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	struct socket *sock;
	struct sock *sk;
	__u16 family;

	if (fd < 0 || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	if (!file || (BPF_CORE_READ(file, f_inode, i_mode) & PT_S_IFMT) != PT_S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (!sk || (family != PT_AF_INET && family != PT_AF_INET6))
		return NULL;
	*filep = file;
	return sk;
}

/* An IPv6 address, IPv4-mapped ones as IPv4. */
static __always_inline void pt_v6_addr(struct pt_sockaddr *a, const struct in6_addr *src)
{
	bpf_probe_read_kernel(a->addr, 16, src);
	if (!(a->addr[0] | a->addr[1] | a->addr[2] | a->addr[3] | a->addr[4] | a->addr[5] |
	      a->addr[6] | a->addr[7] | a->addr[8] | a->addr[9]) &&
	    a->addr[10] == 0xff && a->addr[11] == 0xff) {
		__builtin_memmove(a->addr, a->addr + 12, 4);
		__builtin_memset(a->addr + 4, 0, 12);
		a->family = 4;
	} else {
		a->family = 6;
	}
}

/* The connection's protocol, family and addresses, as the records show
 * them; false when it is neither TCP nor UDP. */
static __always_inline bool pt_sock_ends(struct sock *sk, __u32 *protocol, __u32 *family,
					 struct pt_sockaddr *local, struct pt_sockaddr *remote)
{
	__u16 type = BPF_CORE_READ(sk, sk_type);

	if (type == PT_SOCK_STREAM)
		*protocol = PT_CONN_OPEN_PROTOCOL_TCP;
	else if (type == PT_SOCK_DGRAM)
		*protocol = PT_CONN_OPEN_PROTOCOL_UDP;
	else
		return false;
	if (BPF_CORE_READ(sk, __sk_common.skc_family) == PT_AF_INET) {
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(local->addr, &l, 4);
		__builtin_memcpy(remote->addr, &r, 4);
		local->family = remote->family = 4;
	} else {
		pt_v6_addr(local, &sk->__sk_common.skc_v6_rcv_saddr);
		pt_v6_addr(remote, &sk->__sk_common.skc_v6_daddr);
	}
	*family = local->family == 4 ? PT_CONN_OPEN_FAMILY_IPV4 : PT_CONN_OPEN_FAMILY_IPV6;
	local->port = BPF_CORE_READ(sk, __sk_common.skc_num);
	remote->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (!remote->port) /* not connected (UDP): no peer */
		__builtin_memset(remote, 0, sizeof(*remote));
	return true;
}

/* A new connection (replacing what was known of its socket), reported. */
static __always_inline void pt_conn_opened(__s32 fd, struct sock *sk, __u32 role)
{
	__u64 key = (__u64)sk, pid_tgid = bpf_get_current_pid_tgid();
	struct pt_conn c = { .role = role };
	struct pt_conn_open *r;
	struct pt_emit e;

	/* Unique for the uptime: no CPU sees two sockets in one nanosecond. */
	c.id = bpf_ktime_get_ns() << 8 | (bpf_get_smp_processor_id() & 0xff);
	if (bpf_map_update_elem(&pt_conns, &key, &c, BPF_ANY)) {
		if (pt_emit_init(&e))
			pt_emit_count(&e, PT_CTR_CONN_OPEN_NOT_FOLLOWED);
		return;
	}
	r = pt_conn_open_open(&e, pid_tgid);
	if (!r)
		return;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	r->fd = fd;
	r->conn_id = c.id;
	r->role = role;
	pt_sock_ends(sk, &r->protocol, &r->family, &r->local, &r->remote);
	pt_conn_open_commit(&e);
}

/* The entry of a syscall on an fd a traced process makes. */
static __always_inline int pt_net_enter(__s32 fd, __u32 what)
{
	struct task_struct *task = pt_traced_current();
	struct pt_net_call *c;

	if (!task)
		return 0;
	c = bpf_task_storage_get(&pt_net_calls, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (c) {
		c->fd = fd;
		c->what = what;
	}
	return 0;
}

/* The exit: what its entry kept (the slot is then free), or false. */
static __always_inline bool pt_net_exit(struct pt_net_call *out)
{
	struct pt_net_call *c = bpf_task_storage_get(&pt_net_calls, bpf_get_current_task_btf(), 0,
						     0);

	if (!c || c->what == PT_NET_NONE)
		return false;
	*out = *c;
	c->what = PT_NET_NONE;
	return true;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int pt_connect_enter(struct trace_event_raw_sys_enter *ctx)
{
	return pt_net_enter((__s32)ctx->args[0], PT_NET_CONNECT);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int pt_connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_net_call call;
	struct file *file;
	struct sock *sk;

	if (!pt_net_exit(&call) || call.what != PT_NET_CONNECT ||
	    (ctx->ret != 0 && ctx->ret != -PT_EINPROGRESS))
		return 0;
	sk = pt_fd_sock(call.fd, &file);
	if (sk)
		pt_conn_opened(call.fd, sk, PT_CONN_OPEN_ROLE_CLIENT);
	return 0;
}

/* accept and accept4 return the new socket's fd. */
static __always_inline int pt_accepted(long ret)
{
	struct file *file;
	struct sock *sk;

	if (ret < 0 || !pt_traced_current())
		return 0;
	sk = pt_fd_sock(ret, &file);
	if (sk)
		pt_conn_opened(ret, sk, PT_CONN_OPEN_ROLE_SERVER);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int pt_accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_accepted(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int pt_accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_accepted(ctx->ret);
}

/* The last close of a known connection's socket reports it. */
SEC("tracepoint/syscalls/sys_enter_close")
int pt_sock_close(struct trace_event_raw_sys_enter *ctx)
{
	__s32 fd = (__s32)ctx->args[0];
	struct pt_conn_close *r;
	struct pt_conn *conn;
	struct file *file;
	struct pt_emit e;
	struct sock *sk;
	__u64 key;

	if (!pt_traced_current() || !(sk = pt_fd_sock(fd, &file)))
		return 0;
	key = (__u64)sk;
	conn = bpf_map_lookup_elem(&pt_conns, &key);
	if (!conn || !pt_file_last_ref(file))
		return 0;
	r = pt_conn_close_open(&e, bpf_get_current_pid_tgid());
	if (r) {
		bpf_get_current_comm(r->comm, sizeof(r->comm));
		r->fd = fd;
		r->conn_id = conn->id;
		r->role = conn->role;
		r->sent_bytes = conn->sent;
		r->received_bytes = conn->received;
		pt_sock_ends(sk, &r->protocol, &r->family, &r->local, &r->remote);
		pt_conn_close_commit(&e);
	}
	bpf_map_delete_elem(&pt_conns, &key);
	return 0;
}

/* A data syscall moved ret bytes: count them on its connection, which is
 * opened (role unknown) when this is its first sight. */
static __always_inline int pt_data_exit(long ret)
{
	struct pt_net_call call;
	struct pt_conn *conn;
	struct file *file;
	struct sock *sk;
	__u64 key;

	if (!pt_net_exit(&call) || ret <= 0 ||
	    (call.what != PT_NET_SEND && call.what != PT_NET_RECV))
		return 0;
	if (!(sk = pt_fd_sock(call.fd, &file)))
		return 0;
	key = (__u64)sk;
	conn = bpf_map_lookup_elem(&pt_conns, &key);
	if (!conn) {
		pt_conn_opened(call.fd, sk, PT_CONN_OPEN_ROLE_UNKNOWN);
		conn = bpf_map_lookup_elem(&pt_conns, &key);
		if (!conn)
			return 0;
	}
	if (call.what == PT_NET_SEND)
		__sync_fetch_and_add(&conn->sent, ret);
	else
		__sync_fetch_and_add(&conn->received, ret);
	return 0;
}

/* A data syscall's two programs (conn_close.toml lists them, exits first). */
#define PT_DATA_SYSCALL(name, what)                                                                \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                                 \
	int pt_##name##_net_exit(struct trace_event_raw_sys_exit *ctx)                             \
	{                                                                                          \
		return pt_data_exit(ctx->ret);                                                     \
	}                                                                                          \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                                \
	int pt_##name##_net_enter(struct trace_event_raw_sys_enter *ctx)                           \
	{                                                                                          \
		return pt_net_enter((__s32)ctx->args[0], what);                                    \
	}

PT_DATA_SYSCALL(read, PT_NET_RECV)
PT_DATA_SYSCALL(readv, PT_NET_RECV)
PT_DATA_SYSCALL(recvfrom, PT_NET_RECV)
PT_DATA_SYSCALL(recvmsg, PT_NET_RECV)
PT_DATA_SYSCALL(write, PT_NET_SEND)
PT_DATA_SYSCALL(writev, PT_NET_SEND)
PT_DATA_SYSCALL(sendto, PT_NET_SEND)
PT_DATA_SYSCALL(sendmsg, PT_NET_SEND)
