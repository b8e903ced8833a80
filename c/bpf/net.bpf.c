// SPDX-License-Identifier: Apache-2.0
/*
 * net.bpf.c - the TCP and UDP connections of traced processes: first seen
 * (at their first message, or their close), the bytes every message moved,
 * closed (the socket's release: its file's last close); in raw mode
 * (net_data) the bytes themselves, with their position in the stream.
 *
 * No syscall is hooked. The socket layer's own tracepoints fire once per
 * message (sock_send_length, sock_recv_length: in sock_sendmsg and
 * sock_recvmsg, so on sockets only, after the bytes moved), the TCP state
 * tracepoint gives the role, and a cgroup sock_release program the close.
 * The syscall that moved the bytes, and where its buffers are, come from
 * the thread's saved user registers. So a process that is not traced pays
 * nothing outside socket calls, and one filter check in them.
 *
 * A connection's state lives in its socket's own storage (sk_storage):
 * freed with the socket, so never inherited by a later one at the same
 * address, and never leaked. Its id is unique for the host's uptime.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "pt_kinds.bpf.h"
#include "lib/filter.bpf.h"
#include "lib/netsys.bpf.h"

#define PT_AF_INET 2
#define PT_AF_INET6 10
#define PT_SOCK_STREAM 1
#define PT_SOCK_DGRAM 2
#define PT_MSG_PEEK 2
#define PT_MSG_ERRQUEUE 0x2000
#define PT_PF_IO_WORKER 0x00000010
#define PT_PF_KTHREAD 0x00200000
#define PT_TCP_ESTABLISHED 1
#define PT_TCP_SYN_SENT 2
#define PT_TCP_SYN_RECV 3

/* Set by the loader before load: net_data events are on. */
const volatile bool pt_net_data_events = false;

/* Bumped by the loader after it adds to pt_net_giveup: connections check
 * that map only when this moved since they last looked. */
volatile __u64 pt_net_giveup_gen = 0;

/* Buffers of a vector call read at most (the kernel's UIO_MAXIOV). */
#define PT_IOV_MAX 1024

enum { PT_NET_SEND = 1, PT_NET_RECV = 2 };

/* A connection, in its socket's storage. */
struct pt_conn {
	__u64 id;   /* 0: not seen by a traced process yet (role only) */
	__u64 sent; /* bytes, by every message since first seen */
	__u64 received;
	__u64 giveup_gen; /* pt_net_giveup_gen when last checked */
	__u32 role;
	__s32 fd;
	__u32 protocol;
	__u32 family;
	struct pt_sockaddr local;
	struct pt_sockaddr remote;
	__u8 given_up; /* userspace stopped capture: count only */
	__u8 pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pt_conn);
} pt_conns SEC(".maps");

/* Connections userspace gave up on (by id); entries leave as they are
 * seen, and the oldest make room (LRU) when a connection ended before it
 * could take its own. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u64);
	__type(value, __u8);
	__uint(max_entries, 4096);
} pt_net_giveup SEC(".maps");

/* Where the thread is in its recvmmsg or sendmmsg: those move several
 * messages in one call, one tracepoint each, in order. */
struct pt_mmsg_cursor {
	__u64 vec;
	__u64 last_len; /* the previous message's bytes */
	__u32 vlen;
	__u32 next; /* the message the next tracepoint is */
	__s32 fd;
	__u32 nr;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pt_mmsg_cursor);
} pt_net_calls SEC(".maps");

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
 * them. */
static __always_inline void pt_sock_ends(struct sock *sk, struct pt_conn *c)
{
	c->protocol = BPF_CORE_READ(sk, sk_type) == PT_SOCK_STREAM ? PT_CONN_OPEN_PROTOCOL_TCP
								   : PT_CONN_OPEN_PROTOCOL_UDP;
	if (BPF_CORE_READ(sk, __sk_common.skc_family) == PT_AF_INET) {
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(c->local.addr, &l, 4);
		__builtin_memcpy(c->remote.addr, &r, 4);
		c->local.family = c->remote.family = 4;
	} else {
		pt_v6_addr(&c->local, &sk->__sk_common.skc_v6_rcv_saddr);
		pt_v6_addr(&c->remote, &sk->__sk_common.skc_v6_daddr);
	}
	c->family = c->local.family == 4 ? PT_CONN_OPEN_FAMILY_IPV4 : PT_CONN_OPEN_FAMILY_IPV6;
	c->local.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	c->remote.port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (!c->remote.port) /* not connected (UDP): no peer */
		__builtin_memset(&c->remote, 0, sizeof(c->remote));
}

