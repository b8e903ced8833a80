// SPDX-License-Identifier: Apache-2.0
/*
 * net.bpf.c - the TCP and UDP connections of traced processes: opened
 * (connect, accept, or first used after tracing began), the bytes their
 * data syscalls moved, closed (the socket file's last close); in raw mode
 * (net_data) the bytes themselves, with their position in the stream.
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

/* Set by the loader before load: net_data events are on. */
const volatile bool pt_net_data_events = false;

/* Buffers of a vector call read at most (the kernel's UIO_MAXIOV). */
#define PT_IOV_MAX 1024

/* What a syscall in flight will do with its fd. */
enum { PT_NET_NONE, PT_NET_CONNECT, PT_NET_SEND, PT_NET_RECV };
/* Where its bytes are: one buffer, an iovec array, a struct user_msghdr,
 * none (sendfile: from a file). */
enum { PT_BUF_ONE, PT_BUF_IOV, PT_BUF_MSG, PT_BUF_NONE };

struct pt_net_call {
	__s32 fd;
	__u32 what;
	__u64 buf;
	__u64 count; /* bytes, or iovecs */
	__u32 how;   /* PT_BUF_* */
	__u32 pad;
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

/* The entry of a syscall on an fd a traced process makes, with where its
 * bytes are (the exit reads them). */
static __always_inline int pt_net_enter(__s32 fd, __u32 what, __u64 buf, __u64 count, __u32 how)
{
	struct task_struct *task = pt_traced_current();
	struct pt_net_call *c;

	if (!task)
		return 0;
	c = bpf_task_storage_get(&pt_net_calls, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (c) {
		c->fd = fd;
		c->what = what;
		c->buf = buf;
		c->count = count;
		c->how = how;
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
	return pt_net_enter((__s32)ctx->args[0], PT_NET_CONNECT, 0, 0, PT_BUF_ONE);
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

/* An iovec array being appended (bpf_loop's context). */
struct pt_net_iov_walk {
	struct pt_emit *e;
	const struct iovec *iov;
	__u64 want; /* bytes moved not yet appended */
};

/* Appends buffer i; 1 (stop) at the cap or an unreadable buffer. */
static long pt_net_iovec(__u32 i, void *ctx)
{
	struct pt_net_iov_walk *w = ctx;
	struct iovec v;
	__u64 n;

	if (!w->want || bpf_probe_read_user(&v, sizeof(v), &w->iov[i]))
		return 1;
	n = v.iov_len < w->want ? v.iov_len : w->want;
	if (pt_net_data_data_upiece(w->e, v.iov_base, n) < (long)n)
		return 1;
	w->want -= n;
	return 0;
}

/* Reports len bytes moved at pos of the connection, from buf (how). */
static __always_inline void pt_data_report(struct pt_net_call *call, __u64 conn_id, __u64 pos,
					   __u64 len, __u32 how, __u64 buf, __u64 count)
{
	struct pt_emit e;
	struct pt_net_iov_walk walk = { .e = &e, .want = len, .iov = (const struct iovec *)buf };
	struct pt_net_data *r = pt_net_data_open(&e, bpf_get_current_pid_tgid());

	if (!r)
		return;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	r->fd = call->fd;
	r->conn_id = conn_id;
	r->direction = call->what == PT_NET_SEND ? PT_NET_DATA_DIRECTION_SEND
						 : PT_NET_DATA_DIRECTION_RECV;
	r->pos = pos;
	r->len = len;
	if (how == PT_BUF_NONE) {
		pt_net_data_set_truncated(&e); /* no bytes to read: a gap */
	} else if (pt_net_data_reserve(&e,
				       len > PT_NET_DATA_DATA_MAX ? PT_NET_DATA_DATA_MAX : len)) {
		if (how == PT_BUF_MSG) {
			struct user_msghdr m = {};

			bpf_probe_read_user(&m, sizeof(m), (const void *)buf);
			walk.iov = m.msg_iov;
			count = m.msg_iovlen;
		}
		if (how == PT_BUF_ONE)
			pt_net_data_data_umem(&e, (const void *)buf, len);
		else
			bpf_loop(count < PT_IOV_MAX ? count : PT_IOV_MAX, pt_net_iovec, &walk, 0);
		if (r->data_len < len)
			pt_net_data_set_truncated(&e);
	}
	pt_net_data_commit(&e);
}

/* The connection of a traced process' data syscall on fd, first seen now
 * (role unknown) if it was not followed; NULL when fd is not one. */
static __always_inline struct pt_conn *pt_data_conn(__s32 fd)
{
	struct pt_conn *conn;
	struct file *file;
	struct sock *sk;
	__u64 key;

	if (!(sk = pt_fd_sock(fd, &file)))
		return NULL;
	key = (__u64)sk;
	conn = bpf_map_lookup_elem(&pt_conns, &key);
	if (conn)
		return conn;
	pt_conn_opened(fd, sk, PT_CONN_OPEN_ROLE_UNKNOWN);
	return bpf_map_lookup_elem(&pt_conns, &key);
}

/* A data syscall moved ret bytes: count them on its connection, which is
 * opened (role unknown) when this is its first sight. */
static __always_inline int pt_data_exit(long ret)
{
	struct pt_net_call call;
	struct pt_conn *conn;
	__u64 pos;

	if (!pt_net_exit(&call) || ret <= 0 ||
	    (call.what != PT_NET_SEND && call.what != PT_NET_RECV) ||
	    !(conn = pt_data_conn(call.fd)))
		return 0;
	/* The stream position: every byte counted, reported or not. */
	pos = __sync_fetch_and_add(call.what == PT_NET_SEND ? &conn->sent : &conn->received, ret);
	if (pt_net_data_events)
		pt_data_report(&call, conn->id, pos, ret, call.how, call.buf, call.count);
	return 0;
}

/* recvmmsg and sendmmsg: every message moved, in order (bpf_loop's context). */
struct pt_mmsg_walk {
	struct pt_net_call *call;
	struct pt_conn *conn;
	const struct mmsghdr *vec;
};

static long pt_mmsg_one(__u32 i, void *ctx)
{
	struct pt_mmsg_walk *w = ctx;
	struct pt_conn *conn = w->conn;
	struct mmsghdr m;
	__u64 pos;

	if (bpf_probe_read_user(&m, sizeof(m), &w->vec[i]))
		return 1;
	if (!m.msg_len)
		return 0;
	pos = __sync_fetch_and_add(w->call->what == PT_NET_SEND ? &conn->sent : &conn->received,
				   m.msg_len);
	if (pt_net_data_events)
		pt_data_report(w->call, conn->id, pos, m.msg_len, PT_BUF_IOV,
			       (__u64)m.msg_hdr.msg_iov, m.msg_hdr.msg_iovlen);
	return 0;
}

/* Messages of one mmsg call read at most (the kernel's UIO_MAXIOV). */
#define PT_MMSG_MAX 1024

static __always_inline int pt_mmsg_exit(long ret)
{
	struct pt_net_call call;
	struct pt_mmsg_walk w = { .call = &call };

	if (!pt_net_exit(&call) || ret <= 0 || !(w.conn = pt_data_conn(call.fd)))
		return 0;
	w.vec = (const struct mmsghdr *)call.buf;
	bpf_loop(ret < PT_MMSG_MAX ? ret : PT_MMSG_MAX, pt_mmsg_one, &w, 0);
	return 0;
}

/* A data syscall's two programs (conn_close.toml lists them, exits first). */
#define PT_DATA_SYSCALL(name, what, how)                                                           \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                                 \
	int pt_##name##_net_exit(struct trace_event_raw_sys_exit *ctx)                             \
	{                                                                                          \
		return pt_data_exit(ctx->ret);                                                     \
	}                                                                                          \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                                \
	int pt_##name##_net_enter(struct trace_event_raw_sys_enter *ctx)                           \
	{                                                                                          \
		return pt_net_enter((__s32)ctx->args[0], what, ctx->args[1], ctx->args[2], how);   \
	}

PT_DATA_SYSCALL(read, PT_NET_RECV, PT_BUF_ONE)
PT_DATA_SYSCALL(readv, PT_NET_RECV, PT_BUF_IOV)
PT_DATA_SYSCALL(recvfrom, PT_NET_RECV, PT_BUF_ONE)
PT_DATA_SYSCALL(recvmsg, PT_NET_RECV, PT_BUF_MSG)
PT_DATA_SYSCALL(write, PT_NET_SEND, PT_BUF_ONE)
PT_DATA_SYSCALL(writev, PT_NET_SEND, PT_BUF_IOV)
PT_DATA_SYSCALL(sendto, PT_NET_SEND, PT_BUF_ONE)
PT_DATA_SYSCALL(sendmsg, PT_NET_SEND, PT_BUF_MSG)

/* recvmmsg and sendmmsg return how many messages moved. */
#define PT_MMSG_SYSCALL(name, what)                                                                \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                                 \
	int pt_##name##_net_exit(struct trace_event_raw_sys_exit *ctx)                             \
	{                                                                                          \
		return pt_mmsg_exit(ctx->ret);                                                     \
	}                                                                                          \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                                \
	int pt_##name##_net_enter(struct trace_event_raw_sys_enter *ctx)                           \
	{                                                                                          \
		return pt_net_enter((__s32)ctx->args[0], what, ctx->args[1], ctx->args[2],         \
				    PT_BUF_IOV);                                                   \
	}

PT_MMSG_SYSCALL(recvmmsg, PT_NET_RECV)
PT_MMSG_SYSCALL(sendmmsg, PT_NET_SEND)

/* sendfile(out_fd, in_fd, offset, count): bytes from a file, none to read. */
SEC("tracepoint/syscalls/sys_exit_sendfile64")
int pt_sendfile64_net_exit(struct trace_event_raw_sys_exit *ctx)
{
	return pt_data_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_sendfile64")
int pt_sendfile64_net_enter(struct trace_event_raw_sys_enter *ctx)
{
	return pt_net_enter((__s32)ctx->args[0], PT_NET_SEND, 0, 0, PT_BUF_NONE);
}
