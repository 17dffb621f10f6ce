/*
 * bench: usbserver side by side with a server of the guide's design
 * (guide_server.py) and with the floor, the bare cost of spawning the same
 * fake virsh from C; then usbctl side by side with a client of the guide's
 * design (guide_client.py). It reports figures and ratios, as a table and
 * as JSON; it passes or fails only on whether every command arrived.
 *
 * A command is done when the fake virsh says it ran: a datagram on
 * calls.sock, received by a thread of ours and counted. Servers are
 * started and measured one at a time, never side by side. Last, usbctl
 * is timed against usbserver under attack: a hostile guest trying to
 * hold 500 connections, then one flooding its domain with commands.
 */
#define _GNU_SOURCE

#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_S	20	/* a server's start, a client's run */
#define DONE_TIMEOUT_S	120	/* all commands of one measurement */
#define DEVICE_A	"046d:c52b"
#define DEVICE_B	"046d:c534"
#define STUB_DOMAIN	"test"	/* test:///default's running domain */
#define STUB_URI	"test:///default"
#define IDLE_SETTLE_S	1	/* quiet before the idle period starts */
#define HELD_CONNS	500	/* a hostile guest tries to hold these */
#define FLOOD_CONNS	8	/* a flooding guest writes on these */

extern char **environ;

static struct {
	const char	*usbserver, *usbctl, *fake_virsh, *python;
	const char	*server_py, *client_py, *virsh, *json;
	int		 lat_n;		/* commands, a connection each */
	int		 one_n;		/* commands on one connection */
	int		 conns, each_n;	/* connections at once, commands each */
	int		 idle_s;	/* idle period measured */
	int		 client_runs;
} opt = {
	.virsh = "virsh",
	.json = "bench.json",
	.lat_n = 300,
	.one_n = 1000,
	.conns = 50,
	.each_n = 20,
	.idle_s = 10,
	.client_runs = 20,
};

static char	dir[] = "/tmp/usbserver-bench.XXXXXX";

/* err(3) for functions that return an error number. */
static void __attribute__((noreturn))
die(int e, const char *what)
{
	errno = e;
	err(1, "%s", what);
}

static char *
in_dir(const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) == -1)
		err(1, "asprintf");
	return p;
}

/* snprintf's result: -1 when it did not fit. */
static int
fit(int n, size_t size)
{
	return n < 0 || (size_t)n >= size ? -1 : n;
}

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------ */
/* The recorder: counts the fake virsh's datagrams.                    */

static pthread_mutex_t	rec_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	rec_cond;
static unsigned long	rec_count;
static pid_t		rec_pid;	/* the last fake virsh to report */
static int		rec_fd = -1;

static void *
rec_main(void *arg)
{
	char buf[1024];
	ssize_t n;

	(void)arg;
	for (;;) {
		if ((n = recv(rec_fd, buf, sizeof(buf) - 1, 0)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "recv");
		}
		buf[n] = '\0';
		pthread_mutex_lock(&rec_lock);
		rec_pid = (pid_t)strtol(buf, NULL, 10);
		rec_count++;
		pthread_cond_broadcast(&rec_cond);
		pthread_mutex_unlock(&rec_lock);
	}
	return NULL;
}

static void
rec_start(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	pthread_condattr_t ca;
	pthread_t t;
	int n, e;

	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/bin/calls.sock", dir);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		errx(1, "%s: path too long", dir);
	if ((rec_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(rec_fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		err(1, "%s", sa.sun_path);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rec_cond, &ca);
	pthread_condattr_destroy(&ca);
	if ((e = pthread_create(&t, NULL, rec_main, NULL)) != 0)
		die(e, "pthread_create");
	pthread_detach(t);
}

static unsigned long
rec_now(void)
{
	unsigned long n;

	pthread_mutex_lock(&rec_lock);
	n = rec_count;
	pthread_mutex_unlock(&rec_lock);
	return n;
}

/* Waits until the count reaches target; fails the run if it does not. */
static void
rec_wait(unsigned long target, const char *what)
{
	struct timespec ts;
	unsigned long have;
	int e = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += DONE_TIMEOUT_S;
	pthread_mutex_lock(&rec_lock);
	while (rec_count < target && e != ETIMEDOUT)
		e = pthread_cond_timedwait(&rec_cond, &rec_lock, &ts);
	have = rec_count;
	pthread_mutex_unlock(&rec_lock);
	if (have < target)
		errx(1, "%s: virsh ran %lu times, not %lu, in %d s", what, have,
		    target, DONE_TIMEOUT_S);
}

/* Waits until the last fake virsh has exited, so that the next command
 * does not pay for the end of this one; one that runs on, a shell
 * (reported as pid 0), is waited for by nobody. */
static void
rec_wait_exit(void)
{
	struct pollfd p = { .events = POLLIN };
	pid_t pid;

	pthread_mutex_lock(&rec_lock);
	pid = rec_pid;
	pthread_mutex_unlock(&rec_lock);
	if (pid <= 0)
		return;
	if ((p.fd = pidfd_open(pid, 0)) == -1) {
		if (errno == ESRCH)
			return;		/* gone already */
		err(1, "pidfd_open");
	}
	while (poll(&p, 1, DONE_TIMEOUT_S * 1000) == -1 && errno == EINTR)
		;
	if (!(p.revents & POLLIN))
		errx(1, "the fake virsh %ld did not exit", (long)pid);
	close(p.fd);
}

/* ------------------------------------------------------------------ */
/* Processes                                                           */

/* The arrays are not changed: POSIX declares them without const only
 * for C's sake. */
static pid_t
spawn(const char *const argv[], const char *const envp[], int out)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int e;

	if ((e = posix_spawn_file_actions_init(&fa)) != 0 ||
	    (e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null",
	    O_RDONLY, 0)) != 0 ||
	    (e = out == -1 ? posix_spawn_file_actions_addopen(&fa, 1,
	    "/dev/null", O_WRONLY, 0) : posix_spawn_file_actions_adddup2(&fa,
	    out, 1)) != 0)
		die(e, "posix_spawn_file_actions");
	if ((e = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv,
	    (char *const *)envp)) != 0)
		die(e, argv[0]);
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