/* A TCP or UDP socket over IPv4 or IPv6. */
static __always_inline bool pt_sock_followable(struct sock *sk)
{
	__u16 family = sk->__sk_common.skc_family;
	__u16 type = sk->sk_type;

	return (family == PT_AF_INET || family == PT_AF_INET6) &&
	       (type == PT_SOCK_STREAM || type == PT_SOCK_DGRAM);
}

/* A traced user thread (not a kernel thread: their sockets are the
 * kernel's), or NULL. */
static __always_inline struct task_struct *pt_net_task(void)
{
	struct task_struct *task = pt_traced_current();

	if (!task || (task->flags & PT_PF_KTHREAD))
		return NULL;
	return task;
}

/* The role the TCP handshake gives, kept in the socket's storage before
 * the connection is seen: connecting (a traced process) makes a client;
 * the socket a listener made for a handshake (in softirq: no process to
 * filter) a server. Established, its ends are kept too, for a connection
 * closed before it moves a byte. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(pt_sock_state, struct sock *sk, int oldstate, int newstate)
{
	struct pt_conn *c;
	__u32 role;

	if (newstate == PT_TCP_ESTABLISHED) {
		c = bpf_sk_storage_get(&pt_conns, sk, 0, 0);
		if (c && !c->id)
			pt_sock_ends(sk, c);
		return 0;
	}
	if (newstate == PT_TCP_SYN_SENT && pt_net_task())
		role = PT_CONN_OPEN_ROLE_CLIENT;
	else if (newstate == PT_TCP_SYN_RECV)
		role = PT_CONN_OPEN_ROLE_SERVER;
	else
		return 0;
	c = bpf_sk_storage_get(&pt_conns, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (c && !c->id)
		c->role = role;
	return 0;
}

/* A connection seen by a traced process for the first time (its ends
 * filled): given its id and reported open. */
static __always_inline void pt_conn_opened(struct pt_conn *c, __s32 fd)
{
	struct pt_conn_open *r;
	struct pt_emit e;

	/* Unique for the uptime: no CPU sees two sockets in one nanosecond. */
	__u64 id = bpf_ktime_get_ns() << 8 | (bpf_get_smp_processor_id() & 0xff);

	/* Two threads may see it first at once: one reports it. */
	if (__sync_val_compare_and_swap(&c->id, 0, id))
		return;
	c->fd = fd;
	c->giveup_gen = pt_net_giveup_gen;
	r = pt_conn_open_open(&e, bpf_get_current_pid_tgid());
	if (!r)
		return;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	r->fd = fd;
	r->conn_id = id;
	r->role = c->role;
	r->protocol = c->protocol;
	r->family = c->family;
	r->local = c->local;
	r->remote = c->remote;
	pt_conn_open_commit(&e);
}

/* The socket's release (its file's last close): a connection a traced
 * process saw is reported closed, with its bytes; one it never used is
 * reported opened and closed, when the closing process is traced. */
