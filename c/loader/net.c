// SPDX-License-Identifier: Apache-2.0
/*
 * net.c - the net family (TCP and UDP connections): conn_open follows a
 * connection from its first message and conn_close reports its end with
 * the bytes its messages moved, so they come together; net_data (raw mode)
 * reports those bytes, from the same programs. A consumer that classified
 * a connection as nothing it parses gives up on it: its bytes are then
 * counted, not copied.
 */
#include <errno.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include "internal.h"
#include "proctap.skel.h"

static int net_check(const struct proctap_config *c, struct proctap_error *err)
{
	bool open = c->events & PROCTAP_EVENT(PT_KIND_CONN_OPEN);
	bool close = c->events & PROCTAP_EVENT(PT_KIND_CONN_CLOSE);

	bool data = c->events & PROCTAP_EVENT(PT_KIND_NET_DATA);

	if (open != close)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "events", NULL,
			       "conn_open and conn_close come together: enable both");
	if (data && !open)
		return pt_fail(err, PROCTAP_E_CONFIG, EINVAL, "events", NULL,
			       "net_data needs conn_open and conn_close (its connections)");
	return PROCTAP_OK;
}

/*
 * Data pages per CPU for raw mode when the config leaves them to us: 2 MiB.
 * A server's messages flow at hundreds of MB/s per CPU, and the ring must
 * hold what arrives while the poll thread is woken (measured with nginx
 * under wrk on a 2-vCPU VM: 64 pages lost the bytes of 6% of messages, 256
 * pages 1.7%, 512 pages 0.02%, with a tenth of the wake-ups).
 */
#define NET_DATA_PAGES 512

static __u32 net_default_pages(const struct proctap_config *c)
{
	return c->events & PROCTAP_EVENT(PT_KIND_NET_DATA) ? NET_DATA_PAGES : 0;
}

/*
 * The socket layer's per-message tracepoints (sock_send_length and
 * sock_recv_length, Linux 6.3 and later): every connection kind hangs on
 * them. An older kernel gets a typed error naming them, not a load failure.
 */
static int net_check_kernel(struct proctap_error *err)
{
	static const struct {
		const char *tp, *feature, *program;
	} need[] = {
		{ "sock_send_length", "tracepoint sock_send_length", "pt_sock_sent" },
		{ "sock_recv_length", "tracepoint sock_recv_length", "pt_sock_received" },
	};

	for (unsigned i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (pt_tracepoint_arg_kind(need[i].tp, 1) != BTF_KIND_PTR) /* (ctx, sk, ...) */
			return pt_fail(
				err, PROCTAP_E_UNSUPPORTED, ENOTSUP, need[i].feature,
				need[i].program,
				"connection and net_data events need the kernel's tracepoints "
				"sock_send_length and sock_recv_length (Linux 6.3 and later); "
				"this kernel has no %s",
				need[i].tp);
	return PROCTAP_OK;
}

static int net_configure(struct proctap *pt, struct proctap_error *err)
{
	int e = net_check_kernel(err);

	if (e)
		return e;
	pt->skel->rodata->pt_net_data_events = pt->cfg.events & PROCTAP_EVENT(PT_KIND_NET_DATA);
	return PROCTAP_OK;
}

int proctap_net_give_up(struct proctap *pt, __u64 conn_id)
{
	__u8 one = 1;

	if (!(pt->cfg.events & PROCTAP_EVENT(PT_KIND_NET_DATA)))
		return -EINVAL;
	if (bpf_map_update_elem(bpf_map__fd(pt->skel->maps.pt_net_giveup), &conn_id, &one, BPF_ANY))
		return -errno;
	/* Connections look at the map only when this moved. */
	__atomic_fetch_add(&pt->skel->bss->pt_net_giveup_gen, 1, __ATOMIC_RELEASE);
	return 0;
}

static const char *const net_maps[] = { "pt_conns", "pt_net_calls", "pt_net_giveup", NULL };

const struct pt_family pt_family_net = {
	.name = "net",
	.kinds = PT_FAMILY_NET_KINDS,
	.maps = net_maps,
	.default_pages = net_default_pages,
	.check = net_check,
	.configure = net_configure,
};