/* Reaps pid; its status, and its peak RSS in KiB (the largest process
 * of the tree it waited for) when ru is given. */
static int
reap(pid_t pid, long *maxrss_kb)
{
	struct rusage ru;
	int status;

	while (wait4(pid, &status, 0, &ru) == -1)
		if (errno != EINTR)
			err(1, "wait4");
	if (maxrss_kb != NULL)
		*maxrss_kb = ru.ru_maxrss;
	return status;
}

static bool
exited_zero(int status)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Waits up to START_TIMEOUT_S for fd to be readable; dies if pid ends. */
static void
wait_readable(int fd, pid_t pid, const char *what)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n;

	while ((n = poll(&p, 1, START_TIMEOUT_S * 1000)) == -1 && errno == EINTR)
		;
	if (n <= 0 || waitpid(pid, NULL, WNOHANG) != 0)
		errx(1, "%s did not start", what);
}

/* ------------------------------------------------------------------ */
/* What /proc says of a process and its threads                        */

static long
proc_kb(pid_t pid, const char *file, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, file);
	if ((f = fopen(path, "re")) == NULL)
		err(1, "%s", path);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			kb = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

#define MAX_TASKS	256

/* Each thread's time on a CPU and its context switches. */
struct cpu {
	long		n;
	struct {
		long		tid;
		uint64_t	ns;
		uint64_t	switches;	/* went to sleep, or was
						 * taken off a CPU */
	} task[MAX_TASKS];
};

static uint64_t
task_read(const char *tasks, const char *tid, const char *file, const char *key)
{
	char path[128], line[256];
	unsigned long long v = 0;
	FILE *f;

	if (fit(snprintf(path, sizeof(path), "%s/%s/%s", tasks, tid, file),
	    sizeof(path)) == -1 || (f = fopen(path, "re")) == NULL)
		return 0;	/* the thread just ended */
	if (key == NULL) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
	} else
		while (fgets(line, sizeof(line), f) != NULL)
			if (strstr(line, key) != NULL)
				v += strtoull(strchr(line, ':') + 1, NULL, 10);
	fclose(f);
	return v;
}

static void
proc_cpu(pid_t pid, struct cpu *c)
{
	char tasks[64];
	struct dirent *de;
	DIR *d;

	snprintf(tasks, sizeof(tasks), "/proc/%ld/task", (long)pid);
	if ((d = opendir(tasks)) == NULL)
		err(1, "%s", tasks);
	c->n = 0;
	while ((de = readdir(d)) != NULL && c->n < MAX_TASKS) {
		if (de->d_name[0] == '.')
			continue;
		c->task[c->n].tid = strtol(de->d_name, NULL, 10);
		c->task[c->n].ns = task_read(tasks, de->d_name, "schedstat", NULL);
		c->task[c->n].switches = task_read(tasks, de->d_name, "status",
		    "ctxt_switches:");
		c->n++;
	}
	closedir(d);
}

/* What the threads alive at b did since a; a thread that ended in
 * between is not counted. */
static void
cpu_delta(const struct cpu *a, const struct cpu *b, double *ms, long *switches)
{
	uint64_t ns = 0, sw = 0;

	for (long i = 0; i < b->n; i++) {
		uint64_t ns0 = 0, sw0 = 0;

		for (long k = 0; k < a->n; k++)
			if (a->task[k].tid == b->task[i].tid) {
				ns0 = a->task[k].ns;
				sw0 = a->task[k].switches;
			}
		ns += b->task[i].ns - ns0;
		sw += b->task[i].switches - sw0;
	}
	*ms = (double)ns / 1e6;
	*switches = (long)sw;
}