SEC("cgroup/sock_release")
int pt_sock_release(struct bpf_sock *ctx)
{
	struct pt_conn *c = bpf_sk_storage_get(&pt_conns, ctx, 0, 0);
	struct pt_conn_close *r;
	struct pt_emit e;

	/* Not seen yet: a TCP connection whose handshake completed (its ends
	 * are known) is, if the process is traced. */
	if (!c || (!c->id && (!c->protocol || !pt_net_task())))
		return 1;
	if (!c->id)
		pt_conn_opened(c, -1);
	r = pt_conn_close_open(&e, bpf_get_current_pid_tgid());
	if (r) {
		bpf_get_current_comm(r->comm, sizeof(r->comm));
		r->fd = c->fd;
		r->conn_id = c->id;
		r->role = c->role;
		r->protocol = c->protocol;
		r->family = c->family;
		r->local = c->local;
		r->remote = c->remote;
		r->sent_bytes = c->sent;
		r->received_bytes = c->received;
		pt_conn_close_commit(&e);
	}
	return 1;
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

/* Where a message's bytes are in the caller's memory. */
struct pt_msg_bufs {
	__u64 buf;   /* one buffer, or an iovec array */
	__u64 count; /* iovecs; 0: buf is one buffer */
	__u64 size;  /* one buffer's size (a MSG_TRUNC receive returns more) */
	bool none;   /* no user buffer (sendfile, io_uring, ...) */
};

/* Reports len bytes moved at pos of the connection. */
static __always_inline void pt_data_report(struct pt_conn *c, __u32 direction, __u64 pos, __u64 len,
					   struct pt_msg_bufs *b)
{
	struct pt_emit e;
	struct pt_net_iov_walk walk = { .e = &e, .want = len, .iov = (const struct iovec *)b->buf };
	struct pt_net_data *r = pt_net_data_open(&e, bpf_get_current_pid_tgid());

	if (!r)
		return;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	r->fd = c->fd;
	r->conn_id = c->id;
	r->direction = direction == PT_NET_SEND ? PT_NET_DATA_DIRECTION_SEND
						: PT_NET_DATA_DIRECTION_RECV;
	r->pos = pos;
	r->len = len;
	if (b->none) {
		pt_net_data_set_truncated(&e); /* no bytes: a gap */
	} else if (pt_net_data_reserve(&e,
				       len > PT_NET_DATA_DATA_MAX ? PT_NET_DATA_DATA_MAX : len)) {
		if (!b->count)
			pt_net_data_data_umem(&e, (const void *)b->buf,
					      len < b->size ? len : b->size);
		else
			bpf_loop(b->count < PT_IOV_MAX ? b->count : PT_IOV_MAX, pt_net_iovec, &walk,
				 0);
		if (r->data_len < len)
			pt_net_data_set_truncated(&e);
	}
	pt_net_data_commit(&e);
}

/* Message idx of an mmsg vector: where its iovecs are; false if unreadable. */
static __always_inline bool pt_mmsg_bufs(__u64 vec, __u32 idx, struct pt_msg_bufs *b,
					 __u32 *kernel_len)
{
	struct mmsghdr m;

	if (bpf_probe_read_user(&m, sizeof(m), &((const struct mmsghdr *)vec)[idx]))
		return false;
	b->buf = (__u64)m.msg_hdr.msg_iov;
	b->count = m.msg_hdr.msg_iovlen;
	*kernel_len = m.msg_len;
	return true;
}

/*
 * Which message of the thread's recvmmsg or sendmmsg this is. The kernel
 * moves them in order, one tracepoint each, and writes each one's length
 * into the caller's vector after it: the thread's cursor continues while
 * the call does (same fd and vector, the previous message's length written
 * back as seen), and restarts at 0 otherwise. A call ends early only on an
 * error (a tracepoint with ret < 0 resets the cursor), or when a
 * recvmmsg's timeout expires between two messages: nothing then tells the
 * next call's first message from the old call's next one, so a recvmmsg
 * with a timeout gives its messages after the first without bytes (a gap,
 * flagged) rather than risk the bytes of the wrong buffer.
 */
static __always_inline bool pt_mmsg_message(struct task_struct *task, __u32 nr, __s32 fd, __u64 vec,
					    __u32 vlen, __u64 timeout, long ret,
					    struct pt_msg_bufs *b)
{
	struct pt_mmsg_cursor *k = bpf_task_storage_get(&pt_net_calls, task, 0,
							BPF_LOCAL_STORAGE_GET_F_CREATE);
	struct pt_msg_bufs prev;
	__u32 idx = 0, written;

	if (!k)
		return false;
	if (k->nr == nr && k->fd == fd && k->vec == vec && k->vlen == vlen && k->next &&
	    k->next < vlen && pt_mmsg_bufs(vec, k->next - 1, &prev, &written) &&
	    written == k->last_len)
		idx = k->next;
	if (ret < 0) { /* the call ends here */
		k->next = 0;
		return false;
	}
	k->nr = nr;
	k->fd = fd;
	k->vec = vec;
	k->vlen = vlen;
	k->next = idx + 1;
	k->last_len = ret;
	if (nr == PT_NR_RECVMMSG && timeout && idx > 0)
		return false;
	return pt_mmsg_bufs(vec, idx, b, &written);
}

/* The syscall that moved a message, from the thread's user registers: its
 * fd (-1 when unknown) and where its bytes are. */
static __always_inline __s32 pt_msg_source(struct task_struct *task, long ret,
					   struct pt_msg_bufs *b)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	__u32 nr = PT_SYSCALL_NR(regs);
	__s32 fd = PT_REGS_PARM1_SYSCALL(regs);
	__u64 arg2 = PT_REGS_PARM2_SYSCALL(regs);

	b->buf = arg2;
	b->count = 0;
	b->size = PT_REGS_PARM3_SYSCALL(regs);
	b->none = false;
	/* io_uring's workers carry their creator's registers, not a call. */
	if (task->flags & PT_PF_IO_WORKER) {
		b->none = true;
		return -1;
	}
	switch (nr) {
	case PT_NR_READ:
	case PT_NR_WRITE:
	case PT_NR_RECVFROM:
	case PT_NR_SENDTO:
		return fd;
	case PT_NR_READV:
	case PT_NR_WRITEV:
		b->count = PT_REGS_PARM3_SYSCALL(regs);
		return fd;
	case PT_NR_RECVMSG:
	case PT_NR_SENDMSG: {
		struct user_msghdr m;

		if (bpf_probe_read_user(&m, sizeof(m), (const void *)arg2))
			b->none = true;
		b->buf = (__u64)m.msg_iov;
		b->count = m.msg_iovlen;
		return fd;
	}
	case PT_NR_RECVMMSG:
	case PT_NR_SENDMMSG:
		if (!pt_mmsg_message(task, nr, fd, arg2, PT_REGS_PARM3_SYSCALL(regs),
				     PT_REGS_PARM5_SYSCALL(regs), ret, b))
			b->none = true;
		return fd;
	case PT_NR_SENDFILE:
		b->none = true;
		return fd;
	default: /* sent from the kernel for the thread: no buffer, no fd */
		b->none = true;
		return -1;
	}
}

