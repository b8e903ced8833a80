/* Socket storm: one thread, pinned to CPU 0, makes one syscall after
 * another until the time is up, then prints its totals as one JSON line on
 * stdout. Its command name is pt-netstorm.
 *
 *   gcc -O2 -Wall -o build/bench/pt-netstorm bench/netstorm.c
 *   pt-netstorm --seconds S --mode udp|tcp|getppid [--size BYTES]
 *
 * udp: a connected UDP pair on 127.0.0.1; each op is write(a, SIZE) then
 * read(b): two socket syscalls that move SIZE bytes each.
 * tcp: a TCP connection on 127.0.0.1, the same two calls per op (the read
 * loops until SIZE bytes arrived, counting each call).
 * getppid: one syscall that is not a socket's, per op.
 * Output: {"mode":M,"size":S,"ops":N,"syscalls":C,"seconds":T,"ns_per_syscall":X}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "pt-netstorm: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* A connected pair of sockets of type on 127.0.0.1: a sends, b receives. */
static void pair(int type, int *a, int *b)
{
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);
	int l = socket(AF_INET, type, 0), one = 1;

	if (l < 0 || bind(l, (struct sockaddr *)&addr, len) ||
	    getsockname(l, (struct sockaddr *)&addr, &len))
		die("bind");
	*a = socket(AF_INET, type, 0);
	if (type == SOCK_STREAM) {
		if (listen(l, 1) || connect(*a, (struct sockaddr *)&addr, len) ||
		    (*b = accept(l, NULL, NULL)) < 0)
			die("connect");
		close(l);
		setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	} else {
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);

		if (connect(*a, (struct sockaddr *)&addr, len) ||
		    getsockname(*a, (struct sockaddr *)&from, &flen) ||
		    connect(l, (struct sockaddr *)&from, flen))
			die("connect");
		*b = l;
	}
}

int main(int argc, char **argv)
{
	const char *mode = "udp";
	double seconds = 2, start, deadline;
	long size = 64;
	unsigned long long ops = 0, calls = 0;
	int a = -1, b = -1;
	char *buf;
	cpu_set_t cpus;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--seconds"))
			seconds = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--mode"))
			mode = argv[i + 1];
		else if (!strcmp(argv[i], "--size"))
			size = atol(argv[i + 1]);
	}
	if (size < 1 || size > 65000 || seconds <= 0) {
		fprintf(stderr, "pt-netstorm: --size 1..65000, --seconds > 0\n");
		return 2;
	}
	prctl(PR_SET_NAME, "pt-netstorm");
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);
	buf = calloc(1, size);
	memset(buf, 'x', size);
	if (!strcmp(mode, "udp"))
		pair(SOCK_DGRAM, &a, &b);
	else if (!strcmp(mode, "tcp"))
		pair(SOCK_STREAM, &a, &b);
	else if (strcmp(mode, "getppid"))
		return fprintf(stderr, "pt-netstorm: unknown mode %s\n", mode), 2;
	start = now();
	deadline = start + seconds;
	while (now() < deadline) {
		for (int i = 0; i < BATCH; i++, ops++) {
			if (a < 0) {
				syscall(SYS_getppid);
				calls++;
				continue;
			}
			if (write(a, buf, size) != size)
				die("write");
			calls++;
			for (long got = 0; got < size; calls++) {
				ssize_t n = read(b, buf, size - got);

				if (n <= 0)
					die("read");
				got += n;
			}
		}
	}
	seconds = now() - start;
	printf("{\"mode\":\"%s\",\"size\":%ld,\"ops\":%llu,\"syscalls\":%llu,\"seconds\":%.3f,"
	       "\"ns_per_syscall\":%.1f}\n",
	       mode, size, ops, calls, seconds, seconds * 1e9 / calls);
	return 0;
}