/* ------------------------------------------------------------------ */
/* Clients of a server                                                 */

static int
conn_open(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		err(1, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		err(1, "connect %s", path);
	return fd;
}

static void
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "write");
		}
		p += w;
		n -= (size_t)w;
	}
}

static void
send_lines(int fd, const char *vm, int count)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "%s attach %s\n", vm, DEVICE_A);

	for (int i = 0; i < count; i++)
		write_all(fd, line, (size_t)n);
}

/* ------------------------------------------------------------------ */
/* Figures                                                             */

struct figures {
	bool	 measured;
	double	 p50_ms, p99_ms;	/* a new connection per command */
	double	 one_cps;		/* one connection, commands a second */
	double	 many_cps;		/* opt.conns connections at once */
	long	 rss_idle_kb, pss_idle_kb, rss_load_kb, hwm_kb;
	double	 idle_cpu_ms;
	long	 idle_switches;
	long	 threads_idle, threads_load;
};

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The nearest-rank percentile of n sorted samples, in ms. */
static double
pct_ms(const int64_t *v, int n, int pct)
{
	int rank = (pct * n + 99) / 100;

	return (double)v[rank > 0 ? rank - 1 : 0] / 1000.0;
}

static pid_t	floor_spawn(void);
static void	floor_reap(pid_t);

/* One command's latency in us: on a new connection to sock, or (sock
 * NULL) the fake virsh spawned from here, the floor. Either way it ends
 * when virsh reports, and the next starts once that virsh has exited. */
static int64_t
latency_sample(const char *sock)
{
	unsigned long base = rec_now();
	int64_t t0 = now_us(), t;
	pid_t pid = -1;
	int fd;

	if (sock != NULL) {
		fd = conn_open(sock);
		send_lines(fd, "vm0", 1);
		close(fd);
	} else
		pid = floor_spawn();
	rec_wait(base + 1, "latency");
	t = now_us() - t0;
	if (sock != NULL)
		rec_wait_exit();
	else
		floor_reap(pid);
	return t;
}

/* Latency of each subject (a NULL socket: the floor), taken in turns, a
 * batch each, so that a slow moment of the machine falls on all alike. */
static void
latencies(const char *const socks[], struct figures *const f[], int n)
{
	enum { ROUNDS = 10 };
	int64_t *v[3];
	int batch = (opt.lat_n + ROUNDS - 1) / ROUNDS, done = 0;

	for (int s = 0; s < n; s++)
		if ((v[s] = calloc((size_t)opt.lat_n, sizeof(*v[s]))) == NULL)
			err(1, "calloc");
	while (done < opt.lat_n) {
		int k = opt.lat_n - done < batch ? opt.lat_n - done : batch;

		for (int s = 0; s < n; s++)
			for (int i = 0; i < k; i++)
				v[s][done + i] = latency_sample(socks[s]);
		done += k;
	}
	for (int s = 0; s < n; s++) {
		qsort(v[s], (size_t)opt.lat_n, sizeof(*v[s]), cmp_i64);
		f[s]->p50_ms = pct_ms(v[s], opt.lat_n, 50);
		f[s]->p99_ms = pct_ms(v[s], opt.lat_n, 99);
		free(v[s]);
	}
}

static void
one_connection(const char *sock, struct figures *f)
{
	unsigned long base = rec_now();
	int64_t t0 = now_us();
	int fd = conn_open(sock);

	send_lines(fd, "vm0", opt.one_n);
	close(fd);
	rec_wait(base + (unsigned long)opt.one_n, "one connection");
	f->one_cps = opt.one_n * 1e6 / (double)(now_us() - t0);
}

static void
many_connections(const char *sock, struct figures *f)
{
	unsigned long base = rec_now();
	int *fds = calloc((size_t)opt.conns, sizeof(*fds));
	char vm[16];
	int64_t t0;

	if (fds == NULL)
		err(1, "calloc");
	t0 = now_us();
	for (int i = 0; i < opt.conns; i++)
		fds[i] = conn_open(sock);
	/* Each connection its own domain: both servers may run them all
	 * at once (usbserver runs one command at a time per domain). */
	for (int i = 0; i < opt.conns; i++) {
		snprintf(vm, sizeof(vm), "vm%d", i);
		send_lines(fds[i], vm, opt.each_n);
		close(fds[i]);
	}
	rec_wait(base + (unsigned long)opt.conns * (unsigned long)opt.each_n,
	    "many connections");
	f->many_cps = opt.conns * opt.each_n * 1e6 / (double)(now_us() - t0);
	free(fds);
}

/* One command, to know the server serves, and to warm it up as a first
 * hotkey press would. */