/* Whether userspace gave up on the connection (checked only when it gave
 * up on some connection since this one last looked). */
static __always_inline bool pt_conn_given_up(struct pt_conn *c)
{
	__u64 gen = pt_net_giveup_gen;

	if (c->given_up || gen == c->giveup_gen)
		return c->given_up;
	c->giveup_gen = gen;
	if (bpf_map_lookup_elem(&pt_net_giveup, &c->id)) {
		c->given_up = 1;
		bpf_map_delete_elem(&pt_net_giveup, &c->id);
	}
	return c->given_up;
}

/* A message of ret bytes moved on sk in direction: counted on its
 * connection (seen now if it is new), reported in raw mode. */
static __always_inline int pt_sock_moved(struct sock *sk, long ret, __u32 direction)
{
	struct task_struct *task = pt_net_task();
	struct pt_msg_bufs b;
	struct pt_conn *c;
	__s32 fd;
	__u64 pos;

	if (!task || !pt_sock_followable(sk))
		return 0;
	fd = pt_msg_source(task, ret, &b);
	if (ret <= 0)
		return 0;
	c = bpf_sk_storage_get(&pt_conns, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!c) {
		struct pt_emit e;

		if (pt_emit_init(&e))
			pt_emit_count(&e, PT_CTR_CONN_OPEN_NOT_FOLLOWED);
		return 0;
	}
	if (!c->id) {
		pt_sock_ends(sk, c);
		/* UDP has no handshake: who sends first is the client. */
		if (c->protocol == PT_CONN_OPEN_PROTOCOL_UDP && !c->role)
			c->role = direction == PT_NET_SEND ? PT_CONN_OPEN_ROLE_CLIENT
							   : PT_CONN_OPEN_ROLE_SERVER;
		pt_conn_opened(c, fd);
	}
	/* The stream position: every byte counted, reported or not. */
	pos = __sync_fetch_and_add(direction == PT_NET_SEND ? &c->sent : &c->received, ret);
	if (pt_net_data_events && !pt_conn_given_up(c))
		pt_data_report(c, direction, pos, ret, &b);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(pt_sock_sent, struct sock *sk, int ret, int flags)
{
	return pt_sock_moved(sk, ret, PT_NET_SEND);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(pt_sock_received, struct sock *sk, int ret, int flags)
{
	/* Peeked bytes stay queued (the next read moves them); the error
	 * queue is not the stream. */
	if (flags & (PT_MSG_PEEK | PT_MSG_ERRQUEUE))
		return 0;
	return pt_sock_moved(sk, ret, PT_NET_RECV);
}
