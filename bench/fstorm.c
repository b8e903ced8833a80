/* File storm: every worker, pinned to its own CPU, makes one file syscall
 * after another until the time is up, then the totals are printed as one
 * JSON line on stderr (stdout is what the write mode writes to).
 *
 *   gcc -O2 -Wall -o build/bench/pt-fstorm bench/fstorm.c
 *   pt-fstorm --seconds S --mode open --path PATH
 *   pt-fstorm --seconds S --mode write --size BYTES
 *
 * open: openat(AT_FDCWD, PATH, O_RDONLY) then close, through syscall(2)
 * directly (no libc wrapper picks another syscall); ops counts the opens
 * that returned an fd, failed the others.
 * write: write(1, buf, BYTES) of printable letters through syscall(2); ops
 * counts the writes that wrote something, bytes what they wrote, failed
 * the writes that returned an error. Point stdout at /dev/null.
 * Output: {"ops":N,"failed":F,"bytes":B,"seconds":T,"workers":W}.
 * Every message on stderr (the totals, the errors) is one write(2) call,
 * so a tracer of stderr sees each whole and can count them. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Syscalls between two looks at the clock. */
#define BATCH 16
#define MAX_SIZE (1L << 20)

enum mode { MODE_NONE, MODE_OPEN, MODE_WRITE };

struct counts {
	unsigned long long ops;
	unsigned long long failed;
	unsigned long long bytes;
	double end; /* monotonic seconds when this worker stopped */
	int cpu;
	int error; /* errno of a setup failure, 0 if none */
};

/* What every worker does. */
struct job {
	enum mode mode;
	const char *path; /* open */
	char *buf;	  /* write */
	long size;	  /* write */
	double deadline;
};

/* One message on stderr in one write(2) call. */
static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n >= (int)sizeof(line))
		n = sizeof(line) - 1;
	if (syscall(SYS_write, 2, line, (size_t)n) < 0)
		return; /* nowhere left to report it */
}

static void usage(void)
{
	say("usage: pt-fstorm --seconds S (--mode open --path PATH | --mode write --size BYTES)\n");
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
		say("pt-fstorm: %s: want a whole number in [%ld, %ld], got '%s'\n", name, min, max,
		    s);
		usage();
	}
	return v;
}

static enum mode parse_mode(const char *s)
{
	if (!strcmp(s, "open"))
		return MODE_OPEN;
	if (!strcmp(s, "write"))
		return MODE_WRITE;
	say("pt-fstorm: --mode: want open or write, got '%s'\n", s);
	usage();
	return MODE_NONE;
}

/* BATCH opens, each closed at once. */
static void open_batch(struct counts *c, const char *path)
{
	int i;

	for (i = 0; i < BATCH; i++) {
		long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);

		if (fd < 0) {
			c->failed++;
			continue;
		}
		c->ops++;
		syscall(SYS_close, fd);
	}
}

/* BATCH writes of the buffer to stdout. */
static void write_batch(struct counts *c, const char *buf, long size)
{
	int i;

	for (i = 0; i < BATCH; i++) {
		long n = syscall(SYS_write, 1, buf, (size_t)size);

		if (n < 0) {
			c->failed++;
			continue;
		}
		c->ops++;
		c->bytes += n;
	}
}

static void worker(struct counts *c, const struct job *job, pid_t parent)
{
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
	while (now() < job->deadline) {
		if (job->mode == MODE_OPEN)
			open_batch(c, job->path);
		else
			write_batch(c, job->buf, job->size);
	}
	c->end = now();
	_exit(0);
}

/* The CPUs this process may run on, in cpus[]; their number. */
static int online_cpus(int *cpus)
{
	cpu_set_t online;
	int cpu, n = 0;

	if (sched_getaffinity(0, sizeof(online), &online) != 0) {
		say("pt-fstorm: sched_getaffinity: %s\n", strerror(errno));
		exit(1);
	}
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &online))
			cpus[n++] = cpu;
	if (n == 0) {
		say("pt-fstorm: no CPU to run on\n");
		exit(1);
	}
	return n;
}

/* A buffer of size printable letters. */
static char *letters(long size)
{
	char *buf = malloc(size);
	long i;

	if (!buf) {
		say("pt-fstorm: malloc %ld bytes: %s\n", size, strerror(errno));
		exit(1);
	}
	for (i = 0; i < size; i++)
		buf[i] = 'a' + (char)(i % 26);
	return buf;
}

static void parse(int argc, char **argv, struct job *job, double *seconds)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (i + 1 >= argc)
			usage();
		if (!strcmp(a, "--seconds")) {
			char *end;

			*seconds = strtod(argv[++i], &end);
			if (*end != '\0' || !(*seconds > 0))
				usage();
		} else if (!strcmp(a, "--mode")) {
			job->mode = parse_mode(argv[++i]);
		} else if (!strcmp(a, "--path")) {
			job->path = argv[++i];
		} else if (!strcmp(a, "--size")) {
			job->size = number("--size", argv[++i], 1, MAX_SIZE);
		} else {
			usage();
		}
	}
	if (*seconds <= 0 || job->mode == MODE_NONE)
		usage();
	if ((job->mode == MODE_OPEN) != (job->path != NULL))
		usage(); /* --path goes with open, and only with it */
	if ((job->mode == MODE_WRITE) != (job->size > 0))
		usage(); /* --size goes with write, and only with it */
}

int main(int argc, char **argv)
{
	struct job job = { .mode = MODE_NONE };
	double seconds = -1, start, end;
	unsigned long long ops = 0, failed = 0, bytes = 0;
	struct counts *counts;
	int *cpus, workers, i, bad = 0;
	pid_t self;

	parse(argc, argv, &job, &seconds);
	if (job.mode == MODE_OPEN && access(job.path, R_OK) != 0) {
		say("pt-fstorm: %s: %s\n", job.path, strerror(errno));
		return 1;
	}
	if (job.mode == MODE_WRITE)
		job.buf = letters(job.size);

	/* Worker k is pinned to the k-th CPU this process may run on. */
	cpus = calloc(CPU_SETSIZE, sizeof(*cpus));
	if (!cpus) {
		say("pt-fstorm: calloc: %s\n", strerror(errno));
		return 1;
	}
	workers = online_cpus(cpus);
	counts = mmap(NULL, workers * sizeof(*counts), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (counts == MAP_FAILED) {
		say("pt-fstorm: mmap: %s\n", strerror(errno));
		return 1;
	}
	memset(counts, 0, workers * sizeof(*counts));

	start = now();
	job.deadline = start + seconds;
	self = getpid();
	for (i = 0; i < workers; i++) {
		pid_t pid;

		counts[i].cpu = cpus[i];
		pid = fork();
		if (pid == 0)
			worker(&counts[i], &job, self);
		if (pid < 0) {
			say("pt-fstorm: fork: %s\n", strerror(errno));
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
		ops += counts[i].ops;
		failed += counts[i].failed;
		bytes += counts[i].bytes;
		if (counts[i].end > end)
			end = counts[i].end;
		if (counts[i].error) {
			say("pt-fstorm: worker %d (cpu %d): %s\n", i, counts[i].cpu,
			    strerror(counts[i].error));
			bad = 1;
		}
	}
	say("{\"ops\":%llu,\"failed\":%llu,\"bytes\":%llu,\"seconds\":%.6f,\"workers\":%d}\n", ops,
	    failed, bytes, end - start, workers);
	return bad ? 1 : 0;
}