static void
warm_up(const char *sock)
{
	unsigned long base = rec_now();
	int fd = conn_open(sock);

	send_lines(fd, "vm0", 1);
	close(fd);
	rec_wait(base + 1, "first command");
}

static void
pause_s(int s)
{
	struct timespec ts = { .tv_sec = s };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Both servers idle at once: RSS, then CPU and wake-ups over the idle
 * period. Each has served one command, as after a first hotkey press. */
static void
measure_idle(const pid_t pid[], struct figures *const f[], int n)
{
	static struct cpu a[2], b[2];

	/* Idle: nothing has happened for a second; then the idle period.
	 * Neither is a wait for an event. */
	pause_s(IDLE_SETTLE_S);
	for (int s = 0; s < n; s++) {
		f[s]->rss_idle_kb = proc_kb(pid[s], "status", "VmRSS");
		f[s]->pss_idle_kb = proc_kb(pid[s], "smaps_rollup", "Pss");
		proc_cpu(pid[s], &a[s]);
	}
	pause_s(opt.idle_s);
	for (int s = 0; s < n; s++) {
		proc_cpu(pid[s], &b[s]);
		cpu_delta(&a[s], &b[s], &f[s]->idle_cpu_ms, &f[s]->idle_switches);
		f[s]->threads_idle = b[s].n;
	}
}

static void
measure_load(pid_t pid, const char *sock, struct figures *f)
{
	static struct cpu b;

	one_connection(sock, f);
	many_connections(sock, f);
	f->rss_load_kb = proc_kb(pid, "status", "VmRSS");
	f->hwm_kb = proc_kb(pid, "status", "VmHWM");
	proc_cpu(pid, &b);
	f->threads_load = b.n;
	f->measured = true;
}

static void
stop(pid_t pid, const char *what)
{
	int status;

	if (kill(pid, SIGTERM) == -1)
		err(1, "kill %s", what);
	status = reap(pid, NULL);
	if (!(WIFEXITED(status) || (WIFSIGNALED(status) &&
	    WTERMSIG(status) == SIGTERM)))
		warnx("%s ended with status %#x", what, status);
}

/* ------------------------------------------------------------------ */
/* The subjects                                                        */

static const char *bin_env[] = { "PATH=/usr/bin:/bin", NULL, NULL };

static pid_t
usbserver_start(const char *sock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *xml = in_dir("xml-usbserver"), *conf = in_dir("usbserver.conf");
	char *virsh = in_dir("bin/virsh"), *notify = in_dir("notify.sock");
	char *run = in_dir("qemu-run"), *notify_env;
	char *ledger = in_dir("ledger");
	const char *argv[] = { opt.usbserver, "--socket", sock,
	    "--xml-dir", xml, "--virsh", virsh, "--config", conf,
	    "--qemu-run-dir", run, "--ledger", ledger, NULL };
	const char *env[] = { "PATH=/usr/bin:/bin", NULL, NULL };
	char buf[64];
	ssize_t n;
	pid_t pid;
	int fd;

	if (mkdir(xml, 0700) == -1)
		err(1, "%s", xml);
	if (mkdir(run, 0700) == -1)
		err(1, "%s", run);
	if ((fd = open(conf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) == -1)
		err(1, "%s", conf);
	close(fd);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", notify);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		err(1, "%s", notify);
	if (asprintf(&notify_env, "NOTIFY_SOCKET=%s", notify) == -1)
		err(1, "asprintf");
	env[1] = notify_env;
	pid = spawn(argv, env, -1);
	/* systemd's readiness protocol: READY=1 once it listens. */
	do {
		wait_readable(fd, pid, "usbserver");
		if ((n = recv(fd, buf, sizeof(buf) - 1, 0)) == -1)
			err(1, "recv");
		buf[n] = '\0';
	} while (strstr(buf, "READY=1") == NULL);
	close(fd);
	free(notify_env);
	free(xml);
	free(conf);
	free(virsh);
	free(notify);
	free(run);
	return pid;
}

static pid_t
python_start(const char *sock)
{
	char *xml = in_dir("xml-python"), *path;
	const char *argv[] = { opt.python, opt.server_py,
	    sock, xml, NULL };
	const char *env[] = { NULL, NULL };
	char buf[16];
	int pfd[2];
	ssize_t n;
	pid_t pid;

	if (mkdir(xml, 0700) == -1)
		err(1, "%s", xml);
	/* virsh by its bare name, found first in our bin/, as the guide's
	 * server finds it on PATH. */
	if (asprintf(&path, "PATH=%s/bin:/usr/bin:/bin", dir) == -1)
		err(1, "asprintf");
	env[0] = path;
	if (pipe2(pfd, O_CLOEXEC) == -1)
		err(1, "pipe2");
	pid = spawn(argv, env, pfd[1]);
	close(pfd[1]);
	wait_readable(pfd[0], pid, "the guide's server");
	if ((n = read(pfd[0], buf, sizeof(buf))) < 6 ||
	    strncmp(buf, "ready\n", 6) != 0)
		errx(1, "the guide's server did not start");
	/* pfd[0] stays open: the server must never get EPIPE. */
	free(path);
	free(xml);
	return pid;
}

/* ------------------------------------------------------------------ */
/* The floor: the fake virsh spawned and reaped from C, nothing else.  */

static char	*floor_virsh;
static const char *floor_argv[] = { NULL, "attach-device", "--domain", "vm0",
	"--file", "/dev/null", NULL };

static pid_t
floor_spawn(void)
{
	return spawn(floor_argv, bin_env, -1);
}

static void
floor_reap(pid_t pid)
{
	if (!exited_zero(reap(pid, NULL)))
		errx(1, "the fake virsh failed");
}

static void
floor_one(void)
{
	floor_reap(floor_spawn());
}

static void *
floor_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < opt.each_n; i++)
		floor_one();
	return NULL;
}

