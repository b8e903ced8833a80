/* Exec storm: every worker, pinned to its own CPU, runs vfork + execve of a
 * tiny program + waitpid in a loop until the time is up, then the totals are
 * printed as one JSON line.
 *
 *   gcc -O2 -Wall -o build/bench/storm bench/storm.c
 *   storm --seconds S --child PATH --nargs N --arglen L [--workers W]
 *
 * argv is [PATH, arg1 .. argN], every argN exactly L printable bytes that
 * start with the argument's index ("7:") and end in '.', so a captured
 * argument that is cut or missing shows. The environment is empty.
 * Output: {"execs":E,"failed":F,"seconds":T,"argv_bytes":B,"workers":W,...}
 * where execs counts children that exited 0 (the exec worked), failed those
 * that did not (a failed execve ends the child with status 127), and
 * argv_bytes is the argument area the kernel sees per exec: every argv
 * string with its NUL. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct counts {
	unsigned long long execs;
	unsigned long long failed;
	double end; /* monotonic seconds when this worker stopped */
	int cpu;
	int error; /* errno of a setup/fork failure, 0 if none */
};

static void usage(void)
{
	fprintf(stderr,
		"usage: storm --seconds S --child PATH --nargs N --arglen L [--workers W]\n");
	exit(2);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long number(const char *name, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "storm: %s: want a whole number in [%ld, %ld], got '%s'\n", name,
			min, max, s);
		exit(2);
	}
	return v;
}

/* Argument i (1-based) of len bytes: "i:" then letters, last byte '.'. */
static char *make_arg(long i, long len)
{
	char *s = malloc(len + 1);
	char prefix[32];
	long p, n;

	if (!s) {
		perror("storm: malloc");
		exit(1);
	}
	n = snprintf(prefix, sizeof(prefix), "%ld:", i);
	for (p = 0; p < len; p++)
		s[p] = p < n ? prefix[p] : 'a' + (char)((i + p) % 26);
	if (len > n)
		s[len - 1] = '.';
	s[len] = '\0';
	return s;
}

static void worker(struct counts *c, char *const argv[], double deadline, pid_t parent)
{
	char *const envp[] = { NULL };
	cpu_set_t set;

	/* Die with the storm: a killed storm leaves no worker behind. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(1);

	CPU_ZERO(&set);
	CPU_SET(c->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0) {
		c->error = errno;
		_exit(1);
	}
	while (now() < deadline) {
		int status;
		pid_t pid = vfork();

		if (pid == 0) {
			execve(argv[0], argv, envp);
			_exit(127);
		}
		if (pid < 0) {
			if (errno == EAGAIN)
				continue;
			c->error = errno;
			break;
		}
		while (waitpid(pid, &status, 0) < 0) {
			if (errno != EINTR) {
				c->error = errno;
				_exit(1);
			}
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			c->execs++;
		else
			c->failed++;
	}
	c->end = now();
	_exit(0);
}

int main(int argc, char **argv)
{
	double seconds = -1, start, end;
	const char *child = NULL;
	long nargs = -1, arglen = -1, workers = 0, i;
	unsigned long long execs = 0, failed = 0, argv_bytes;
	struct counts *counts;
	char **cargv;
	cpu_set_t online;
	int *cpus, ncpus = 0, cpu, bad = 0;
	pid_t self;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (i + 1 >= argc)
			usage();
		if (!strcmp(a, "--seconds")) {
			char *end_;

			seconds = strtod(argv[++i], &end_);
			if (*end_ != '\0' || !(seconds > 0))
				usage();
		} else if (!strcmp(a, "--child")) {
			child = argv[++i];
		} else if (!strcmp(a, "--nargs")) {
			nargs = number("--nargs", argv[++i], 0, 100000);
		} else if (!strcmp(a, "--arglen")) {
			arglen = number("--arglen", argv[++i], 1, 128 * 1024 - 1);
		} else if (!strcmp(a, "--workers")) {
			workers = number("--workers", argv[++i], 1, 4096);
		} else {
			usage();
		}
	}
	if (seconds <= 0 || !child || nargs < 0 || arglen < 1)
		usage();
	if (access(child, X_OK) != 0) {
		fprintf(stderr, "storm: %s: %s\n", child, strerror(errno));
		return 1;
	}

	cargv = calloc(nargs + 2, sizeof(*cargv));
	if (!cargv) {
		perror("storm: calloc");
		return 1;
	}
	cargv[0] = (char *)child;
	argv_bytes = strlen(child) + 1;
	for (i = 1; i <= nargs; i++) {
		cargv[i] = make_arg(i, arglen);
		argv_bytes += arglen + 1;
	}

	/* The CPUs this process may run on; worker k is pinned to the k-th
	 * (round robin when there are more workers than CPUs). */
	if (sched_getaffinity(0, sizeof(online), &online) != 0) {
		perror("storm: sched_getaffinity");
		return 1;
	}
	cpus = calloc(CPU_SETSIZE, sizeof(*cpus));
	if (!cpus) {
		perror("storm: calloc");
		return 1;
	}
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &online))
			cpus[ncpus++] = cpu;
	if (ncpus == 0) {
		fprintf(stderr, "storm: no CPU to run on\n");
		return 1;
	}
	if (workers == 0)
		workers = ncpus;

	counts = mmap(NULL, workers * sizeof(*counts), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (counts == MAP_FAILED) {
		perror("storm: mmap");
		return 1;
	}
	memset(counts, 0, workers * sizeof(*counts));

	start = now();
	self = getpid();
	for (i = 0; i < workers; i++) {
		pid_t pid;

		counts[i].cpu = cpus[i % ncpus];
		pid = fork();
		if (pid == 0)
			worker(&counts[i], cargv, start + seconds, self);
		if (pid < 0) {
			perror("storm: fork");
			/* The started workers stop by themselves at the deadline. */
			bad = 1;
			break;
		}
	}
	for (;;) {
		int status;
		pid_t pid = wait(&status);

		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break; /* ECHILD: all workers are done */
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad = 1;
	}
	end = start;
	for (i = 0; i < workers; i++) {
		execs += counts[i].execs;
		failed += counts[i].failed;
		if (counts[i].end > end)
			end = counts[i].end;
		if (counts[i].error) {
			fprintf(stderr, "storm: worker %ld (cpu %d): %s\n", i, counts[i].cpu,
				strerror(counts[i].error));
			bad = 1;
		}
	}
	printf("{\"execs\":%llu,\"failed\":%llu,\"seconds\":%.6f,\"argv_bytes\":%llu,"
	       "\"workers\":%ld,\"nargs\":%ld,\"arglen\":%ld}\n",
	       execs, failed, end - start, argv_bytes, workers, nargs, arglen);
	fflush(stdout);
	return bad ? 1 : 0;
}