static void
floor_measure(struct figures *f)
{
	pthread_t *t = calloc((size_t)opt.conns, sizeof(*t));
	unsigned long base;
	int64_t t0;
	int e;

	if (t == NULL)
		err(1, "calloc");
	base = rec_now();
	t0 = now_us();
	for (int i = 0; i < opt.one_n; i++)
		floor_one();
	rec_wait(base + (unsigned long)opt.one_n, "floor");
	f->one_cps = opt.one_n * 1e6 / (double)(now_us() - t0);

	base = rec_now();
	t0 = now_us();
	for (int i = 0; i < opt.conns; i++)
		if ((e = pthread_create(&t[i], NULL, floor_thread, NULL)) != 0)
			die(e, "pthread_create");
	for (int i = 0; i < opt.conns; i++)
		pthread_join(t[i], NULL);
	rec_wait(base + (unsigned long)opt.conns * (unsigned long)opt.each_n,
	    "floor");
	f->many_cps = opt.conns * opt.each_n * 1e6 / (double)(now_us() - t0);
	f->measured = true;
	free(t);
}

/* ------------------------------------------------------------------ */
/* The clients: a two-device attach, the domain found through libvirt's
 * test:///default driver, served by usbserver.                        */

struct client {
	bool	 measured;
	char	 why[160];		/* when not measured */
	double	 p50_ms, max_ms;
	long	 peak_kb;		/* the largest process of its tree */
};

static void
client_measure(const char *const argv[], const char *const env[],
    struct client *c)
{
	int64_t *v = calloc((size_t)opt.client_runs, sizeof(*v));

	if (v == NULL)
		err(1, "calloc");
	for (int i = 0; i < opt.client_runs; i++) {
		unsigned long base = rec_now();
		int64_t t0 = now_us();
		long kb;
		int status = reap(spawn(argv, env, -1), &kb);

		v[i] = now_us() - t0;
		if (!exited_zero(status)) {
			snprintf(c->why, sizeof(c->why), "%s exited with "
			    "status %#x", argv[0], status);
			free(v);
			return;
		}
		/* Both clients wait for the server to close, after virsh. */
		rec_wait(base + 2, argv[0]);
		if (kb > c->peak_kb)
			c->peak_kb = kb;
	}
	qsort(v, (size_t)opt.client_runs, sizeof(*v), cmp_i64);
	c->p50_ms = pct_ms(v, opt.client_runs, 50);
	c->max_ms = (double)v[opt.client_runs - 1] / 1000.0;
	c->measured = true;
	free(v);
}

/*
 * A hostile guest of vm, by libvirt's pid file: held, it keeps trying to
 * hold HELD_CONNS connections with a line left unfinished, opening again
 * each one the daemon closes; else it writes commands for its own domain
 * on FLOOD_CONNS connections as fast as they are taken. Until killed.
 */
static void __attribute__((noreturn))
hostile_main(const char *sock, bool held, const char *vm)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static struct pollfd p[HELD_CONNS];
	char line[96], buf[256];
	int n = held ? HELD_CONNS : FLOOD_CONNS;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	snprintf(line, sizeof(line), held ? "%s det" : "%s detach "
	    DEVICE_A "\n", vm);
	for (int i = 0; i < n; i++)
		p[i].fd = -1;
	for (;;) {
		for (int i = 0; i < n; i++) {
			if (p[i].fd != -1)
				continue;
			p[i].fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
			if (p[i].fd != -1 && connect(p[i].fd,
			    (struct sockaddr *)&sa, sizeof(sa)) == -1) {
				close(p[i].fd);
				p[i].fd = -1;
			} else if (p[i].fd != -1 && held)
				(void)!send(p[i].fd, line, strlen(line),
				    MSG_NOSIGNAL);
			p[i].events = held ? POLLIN : POLLOUT;
		}
		if (poll(p, (nfds_t)n, 100) == -1)
			_exit(1);
		for (int i = 0; i < n; i++) {
			if (p[i].fd == -1 || p[i].revents == 0)
				continue;
			if ((held && read(p[i].fd, buf, sizeof(buf)) > 0) ||
			    (!held && send(p[i].fd, line, strlen(line),
			    MSG_NOSIGNAL | MSG_DONTWAIT) > 0))
				continue;
			if (!held && errno == EAGAIN)
				continue;
			close(p[i].fd);
			p[i].fd = -1;
		}
	}
}

/* Starts a hostile guest of vm (hostile_main), named by a root-owned pid
 * file, as libvirt names a QEMU, before it connects. */
static pid_t
hostile_start(const char *sock, bool held, const char *vm)
{
	char *path, byte;
	int go[2];
	pid_t pid;
	FILE *f;

	if (asprintf(&path, "%s/qemu-run/%s.pid", dir, vm) == -1)
		err(1, "asprintf");
	if (pipe2(go, O_CLOEXEC) == -1)
		err(1, "pipe");
	if ((pid = fork()) == -1)
		err(1, "fork");
	if (pid == 0) {
		if (read(go[0], &byte, 1) != 1)
			_exit(1);
		hostile_main(sock, held, vm);
	}
	close(go[0]);
	if ((f = fopen(path, "we")) == NULL || fprintf(f, "%ld\n",
	    (long)pid) < 0 || fclose(f) != 0)
		err(1, "%s", path);
	if (write(go[1], "", 1) != 1)
		err(1, "pipe");
	close(go[1]);
	free(path);
	return pid;
}

static void
hostile_stop(pid_t pid)
{
	kill(pid, SIGKILL);
	reap(pid, NULL);
}

/* Can the guide's client run here? It needs python3-libvirt and socat. */
static bool
client_possible(const char *const env[], struct client *c)
{
	const char *argv[] = { opt.python, "-c", "import libvirt", NULL };

	if (!exited_zero(reap(spawn(argv, env, -1), NULL))) {
		snprintf(c->why, sizeof(c->why), "%s cannot import libvirt "
		    "(apt-get install python3-libvirt)", opt.python);
		return false;
	}
	return true;
}

static void
clients(const char *sock, struct client *ctl, struct client *py,
    struct client *held, struct client *flood)
{
	pid_t h;
	char *conf = in_dir("usbctl.conf"), *home = in_dir("home"), *xdg;
	const char *ctl_argv[] = { opt.usbctl, "--socket", sock,
	    "--connect", STUB_URI, "--virsh", opt.virsh, "--config",
	    conf, "attach", DEVICE_A, DEVICE_B, NULL };
	const char *py_argv[] = { opt.python, opt.client_py,
	    STUB_URI, sock, DEVICE_A, DEVICE_B, NULL };
	const char *env[] = { "PATH=/usr/bin:/bin", NULL, NULL };
	int fd;

	if (asprintf(&xdg, "HOME=%s", home) == -1)
		err(1, "asprintf");
	env[1] = xdg;
	if (mkdir(home, 0700) == -1)
		err(1, "%s", home);
	if ((fd = open(conf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) == -1)
		err(1, "%s", conf);
	close(fd);
	client_measure(ctl_argv, env, ctl);
	if (client_possible(env, py))
		client_measure(py_argv, env, py);
	/* The same attach, for the domain of a hostile guest. */
	h = hostile_start(sock, true, STUB_DOMAIN);
	client_measure(ctl_argv, env, held);
	hostile_stop(h);
	h = hostile_start(sock, false, STUB_DOMAIN);
	client_measure(ctl_argv, env, flood);
	hostile_stop(h);
	free(conf);
	free(home);
	free(xdg);
}

/* ------------------------------------------------------------------ */
/* The report                                                          */

struct row {
	const char	*name, *key, *unit;
	size_t		 off;		/* of a double or long in figures */
	bool		 is_long;
	bool		 floor;		/* the floor has this figure */
};

#define FIG_D(n, k, u, f, fl) { n, k, u, offsetof(struct figures, f), false, fl }
#define FIG_L(n, k, u, f) { n, k, u, offsetof(struct figures, f), true, false }

static const struct row rows[] = {
	FIG_D("latency p50, a connection a command", "latency_p50_ms", "ms", p50_ms, true),
	FIG_D("latency p99, a connection a command", "latency_p99_ms", "ms", p99_ms, true),
	FIG_D("throughput, one connection", "one_connection_cmds_per_s", "cmd/s", one_cps, true),
	FIG_D("throughput, concurrent connections", "concurrent_cmds_per_s", "cmd/s", many_cps, true),
	FIG_L("RSS idle", "rss_idle_kib", "KiB", rss_idle_kb),
	FIG_L("PSS idle", "pss_idle_kib", "KiB", pss_idle_kb),
	FIG_L("RSS after the load", "rss_after_load_kib", "KiB", rss_load_kb),
	FIG_L("peak RSS", "peak_rss_kib", "KiB", hwm_kb),
	FIG_D("CPU used while idle", "idle_cpu_ms", "ms", idle_cpu_ms, false),
	FIG_L("wake-ups while idle", "idle_wakeups", "", idle_switches),
	FIG_L("threads idle", "threads_idle", "", threads_idle),
	FIG_L("threads after the load", "threads_after_load", "", threads_load),
};

static double
fig(const struct figures *f, const struct row *r)
{
	const char *p = (const char *)f + r->off;

	return r->is_long ? (double)*(const long *)(const void *)p :
	    *(const double *)(const void *)p;
}

static void
print_ratio(double a, double b)
{
	if (b > 0)
		printf(" %9.2fx", a / b);
	else
		printf(" %10s", "-");
}

static void
report(FILE *j, const struct figures *us, const struct figures *py,
    const struct figures *fl, const struct client *ctl,
    const struct client *gc, const struct client *held,
    const struct client *flood)
{
	struct utsname u;
	const struct row *r;
	size_t i;

	printf("\n%-38s %10s %10s %10s %10s %10s\n", "", "usbserver", "python",
	    "floor", "us/python", "us/floor");
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char name[64];

		r = &rows[i];
		snprintf(name, sizeof(name), "%s%s%s%s", r->name,
		    r->unit[0] ? " (" : "", r->unit, r->unit[0] ? ")" : "");
		printf("%-38s %10.2f", name, fig(us, r));
		if (py->measured)
			printf(" %10.2f", fig(py, r));
		else
			printf(" %10s", "-");
		if (r->floor)
			printf(" %10.2f", fig(fl, r));
		else
			printf(" %10s", "-");
		print_ratio(fig(us, r), py->measured ? fig(py, r) : 0);
		print_ratio(fig(us, r), r->floor ? fig(fl, r) : 0);
		printf("\n");
	}
	printf("\ntwo-device attach (%s)            %10s %10s %10s\n", STUB_URI,
	    "usbctl", "guide", "guide/us");
	printf("%-38s %10.2f", "wall time p50 (ms)", ctl->p50_ms);
	if (gc->measured) {
		printf(" %10.2f", gc->p50_ms);
		print_ratio(gc->p50_ms, ctl->p50_ms);
	}
	printf("\n%-38s %10.2f", "wall time max (ms)", ctl->max_ms);
	if (gc->measured)
		printf(" %10.2f", gc->max_ms);
	printf("\n%-38s %10ld", "peak RSS (KiB)", ctl->peak_kb);
	if (gc->measured) {
		printf(" %10ld", gc->peak_kb);
		print_ratio((double)gc->peak_kb, (double)ctl->peak_kb);
	}
	printf("\n");
	if (!gc->measured)
		printf("guide's client not measured: %s\n", gc->why);
	printf("\nusbctl attach under attack (ms)        %10s %10s\n", "p50",
	    "max");
	printf("%-38s %10.2f %10.2f\n", "a guest holding 500 connections",
	    held->p50_ms, held->max_ms);
	printf("%-38s %10.2f %10.2f\n", "a guest flooding its domain",
	    flood->p50_ms, flood->max_ms);
	if (!held->measured || !flood->measured)
		printf("under attack, not measured: %s%s\n", held->why,
		    flood->why);

	uname(&u);
	fprintf(j, "{\n  \"machine\": {\"kernel\": \"%s\", \"cpus\": %ld},\n",
	    u.release, sysconf(_SC_NPROCESSORS_ONLN));
	fprintf(j, "  \"parameters\": {\"latency_commands\": %d, "
	    "\"one_connection_commands\": %d, \"connections\": %d, "
	    "\"commands_each\": %d, \"idle_seconds\": %d, \"client_runs\": %d},\n",
	    opt.lat_n, opt.one_n, opt.conns, opt.each_n, opt.idle_s,
	    opt.client_runs);
	const struct figures *subj[] = { us, py, fl };
	const char *names[] = { "usbserver", "python", "floor" };
	for (int s = 0; s < 3; s++) {
		bool first = true;

		fprintf(j, "  \"%s\": ", names[s]);
		if (!subj[s]->measured) {
			fprintf(j, "null,\n");
			continue;
		}
		fprintf(j, "{");
		for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
			r = &rows[i];
			if (s == 2 && !r->floor)
				continue;
			fprintf(j, "%s\n    \"%s\": %.3f", first ? "" : ",",
			    r->key, fig(subj[s], r));
			first = false;
		}
		fprintf(j, "\n  },\n");
	}
	const struct client *cl[] = { ctl, gc, held, flood };
	const char *cnames[] = { "usbctl", "guide_client",
	    "usbctl_while_500_held", "usbctl_while_a_guest_floods" };
	for (int s = 0; s < 4; s++) {
		fprintf(j, "  \"%s\": ", cnames[s]);
		if (cl[s]->measured)
			fprintf(j, "{\"wall_p50_ms\": %.3f, \"wall_max_ms\": "
			    "%.3f, \"peak_rss_kib\": %ld}", cl[s]->p50_ms,
			    cl[s]->max_ms, cl[s]->peak_kb);
		else
			fprintf(j, "null");
		fprintf(j, "%s\n", s < 3 ? "," : "");
	}
	fprintf(j, "}\n");
}

/* ------------------------------------------------------------------ */

static void
copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	ssize_t n;
	int in, out;

	if ((in = open(from, O_RDONLY | O_CLOEXEC)) == -1)
		err(1, "%s", from);
	if ((out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) == -1)
		err(1, "%s", to);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		write_all(out, buf, (size_t)n);
	if (n == -1 || close(out) == -1)
		err(1, "%s", to);
	close(in);
}

static int
rm_tree(const char *path)
{
	const char *argv[] = { "/bin/rm", "-rf", path, NULL };

	return reap(spawn(argv, bin_env, -1), NULL);
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench --usbserver P --usbctl P --fake-virsh P "
	    "--python P --server P --client P\n"
	    "             [--virsh P] [--json FILE] [--quick]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "usbserver", required_argument, NULL, 'u' },
		{ "usbctl", required_argument, NULL, 'c' },
		{ "fake-virsh", required_argument, NULL, 'f' },
		{ "python", required_argument, NULL, 'p' },
		{ "server", required_argument, NULL, 's' },
		{ "client", required_argument, NULL, 'g' },
		{ "virsh", required_argument, NULL, 'v' },
		{ "json", required_argument, NULL, 'j' },
		{ "quick", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	static struct figures us, py, fl;
	struct figures *const figs[] = { &us, &py, &fl };
	struct client ctl = { 0 }, gc = { 0 }, held = { 0 }, flood = { 0 };
	char *bin, *virsh, *us_sock, *py_sock;
	const char *socks[3];
	pid_t pids[2];
	FILE *j;
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'u': opt.usbserver = optarg; break;
		case 'c': opt.usbctl = optarg; break;
		case 'f': opt.fake_virsh = optarg; break;
		case 'p': opt.python = optarg; break;
		case 's': opt.server_py = optarg; break;
		case 'g': opt.client_py = optarg; break;
		case 'v': opt.virsh = optarg; break;
		case 'j': opt.json = optarg; break;
		case 'q':
			opt.lat_n = 30;
			opt.one_n = 100;
			opt.conns = 10;
			opt.each_n = 5;
			opt.idle_s = 1;
			opt.client_runs = 3;
			break;
		default: usage();
		}
	}
	if (optind != argc || !opt.usbserver || !opt.usbctl ||
	    !opt.fake_virsh || !opt.python || !opt.server_py || !opt.client_py)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(dir) == NULL)
		err(1, "mkdtemp");
	bin = in_dir("bin");
	virsh = in_dir("bin/virsh");
	if (mkdir(bin, 0755) == -1)
		err(1, "%s", bin);
	/* A copy beside calls.sock: it finds the socket by its own path. */
	copy_file(opt.fake_virsh, virsh, 0755);
	rec_start();

	floor_argv[0] = floor_virsh = in_dir("bin/virsh");
	socks[0] = us_sock = in_dir("usbserver.sock");
	socks[1] = py_sock = in_dir("python.sock");
	socks[2] = NULL;
	printf("starting usbserver and the guide's server\n");
	pids[0] = usbserver_start(us_sock);
	pids[1] = python_start(py_sock);
	warm_up(us_sock);
	warm_up(py_sock);
	printf("idle for %d s\n", IDLE_SETTLE_S + opt.idle_s);
	fflush(stdout);
	measure_idle(pids, figs, 2);
	printf("latency, %d commands each, in turns\n", opt.lat_n);
	fflush(stdout);
	latencies(socks, figs, 3);
	printf("throughput and memory under load\n");
	fflush(stdout);
	measure_load(pids[0], us_sock, &us);
	measure_load(pids[1], py_sock, &py);
	floor_measure(&fl);
	stop(pids[1], "the guide's server");
	printf("clients, %d runs each\n", opt.client_runs);
	fflush(stdout);
	clients(us_sock, &ctl, &gc, &held, &flood);
	stop(pids[0], "usbserver");

	if ((j = fopen(opt.json, "we")) == NULL)
		err(1, "%s", opt.json);
	report(j, &us, &py, &fl, &ctl, &gc, &held, &flood);
	if (fclose(j) == EOF)
		err(1, "%s", opt.json);
	printf("\n(written to %s)\n", opt.json);
	free(us_sock);
	free(py_sock);
	free(bin);
	free(virsh);
	free(floor_virsh);
	return rm_tree(dir) == 0 ? 0 : 1;
}
