/*
 * test_load.c: the daemon under load and under faults. Hundreds of
 * clients at once; clients that vanish mid-line or mid-reply, or never
 * read; a virsh that dies, floods or leaves a child behind; an XML
 * directory it cannot write; its socket file removed or replaced; no
 * descriptors left. Through all of it the daemon goes on serving, runs
 * every command exactly once, and leaks neither descriptors nor threads.
 *
 * The busy tests use fast-virsh (test/bench/fast-virsh.c), which only
 * sends "PID ARGS..." to calls.sock beside its binary: a shell script
 * would make 10000 commands take minutes.
 */
#define _GNU_SOURCE

#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests.h"
#include "../common.h"

#define LINE		1024
#define STALL_MS	60000	/* the load may not stand still this long */

/* ------------------------------------------------------------------ */
/* fast-virsh and what it reports                                      */

static int	calls_fd = -1;

/* Puts a copy of fast-virsh in the test's directory as the daemon's
 * virsh, and listens for its reports. */
static void
calls_setup(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *argv[] = { (char *)"cp", (char *)FAST_VIRSH, w.virsh, NULL };
	char out[256];

	snprintf(w.virsh, sizeof(w.virsh), "%s/fast-virsh", w.dir);
	ck_assert_int_eq(run(argv, NULL, out, sizeof(out)), 0);
	ck_assert_int_lt(snprintf(sa.sun_path, sizeof(sa.sun_path),
	    "%s/calls.sock", w.dir), (int)sizeof(sa.sun_path));
	calls_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert_int_ne(calls_fd, -1);
	ck_assert_int_eq(bind(calls_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

/* The domain and the file's VID:PID of one report, or false. */
static bool
call_parse(const char *msg, char *vm, size_t vmsz, char dev[DEVICE_MAX + 1])
{
	const char *d = strstr(msg, " --domain "), *f = strstr(msg, " --file ");
	const char *base;

	if (d == NULL || f == NULL || f < d)
		return false;
	d += strlen(" --domain ");
	snprintf(vm, vmsz, "%.*s", (int)(f - d), d);
	if ((base = strstr(f, "device-")) == NULL)
		return false;
	base += strlen("device-");
	snprintf(dev, DEVICE_MAX + 1, "%.*s", (int)(strlen(base) > 4 ?
	    strlen(base) - 4 : 0), base);	/* without ".xml" */
	return true;
}

/* The next report within timeout_ms, or false. */
static bool
call_next(char *msg, size_t size, int timeout_ms)
{
	struct pollfd p = { .fd = calls_fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, timeout_ms) != 1 ||
	    (n = recv(calls_fd, msg, size - 1, 0)) <= 0)
		return false;
	msg[n] = '\0';
	return true;
}

/* ------------------------------------------------------------------ */
/* What /proc says of the daemon                                       */

static int
proc_entries(const char *what)
{
	char path[64];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)w.daemon, what);
	ck_assert_ptr_nonnull(d = opendir(path));
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The daemon's virsh shells: its children started as "... -q". */
static int
daemon_shells(void)
{
	char path[300], buf[512];
	struct dirent *de;
	const char *p, *last;
	ssize_t n;
	long ppid;
	int shells = 0;
	DIR *d;

	ck_assert_ptr_nonnull(d = opendir("/proc"));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((n = slurp(path, buf, sizeof(buf))) <= 0 ||
		    (p = strrchr(buf, ')')) == NULL ||
		    sscanf(p, ") %*c %ld", &ppid) != 1 || ppid != w.daemon)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		if ((n = slurp(path, buf, sizeof(buf))) <= 1)
			continue;
		for (last = p = buf; p < buf + n - 1; p++)
			if (*p == '\0')
				last = p + 1;
		shells += strcmp(last, "-q") == 0;
	}
	closedir(d);
	return shells;
}

/* The daemon's descriptors, less the three each of its shells holds
 * for as long as the shell lives. */
static int
daemon_fds(void)
{
	return proc_entries("fd") - 3 * daemon_shells();
}

/* The daemon's connection threads, known by their name. */
static int
conn_threads(void)
{
	char dir[64], path[384], comm[32];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%ld/task", (long)w.daemon);
	ck_assert_ptr_nonnull(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/comm", dir, de->d_name);
		if (slurp(path, comm, sizeof(comm)) > 0 &&
		    strcmp(comm, CONN_THREAD "\n") == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Waits, within WAIT_MS, for the daemon to be back to fds descriptors
 * and no connection thread: a thread's last steps follow its last log
 * line, and its end has no event of its own. */
static void
expect_back_to(int fds)
{
	int64_t deadline = now_ms() + WAIT_MS;
	int f, t;

	while ((f = daemon_fds()) != fds || (t = conn_threads()) != 0) {
		struct pollfd none = { .fd = -1 };

		ck_assert_msg(now_ms() < deadline, "the daemon kept %d "
		    "descriptors (had %d) and %d connection threads", f, fds,
		    conn_threads());
		poll(&none, 1, 20);
	}
}

/* Reads the daemon's log without waiting, counting lines that hold
 * needle: under load it must never block on a full pipe. */
static int
log_drain(const char *needle)
{
	char line[LINE];
	int n = 0;

	while (reader_line(&w.log, line, sizeof(line), 0) == 1)
		n += strstr(line, needle) != NULL;
	return n;
}

/*
 * Connections open by the daemon's log: each is logged as opened after
 * it is counted, and as closed before it is no longer counted, so this
 * is never above the number the cap holds. Without a cap it would climb
 * to every client connected.
 */
struct live {
	int	now, most, closed;
};

static void
live_drain(struct live *l)
{
	char line[LINE];

	while (reader_line(&w.log, line, sizeof(line), 0) == 1) {
		if (strstr(line, "] connection ") == NULL)
			continue;
		if (strstr(line, " opened by ") != NULL && ++l->now > l->most)
			l->most = l->now;
		if (strstr(line, " closed") != NULL) {
			l->now--;
			l->closed++;
		}
	}
}

/* Waits for a log line holding want; says what else it saw if none. */
static void
expect_log(const char *want)
{
	char line[LINE], seen[4 * LINE] = "";
	size_t len = 0;
	int got;

	while ((got = reader_line(&w.log, line, sizeof(line), WAIT_MS)) == 1) {
		if (strstr(line, want) != NULL)
			return;
		if (len < sizeof(seen) - 1)
			len += (size_t)snprintf(seen + len, sizeof(seen) - len,
			    "%s | ", line);
	}
	ck_abort_msg("no log line '%s' (%s), after: %s", want, got == 0 ?
	    "the daemon ended" : "timed out", seen);
}

/* ------------------------------------------------------------------ */
/* Load                                                                */

enum { CLIENTS = 500, EACH = 20 };

/* Commands a client: EACH, or fewer in USBSERVER_LOAD_COMMANDS (CI's
 * valgrind and ThreadSanitizer runs, where every virsh run is slow). */
static int
load_each(void)
{
	const char *v = getenv("USBSERVER_LOAD_COMMANDS");
	int n = v != NULL ? atoi(v) : EACH;

	return n >= 1 && n <= EACH ? n : EACH;
}

struct loader {
	struct client	c;
	int		replied;	/* replies read, in order */
	bool		open;
};

/* Checks one report: its command ran once, after its domain's last. */
static void
load_call(const char *msg, int ran[CLIENTS][EACH], int next_run[CLIENTS])
{
	char vm[MAX_VM_NAME + 1], dev[DEVICE_MAX + 1];
	unsigned i, j;

	ck_assert_msg(call_parse(msg, vm, sizeof(vm), dev), "report '%s'", msg);
	ck_assert_msg(sscanf(vm, "load%u", &i) == 1 && i < CLIENTS &&
	    sscanf(dev, "%x:%x", &i, &j) == 2 && i < CLIENTS && j < EACH,
	    "report '%s'", msg);
	ck_assert_msg(ran[i][j]++ == 0, "load%u's command %u ran twice", i, j);
	ck_assert_msg(next_run[i] == (int)j, "load%u ran command %u before "
	    "%d", i, j, next_run[i]);
	next_run[i]++;
}

/* Reads what client l has for us; true once it has every reply. */
static bool
load_replies(struct loader *l, int i, int each)
{
	char line[LINE], want[LINE];

	while (l->replied < each && reader_line(&l->c.r, line, sizeof(line),
	    0) == 1) {
		snprintf(want, sizeof(want), "ok load%d attach %04x:%04x", i, i,
		    l->replied);
		ck_assert_str_eq(line, want);
		l->replied++;
	}
	return l->replied == each;
}

START_TEST(test_500_clients_of_20_commands_each_run_once_and_reply_in_order)
{
	static struct loader l[CLIENTS];
	static struct pollfd p[CLIENTS + 2];
	static int ran[CLIENTS][EACH], next_run[CLIENTS];
	struct rlimit rl;
	char buf[EACH * 40 + 16], msg[512];
	struct live live = { 0 };
	int fds, most = 0, calls = 0, served = 0, each = load_each();
	int64_t last = now_ms();

	/* 500 clients and the runner's own descriptors. */
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 2 * CLIENTS) {
		rl.rlim_cur = rl.rlim_max < 2 * CLIENTS ? rl.rlim_max :
		    2 * CLIENTS;
		ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	calls_setup();
	daemon_start(NULL);
	fds = daemon_fds();

	for (int i = 0; i < CLIENTS; i++) {
		size_t len = (size_t)snprintf(buf, sizeof(buf), "reply on\n");

		client_open(&l[i].c);
		l[i].open = true;
		for (int j = 0; j < each; j++)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len,
			    "load%d attach %04x:%04x\n", i, i, j);
		client_sendn(&l[i].c, buf, len);
	}
	/* Every client waits for its 20 replies, then leaves; those above
	 * the daemon's cap wait in its queue meanwhile. */
	while (served < CLIENTS || calls < CLIENTS * each) {
		static int who[CLIENTS];
		int n = 0, t;

		for (int i = 0; i < CLIENTS; i++)
			if (l[i].open) {
				who[n] = i;
				p[n++] = (struct pollfd){ .fd = l[i].c.r.fd,
				    .events = POLLIN };
			}
		p[n] = (struct pollfd){ .fd = calls_fd, .events = POLLIN };
		p[n + 1] = (struct pollfd){ .fd = w.log.fd, .events = POLLIN };
		ck_assert_int_ge(poll(p, (nfds_t)n + 2, 1000), 0);
		ck_assert_msg(now_ms() - last < STALL_MS, "stalled at %d "
		    "commands run, %d clients served", calls, served);
		live_drain(&live);
		while (call_next(msg, sizeof(msg), 0)) {
			load_call(msg, ran, next_run);
			calls++;
			last = now_ms();
		}
		for (int k = 0; k < n; k++) {
			struct loader *x = &l[who[k]];

			if (p[k].revents != 0 && load_replies(x, who[k], each)) {
				client_close(&x->c);
				x->open = false;
				served++;
				last = now_ms();
			}
		}
		if ((t = conn_threads()) > most)
			most = t;
	}
	ck_assert_int_le(live.most, MAX_CONNS);
	for (int i = 0; i < CLIENTS; i++)
		for (int j = 0; j < EACH; j++)
			ck_assert_int_eq(ran[i][j], j < each);
	while (live.closed < CLIENTS) {
		struct pollfd p1 = { .fd = w.log.fd, .events = POLLIN };

		ck_assert_msg(poll(&p1, 1, WAIT_MS) == 1, "%d of %d connections "
		    "closed", live.closed, CLIENTS);
		live_drain(&live);
	}
	expect_back_to(fds);
	printf("load: %d commands from %d clients; at most %d connections "
	    "(cap %d), %d connection threads\n", calls, CLIENTS, live.most,
	    MAX_CONNS, most);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Clients that misbehave                                              */

/* It sends thousands of commands with replies on and reads none: every
 * command still runs, in order, replies are dropped whole, and others
 * are served meanwhile. Long domain names make the replies fill any
 * socket buffer. */
START_TEST(test_a_client_that_never_reads_still_has_every_command_run)
{
	enum { N = 2000 };
	static char flood[N * (MAX_VM_NAME + 32)];
	char vm[MAX_VM_NAME + 1], got_vm[MAX_VM_NAME + 1], dev[DEVICE_MAX + 1];
	char msg[512], want[LINE], line[LINE];
	struct client c, other;
	bool other_sent = false, other_done = false;
	size_t len = 0, sent = 0;
	int fds, other_ran = 0, dropping = 0;

	calls_setup();
	daemon_start(NULL);
	fds = daemon_fds();
	memset(vm, 'v', MAX_VM_NAME - 1);
	vm[MAX_VM_NAME - 1] = '\0';
	client_open(&c);
	len = (size_t)snprintf(flood, sizeof(flood), "reply on\n");
	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(flood + len, sizeof(flood) - len,
		    "%s attach 0001:%04x\n", vm, i);
	/* Sent as the daemon takes it, while we take virsh's reports. */
	ck_assert_int_eq(fcntl(c.r.fd, F_SETFL, O_NONBLOCK), 0);

	for (int i = 0; i < N; i++) {
		ssize_t n;

		while (sent < len && (n = send(c.r.fd, flood + sent, len - sent,
		    MSG_NOSIGNAL)) > 0)
			sent += (size_t)n;
		ck_assert(sent == len || errno == EAGAIN);
		/* Someone else is served in the middle of it. */
		if (i == N / 2 && !other_sent) {
			other_sent = true;
			client_open(&other);
			client_send(&other, "reply on\nother attach 046d:c52b\n");
		}
		ck_assert_msg(call_next(msg, sizeof(msg), WAIT_MS),
		    "command %d did not run", i);
		ck_assert(call_parse(msg, got_vm, sizeof(got_vm), dev));
		if (strcmp(got_vm, "other") == 0) {
			other_ran++;
			i--;
			continue;
		}
		snprintf(want, sizeof(want), "0001:%04x", i);
		ck_assert_str_eq(got_vm, vm);
		ck_assert_str_eq(dev, want);
		if (i >= N / 2 && !other_done && reader_line(&other.r, line,
		    sizeof(line), 0) == 1) {
			ck_assert_str_eq(line, "ok other attach 046d:c52b");
			other_done = true;
		}
		dropping += log_drain("client does not read its replies; "
		    "dropping them");
	}
	ck_assert_int_eq(other_ran, 1);
	if (!other_done)
		expect_reply(&other, "ok other attach 046d:c52b");
	client_close(&other);
	dropping += log_drain("client does not read its replies; dropping them");
	ck_assert_int_eq(dropping, 1);
	client_close(&c);
	/* Logged as its connection ends. */
	expect_log("replies dropped for a client that did not read them");
	expect_back_to(fds);
}
END_TEST

/* A line cut by the client's going is one last line: run if it is a
 * whole command (as socat's last line without newline is), refused if
 * not, and never joined to anyone else's. */
START_TEST(test_a_client_gone_mid_line_leaves_no_half_command)
{
	struct client a, b;
	char msg[512], vm[MAX_VM_NAME + 1], dev[DEVICE_MAX + 1];

	calls_setup();
	daemon_start(NULL);
	client_open(&a);
	client_send(&a, "cut attach 046d:c5");
	client_close(&a);
	expect_log("[VMusb] invalid action: cut attach 046d:c5");
	client_open(&b);
	client_send(&b, "2b\nreply on\nwhole attach 046d:c52b\n");
	expect_reply(&b, "ok whole attach 046d:c52b");
	ck_assert(call_next(msg, sizeof(msg), WAIT_MS));
	ck_assert(call_parse(msg, vm, sizeof(vm), dev));
	ck_assert_str_eq(vm, "whole");
	ck_assert(!call_next(msg, sizeof(msg), 0));	/* nothing else ran */
	client_close(&b);
}
END_TEST

/* It leaves after three of fifty replies: the rest still run, in order,
 * their replies meet a closed socket (EPIPE, never SIGPIPE), and the
 * daemon serves the next client. */
START_TEST(test_a_client_gone_mid_reply_still_has_every_command_run)
{
	enum { N = 50 };
	struct client c, d;
	char buf[N * 32 + 16], msg[512], vm[MAX_VM_NAME + 1];
	char dev[DEVICE_MAX + 1], want[32], line[LINE];
	size_t len;
	int fds;

	calls_setup();
	daemon_start(NULL);
	fds = daemon_fds();
	client_open(&c);
	len = (size_t)snprintf(buf, sizeof(buf), "reply on\n");
	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
		    "mid attach 0002:%04x\n", i);
	client_sendn(&c, buf, len);
	for (int i = 0; i < 3; i++) {
		snprintf(want, sizeof(want), "ok mid attach 0002:%04x", i);
		client_reply(&c, line, sizeof(line));
		ck_assert_str_eq(line, want);
	}
	client_close(&c);
	for (int i = 0; i < N; i++) {
		ck_assert_msg(call_next(msg, sizeof(msg), WAIT_MS),
		    "command %d did not run", i);
		ck_assert(call_parse(msg, vm, sizeof(vm), dev));
		snprintf(want, sizeof(want), "0002:%04x", i);
		ck_assert_str_eq(dev, want);
	}
	expect_log("connection 1 closed");
	client_open(&d);
	client_send(&d, "reply on\nnext attach 046d:c52b\n");
	expect_reply(&d, "ok next attach 046d:c52b");
	client_close(&d);
	expect_log("connection 2 closed");
	expect_back_to(fds);
}
END_TEST

/* ------------------------------------------------------------------ */
#define BURST	150

/*
 * n clients that write "PREFIXi attach 0002:0001" and exit at once, as
 * socat does, all together: as uid, in gid and group, unless uid is 0.
 * Returns once every one has written its line and exited.
 */
static void
fire_and_forget(int n, uid_t uid, gid_t gid, gid_t group, const char *prefix)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	pid_t pids[BURST];
	int status;

	ck_assert_int_le(n, BURST);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w.sock);
	for (int i = 0; i < n; i++) {
		if ((pids[i] = fork()) == 0) {
			char line[64];
			int fd, len = snprintf(line, sizeof(line),
			    "%s%d attach 0002:0001\n", prefix, i);

			if (uid != 0 && (setgroups(1, &group) == -1 ||
			    setgid(gid) == -1 || setuid(uid) == -1))
				_exit(2);
			if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
			    0)) == -1 || connect(fd, (struct sockaddr *)&sa,
			    sizeof(sa)) == -1 || send(fd, line, (size_t)len,
			    MSG_NOSIGNAL) != len)
				_exit(1);
			_exit(0);
		}
		ck_assert_int_gt(pids[i], 0);
	}
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "a client of uid %lu could not send its line: %#x",
		    (unsigned long)uid, status);
	}
}

/* Reads the fake virsh's calls until every "PREFIXi" of each prefix,
 * i < its count, has run once; others' calls are passed over. */
static void
expect_served(const char *const prefix[], const int count[], int kinds)
{
	char msg[512], vm[MAX_VM_NAME + 1], dev[DEVICE_MAX + 1];
	bool seen[2][BURST] = { { false } };
	int left = 0, n;

	ck_assert_int_le(kinds, 2);
	for (int k = 0; k < kinds; k++)
		left += count[k];
	while (left > 0) {
		ck_assert_msg(call_next(msg, sizeof(msg), WAIT_MS),
		    "%d fire-and-forget commands never ran", left);
		ck_assert(call_parse(msg, vm, sizeof(vm), dev));
		for (int k = 0; k < kinds; k++) {
			size_t plen = strlen(prefix[k]);

			if (strncmp(vm, prefix[k], plen) != 0 ||
			    sscanf(vm + plen, "%d", &n) != 1)
				continue;
			ck_assert(n >= 0 && n < count[k] && !seen[k][n]);
			seen[k][n] = true;
			left--;
		}
	}
}

/* Clients that write a line and exit at once, as socat does, in a burst:
 * the daemon looks at many of them only once they are gone, and serves
 * every one, by the credentials they connected with. */
START_TEST(test_a_burst_of_fire_and_forget_clients_is_served_whole)
{
	static const char *const prefix[] = { "burst" };
	static const int count[] = { BURST };

	calls_setup();
	daemon_start(NULL);
	fire_and_forget(BURST, 0, 0, 0, "burst");
	expect_served(prefix, count, 1);
}
END_TEST

#define HELD	200

/*
 * The guest of vm (its pid file, written before it connects) opens n
 * connections and leaves a partial line on each, which a guest may, and
 * holds them: its pid, once all are connected (the daemon may have closed
 * some). Fails if it cannot connect them within WAIT_MS.
 */
static pid_t
guest_holds(const char *vm, int n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd p;
	char path[256], byte;
	int done[2], go[2];
	pid_t pid;
	FILE *f;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w.sock);
	ck_assert_int_eq(pipe2(done, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
	if ((pid = fork()) == 0) {
		close(done[0]);
		close(go[1]);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 ||
		    read(go[0], &byte, 1) != 1)
			_exit(2);
		for (int i = 0; i < n; i++) {
			int fd = socket(AF_UNIX, SOCK_STREAM, 0);

			if (fd == -1 || connect(fd, (struct sockaddr *)&sa,
			    sizeof(sa)) == -1)
				_exit(3);
			(void)!send(fd, "reply on\nheld det", 17, MSG_NOSIGNAL);
		}
		(void)!write(done[1], "", 1);
		for (;;)
			pause();
	}
	ck_assert_int_gt(pid, 0);
	close(done[1]);
	close(go[0]);
	snprintf(path, sizeof(path), "%s/%s.pid", w.qemu_run, vm);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f, "%ld\n", (long)pid);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(write(go[1], "", 1), 1);
	close(go[1]);
	p = (struct pollfd){ .fd = done[0], .events = POLLIN };
	ck_assert_msg(poll(&p, 1, WAIT_MS) == 1 && read(done[0], &byte, 1) == 1,
	    "the guest could not open %d connections within %d ms", n, WAIT_MS);
	close(done[0]);
	return pid;
}

/* The guest of vm (its pid file) sends n commands for vm on one
 * connection, reads nothing, and stays: its pid. */
static pid_t
guest_floods(const char *vm, int n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[256], line[64];
	pid_t pid;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w.sock);
	snprintf(path, sizeof(path), "%s/%s.pid", w.qemu_run, vm);
	snprintf(line, sizeof(line), "%s detach 046d:c52b\n", vm);
	if ((pid = fork()) == 0) {
		FILE *f = fopen(path, "w");
		int fd;

		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || f == NULL ||
		    fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0 ||
		    (fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
		    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
			_exit(2);
		for (int i = 0; i < n; i++)
			if (send(fd, line, strlen(line), MSG_NOSIGNAL) == -1)
				_exit(3);
		for (;;)
			pause();
	}
	ck_assert_int_gt(pid, 0);
	return pid;
}

/*
 * Under load, fire-and-forget clients are still served, every one: 100
 * of root's and 8 of a member of the socket's group (the most one peer
 * may hold), judged by the credentials they connected with when they are
 * gone, while one guest tries to hold 200 connections with unfinished
 * lines and another floods its own domain with commands.
 */
START_TEST(test_fire_and_forget_clients_are_served_while_guests_hold_and_flood)
{
	static const char *const prefix[] = { "ffroot", "ffgroup" };
	static const int count[] = { 100, 8 };
	pid_t holder, flooder;

	if (geteuid() != 0 && test_skips("fire-and-forget load test", "needs "
	    "root to run peers as other users"))
		return;
	ck_assert_int_eq(chmod(scratch_dir(), 0711), 0);
	ck_assert_int_eq(chmod(w.dir, 0711), 0);
	calls_setup();
	daemon_start("--socket-group", "65533", "--socket-mode", "0660", NULL);
	holder = guest_holds("vmheld", HELD);
	flooder = guest_floods("vmflood", 300);

	fire_and_forget(count[0], 0, 0, 0, prefix[0]);
	fire_and_forget(count[1], 65531, 65531, 65533, prefix[1]);
	expect_served(prefix, count, 2);

	ck_assert_int_eq(kill(holder, SIGKILL), 0);
	ck_assert_int_eq(waitpid(holder, NULL, 0), holder);
	ck_assert_int_eq(kill(flooder, SIGKILL), 0);
	ck_assert_int_eq(waitpid(flooder, NULL, 0), flooder);
}
END_TEST

/* A virsh that misbehaves                                             */

START_TEST(test_virsh_dying_flooding_or_leaving_a_child_is_answered)
{
	struct client c;
	char pidbuf[32], path[300];
	long orphan;

	daemon_start(NULL);
	client_open(&c);
	client_send(&c, "reply on\nsigvm attach 046d:c52b\n"
	    "floodvm attach 046d:c52b\norphanvm attach 046d:c52b\n");
	expect_reply(&c, "error sigvm attach 046d:c52b: virsh killed by "
	    "signal 9");
	/* 4 MB read and thrown away; the last error line is the reason. */
	expect_reply(&c, "error floodvm attach 046d:c52b: flooded");
	/* Answered when virsh exits, not when its child lets go of the
	 * pipe (60 s later). */
	expect_reply(&c, "ok orphanvm attach 046d:c52b");
	snprintf(path, sizeof(path), "%s/orphan.pid", w.dir);
	ck_assert_int_gt(slurp(path, pidbuf, sizeof(pidbuf)), 0);
	orphan = strtol(pidbuf, NULL, 10);
	ck_assert_int_gt(orphan, 1);
	client_send(&c, "after attach 046d:c52b\n");
	expect_reply(&c, "ok after attach 046d:c52b");
	kill((pid_t)orphan, SIGKILL);
	client_close(&c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The file system                                                     */

/* The XML directory stops being writable while the daemon runs: the
 * command fails with the reason, the daemon goes on, and it works again
 * once the directory does. Root runs it without CAP_DAC_OVERRIDE (as the
 * unit does), which would write anywhere. */
START_TEST(test_xml_directory_not_writable_fails_commands_until_it_is)
{
	struct client c;
	char want[LINE];

	w.chown_only = geteuid() == 0;
	daemon_start(NULL);
	client_open(&c);
	client_send(&c, "reply on\n");
	ck_assert_int_eq(chmod(w.xmldir, 0500), 0);
	client_send(&c, "ro attach 046d:c52b\n");
	snprintf(want, sizeof(want), "error ro attach 046d:c52b: cannot create "
	    "a file in %s: Permission denied", w.xmldir);
	expect_reply(&c, want);
	ck_assert_int_eq(chmod(w.xmldir, 0700), 0);
	client_send(&c, "rw attach 046d:c52b\n");
	expect_reply(&c, "ok rw attach 046d:c52b");
	client_close(&c);
}
END_TEST

/* Someone removes the socket file: the daemon makes it again (a guest's
 * QEMU reconnects to the path), and the connections it has go on. */
START_TEST(test_socket_file_removed_is_made_again)
{
	struct client before, after;
	char moved[300];
	struct stat st;

	daemon_start(NULL);
	client_open(&before);
	client_send(&before, "reply on\n");
	ck_assert_int_eq(unlink(w.sock), 0);
	expect_log("[VMusb] our socket ");
	client_open(&after);
	client_send(&after, "reply on\nnew attach 046d:c52b\n");
	expect_reply(&after, "ok new attach 046d:c52b");
	client_send(&before, "old attach 046d:c52b\n");
	expect_reply(&before, "ok old attach 046d:c52b");
	client_close(&after);

	/* Moved away, the same. */
	snprintf(moved, sizeof(moved), "%s/moved.sock", w.dir);
	ck_assert_int_eq(rename(w.sock, moved), 0);
	expect_log("[VMusb] our socket ");
	client_open(&after);
	client_send(&after, "reply on\nagain attach 046d:c52b\n");
	expect_reply(&after, "ok again attach 046d:c52b");
	client_close(&after);
	client_close(&before);
	/* At the end, the socket it made is removed, the moved one not. */
	ck_assert_int_eq(daemon_stop(), 0);
	ck_assert_int_eq(lstat(w.sock, &st), -1);
	ck_assert_int_eq(lstat(moved, &st), 0);
}
END_TEST

/* Someone puts another socket in its place: that one is left alone,
 * also at the end, and the daemon's connections go on. */
START_TEST(test_socket_file_replaced_is_left_alone)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct client c;
	char other[300];
	struct stat st, theirs;
	int fd;

	daemon_start(NULL);
	client_open(&c);
	client_send(&c, "reply on\n");
	snprintf(other, sizeof(other), "%s/other.sock", w.dir);
	ck_assert_int_lt(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s",
	    other), (int)sizeof(sa.sun_path));
	ck_assert_int_ne(fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), -1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(lstat(other, &theirs), 0);
	ck_assert_int_eq(rename(other, w.sock), 0);
	expect_log("[VMusb] something else took the place of our socket");
	client_send(&c, "still attach 046d:c52b\n");
	expect_reply(&c, "ok still attach 046d:c52b");
	client_close(&c);
	ck_assert_int_eq(daemon_stop(), 0);
	ck_assert_int_eq(lstat(w.sock, &st), 0);
	ck_assert_uint_eq(st.st_ino, theirs.st_ino);
	close(fd);
}
END_TEST

/*
 * One peer's many connections share one log budget: 50 connections of
 * 30 junk lines each, from one uid, log 20 lines a minute, and the rest
 * are counted in summaries.
 */
START_TEST(test_many_connections_of_one_peer_share_one_log_budget)
{
	enum { CONNS = 50, LINES = 30 };
	static struct client c[CONNS];
	char line[LINE], junk[LINES * 5 + 1] = "";
	unsigned long logged = 0, unlogged = 0, n;
	int64_t t0 = now_ms();
	const char *at;

	for (int j = 0; j < LINES; j++)
		strcat(junk, "junk\n");
	daemon_start(NULL);
	for (int i = 0; i < CONNS; i++) {
		client_open(&c[i]);
		client_send(&c[i], junk);
	}
	for (int i = 0; i < CONNS; i++)
		client_close(&c[i]);
	while (logged + unlogged < CONNS * LINES) {
		ck_assert_msg(reader_line(&w.log, line, sizeof(line), WAIT_MS) ==
		    1, "%lu logged and %lu counted of %d", logged, unlogged,
		    CONNS * LINES);
		if (strstr(line, "[VMusb] invalid action: junk") != NULL)
			logged++;
		else if ((at = strstr(line, "[VMusb] ")) != NULL &&
		    sscanf(at, "[VMusb] %lu more invalid", &n) == 1)
			unlogged += n;
	}
	ck_assert_uint_eq(logged + unlogged, CONNS * LINES);
	ck_assert_uint_le(logged, 20 * (1 + (now_ms() - t0) / 60000));
}
END_TEST

/*
 * A process of uid, in gid and group, that opens n connections at once
 * (named first by pidfile, as libvirt names a QEMU, if given), sends
 * "reply on" and a command for vm on each, holding every one open until
 * each is answered or closed: how many were answered ok.
 */
static int
hold_connections(uid_t uid, gid_t gid, gid_t group, const char *pidfile,
    int n, const char *vm)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd[2], go[2], status, ok = 0;
	char line[160], byte;
	pid_t pid;
	FILE *f;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w.sock);
	snprintf(line, sizeof(line), "reply on\n%s detach 046d:c52b\n", vm);
	ck_assert_int_eq(pipe2(fd, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
	if ((pid = fork()) == 0) {
		int *s = calloc((size_t)n, sizeof(int)), got = 0;
		char buf[256];

		if (s == NULL || setgroups(1, &group) == -1 ||
		    setgid(gid) == -1 || setuid(uid) == -1 ||
		    read(go[0], &byte, 1) != 1)
			_exit(2);
		for (int i = 0; i < n; i++)
			if ((s[i] = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
			    connect(s[i], (struct sockaddr *)&sa,
			    sizeof(sa)) == -1)
				_exit(3);
		for (int i = 0; i < n; i++)
			(void)!send(s[i], line, strlen(line), MSG_NOSIGNAL);
		/* Each is answered, or closed by the daemon: all are open
		 * until every one has been, so that they count together. */
		for (int i = 0; i < n; i++) {
			ssize_t r = read(s[i], buf, sizeof(buf) - 1);

			if (r > 0) {
				buf[r] = '\0';
				got += strncmp(buf, "ok ", 3) == 0;
			}
		}
		(void)!write(fd[1], &got, sizeof(got));
		_exit(0);
	}
	ck_assert_int_gt(pid, 0);
	close(fd[1]);
	close(go[0]);
	/* Its pid file, root's as libvirt's are, before it connects. */
	if (pidfile != NULL) {
		ck_assert_ptr_nonnull(f = fopen(pidfile, "w"));
		fprintf(f, "%ld\n", (long)pid);
		ck_assert_int_eq(fclose(f), 0);
	}
	ck_assert_int_eq(write(go[1], "", 1), 1);
	close(go[1]);
	if (read(fd[0], &ok, sizeof(ok)) != (ssize_t)sizeof(ok))
		ok = -1;
	close(fd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "the holder exited %#x", status);
	return ok;
}

#define HOLDERS	40

/*
 * One peer cannot hold every slot: a host client of another user (in
 * the socket's group), or a guest, opening 40 connections at once keeps
 * 8 of them, the others closed at once and logged; the host's root
 * client is served meanwhile.
 */
START_TEST(test_one_peer_cannot_hold_every_slot)
{
	char run_dir[160], pidfile[200];
	struct client c;

	if (geteuid() != 0 && test_skips("slot test", "needs root to run "
	    "peers as other users"))
		return;
	ck_assert_int_eq(chmod(scratch_dir(), 0711), 0);
	ck_assert_int_eq(chmod(w.dir, 0711), 0);
	snprintf(run_dir, sizeof(run_dir), "%s/qemu-run", w.dir);
	snprintf(pidfile, sizeof(pidfile), "%s/vmG.pid", run_dir);
	daemon_start("--socket-group", "65533", "--socket-mode", "0660",
	    "--qemu-run-dir", run_dir, NULL);
	ck_assert_int_eq(hold_connections(65534, 65534, 65533, NULL, HOLDERS,
	    "win10"), 8);
	ck_assert(log_wait("[VMusb] connections of uid 65534 are closed at "
	    "once: it holds the most connections one peer may", NULL, 0));
	ck_assert_int_eq(hold_connections(65534, 65534, 65533, pidfile,
	    HOLDERS, "vmG"), 8);
	ck_assert(log_wait("[VMusb] connections of the guest of vmG are "
	    "closed at once: it holds the most connections one peer may",
	    NULL, 0));
	client_open(&c);
	client_send(&c, "reply on\nroot attach 046d:c52b\n");
	expect_reply(&c, "ok root attach 046d:c52b");
	client_close(&c);
}
END_TEST

/*
 * A client that is not a guest and leaves a line unfinished is closed
 * at --line-timeout, the line unread; a guest's line is never cut short,
 * as that would cut its serial connection.
 */
START_TEST(test_an_unfinished_line_times_out_but_not_a_guests)
{
	char run_dir[160], pidfile[200], line[LINE];
	struct client host, guest;
	FILE *f;

	snprintf(run_dir, sizeof(run_dir), "%s/qemu-run", w.dir);
	snprintf(pidfile, sizeof(pidfile), "%s/vmT.pid", run_dir);
	ck_assert_ptr_nonnull(f = fopen(pidfile, "w"));
	fprintf(f, "%ld\n", (long)getpid());	/* we are its QEMU */
	ck_assert_int_eq(fclose(f), 0);
	daemon_start("--line-timeout", "1", "--qemu-run-dir", run_dir, NULL);
	client_open(&guest);
	client_send(&guest, "reply on\nvmT det");
	ck_assert(log_wait("the guest of vmT (libvirt's pid file, ", NULL, 0));
	ck_assert_int_eq(unlink(pidfile), 0);	/* only the guest is ours */
	client_open(&host);
	client_send(&host, "reply on\nwin10 att");
	/* The host client's connection ends, the line never run. */
	ck_assert_int_eq(reader_line(&host.r, line, sizeof(line), WAIT_MS), 0);
	ck_assert(log_wait("[VMusb] a line left unfinished for 1 s: "
	    "connection closed", NULL, 0));
	client_close(&host);
	/* Longer than that too, the guest's line is still there. */
	client_send(&guest, "ach 046d:c52b\n");
	expect_reply(&guest, "ok vmT detach 046d:c52b");
	client_close(&guest);
}
END_TEST

/* Forks a guest of vm (named by a root-owned pid file in run_dir, as
 * libvirt names a QEMU) that opens n connections and sends on each one
 * "vm detach 000K:000K"; its pid, to reap. */
static pid_t
guest_commands(const char *run_dir, const char *vm, int n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[256], byte;
	int go[2];
	pid_t pid;
	FILE *f;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w.sock);
	ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
	if ((pid = fork()) == 0) {
		char line[128], buf[256];
		int *s = calloc((size_t)n, sizeof(int));

		if (s == NULL || read(go[0], &byte, 1) != 1)
			_exit(2);
		for (int i = 0; i < n; i++) {
			snprintf(line, sizeof(line), "reply on\n%s detach "
			    "%04x:%04x\n", vm, i + 1, i + 1);
			if ((s[i] = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
			    connect(s[i], (struct sockaddr *)&sa,
			    sizeof(sa)) == -1 || send(s[i], line, strlen(line),
			    MSG_NOSIGNAL) != (ssize_t)strlen(line))
				_exit(3);
		}
		for (int i = 0; i < n; i++)
			(void)!read(s[i], buf, sizeof(buf));
		_exit(0);
	}
	ck_assert_int_gt(pid, 0);
	close(go[0]);
	snprintf(path, sizeof(path), "%s/%s.pid", run_dir, vm);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f, "%ld\n", (long)pid);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(write(go[1], "", 1), 1);
	close(go[1]);
	return pid;
}

/* The next "start" event of the fake virsh: its verb. */
static void
next_start(char *verb, size_t size)
{
	char line[LINE];
	const char *sp;

	do
		ck_assert_msg(reader_line(&w.events, line, sizeof(line),
		    WAIT_MS) == 1, "no virsh started");
	while (strncmp(line, "start ", 6) != 0);
	sp = strrchr(line, ' ');
	snprintf(verb, size, "%s", sp + 1);
}

/*
 * A host client's command for a domain goes before that domain's
 * guest's commands that wait: a guest's flood delays it by the one virsh
 * run under way, no more.
 */
START_TEST(test_a_hosts_command_goes_before_a_guests_queue)
{
	enum { GUESTS = 3 };
	char run_dir[160], verb[64], line[LINE];
	struct client host;
	int status, seen = 0;
	pid_t guest;

	snprintf(run_dir, sizeof(run_dir), "%s/qemu-run", w.dir);
	daemon_start("--qemu-run-dir", run_dir, NULL);
	guest = guest_commands(run_dir, "gatevm", GUESTS);
	next_start(verb, sizeof(verb));
	ck_assert_str_eq(verb, "detach-device");
	/* The guest's other commands are on their way to the queue. */
	while (seen < GUESTS && log_wait("[VMusb] connection ", line,
	    sizeof(line)))
		seen += strstr(line, ": gatevm detach ") != NULL;
	ck_assert_int_eq(seen, GUESTS);
	client_open(&host);
	client_send(&host, "reply on\ngatevm attach 0009:0009\n");
	ck_assert(log_wait(": gatevm attach 0009:0009", NULL, 0));
	ck_assert_int_eq(write(w.gate, "go\n", 3), 3);
	next_start(verb, sizeof(verb));
	ck_assert_msg(strcmp(verb, "attach-device") == 0, "a guest's %s ran "
	    "before the host's attach", verb);
	for (int i = 0; i < GUESTS; i++)
		ck_assert_int_eq(write(w.gate, "go\n", 3), 3);
	expect_reply(&host, "ok gatevm attach 0009:0009");
	client_close(&host);
	ck_assert_int_eq(waitpid(guest, &status, 0), guest);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

/* A guest has GUEST_BURST commands run at once, then GUEST_RATE a
 * second; the rest are refused, which the log says once. */
START_TEST(test_a_guests_commands_are_rate_limited)
{
	enum { N = 30 };
	char run_dir[160], pidfile[200], in[N * 40], out[N * 64];
	char self[PATH_MAX];
	char *argv[] = { self, (char *)"peer", w.sock, (char *)"--pidfile",
	    pidfile, NULL };
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int64_t t0;
	int ok = 0;
	size_t len = 0;
	const char *p;

	ck_assert_int_gt(n, 0);
	self[n] = '\0';
	snprintf(run_dir, sizeof(run_dir), "%s/qemu-run", w.dir);
	snprintf(pidfile, sizeof(pidfile), "%s/ratevm.pid", run_dir);
	len = (size_t)snprintf(in, sizeof(in), "reply on\n");
	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(in + len, sizeof(in) - len,
		    "ratevm detach 046d:c52b\n");
	daemon_start("--qemu-run-dir", run_dir, NULL);
	t0 = now_ms();
	ck_assert_int_eq(run(argv, in, out, sizeof(out)), 0);
	for (p = out; (p = strstr(p, "ok ratevm")) != NULL; p++)
		ok++;
	ck_assert_int_le(ok, GUEST_BURST + GUEST_RATE *
	    (now_ms() - t0) / 1000 + 1);
	ck_assert_int_lt(ok, N);
	ck_assert(log_wait("[VMusb] the guest of ratevm asks for more than 4 "
	    "commands a second: the rest are refused", NULL, 0));
}
END_TEST

#define STOPS	30

/* SIGTERM while virsh runs: the daemon lets it finish, and answers and
 * logs it before it exits, every time. */
START_TEST(test_sigterm_while_virsh_runs_loses_no_answer)
{
	char line[LINE];
	struct client c;
	int status;

	for (int i = 0; i < STOPS; i++) {
		daemon_start(NULL);
		client_open(&c);
		client_send(&c, "reply on\ngatevm attach 046d:c52b\n");
		do
			ck_assert_msg(reader_line(&w.events, line, sizeof(line),
			    WAIT_MS) == 1, "stop %d: virsh did not start", i);
		while (strncmp(line, "start ", 6) != 0);
		ck_assert_int_eq(kill(w.daemon, SIGTERM), 0);
		ck_assert_int_eq(write(w.gate, "go\n", 3), 3);
		expect_reply(&c, "ok gatevm attach 046d:c52b");
		ck_assert_msg(log_wait("[VMusb] gatevm attached device 046d:c52b",
		    NULL, 0), "stop %d: no log line", i);
		client_close(&c);
		ck_assert_int_eq(waitpid(w.daemon, &status, 0), w.daemon);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		w.daemon = -1;
		close(w.log.fd);
		w.log.fd = -1;
	}
}
END_TEST

/* ------------------------------------------------------------------ */
/* No descriptors left                                                 */

/*
 * Under a low descriptor limit, the daemon takes only the connections it
 * has room for, and says so at start: admission is decided when a
 * connection is accepted. Those it takes never run short: all of them at
 * once run virsh, and every command succeeds. The others wait,
 * unaccepted, their commands sent, and are served once room is free.
 */
static void
later_open(struct client *c, int i)
{
	char line[LINE];

	client_open(c);
	snprintf(line, sizeof(line), "reply on\nlater%d attach 046d:c52b\n", i);
	client_send(c, line);
}

START_TEST(test_out_of_descriptors_clients_wait_and_are_served_later)
{
	enum { MOST = 16, WAITING = 3 };
	static struct client held[MOST], c[WAITING];
	char line[LINE], want[LINE];
	unsigned room;
	const char *at;

	w.prefix[0] = "prlimit";
	w.prefix[1] = "--nofile=112:4096";
	w.prefix[2] = "--";
	daemon_start(NULL);
	ck_assert(log_wait("descriptors leave room for ", line, sizeof(line)));
	ck_assert((at = strstr(line, "room for ")) != NULL &&
	    sscanf(at + 9, "%u", &room) == 1);
	ck_assert_msg(room >= 2 && room < MOST, "room for %u", room);
	/* As many as there is room for, each running virsh at once. */
	for (unsigned i = 0; i < room; i++) {
		snprintf(line, sizeof(line), "reply on\ngate%u attach "
		    "046d:c52b\n", i);
		client_open(&held[i]);
		client_send(&held[i], line);
	}
	for (unsigned started = 0; started < room; ) {
		ck_assert_msg(reader_line(&w.events, line, sizeof(line),
		    WAIT_MS) == 1, "%u of %u virsh runs started", started, room);
		started += strncmp(line, "start ", 6) == 0 &&
		    strstr(line, " gate") != NULL;
	}
	for (int i = 0; i < WAITING; i++)
		later_open(&c[i], i);
	ck_assert_int_le(conn_threads(), (int)room);
	for (unsigned i = 0; i < room; i++)
		ck_assert_int_eq(write(w.gate, "go\n", 3), 3);
	for (unsigned i = 0; i < room; i++) {
		snprintf(want, sizeof(want), "ok gate%u attach 046d:c52b", i);
		expect_reply(&held[i], want);
		client_close(&held[i]);
	}
	/* Room is free again: the waiting ones are served. */
	for (int i = 0; i < WAITING; i++) {
		snprintf(want, sizeof(want), "ok later%d attach 046d:c52b", i);
		expect_reply(&c[i], want);
		client_close(&c[i]);
	}
}
END_TEST

Suite *
load_suite(void)
{
	Suite *s = suite_create("load and faults");
	TCase *load = tcase_create("load");
	TCase *clients = tcase_create("clients");
	TCase *attacks = tcase_create("attacks");
	TCase *virsh = tcase_create("virsh");
	TCase *fs = tcase_create("files and descriptors");

	/* 10000 virsh runs, also with the daemon under valgrind. */
	struct { TCase *tc; int timeout; } all[] = {
		{ load, 900 }, { clients, 300 }, { attacks, 300 }, { virsh, 60 },
		{ fs, 60 },
	};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		tcase_add_checked_fixture(all[i].tc, world_setup, world_teardown);
		tcase_set_timeout(all[i].tc, all[i].timeout);
		suite_add_tcase(s, all[i].tc);
	}
	tcase_add_test(load, test_500_clients_of_20_commands_each_run_once_and_reply_in_order);
	tcase_add_test(clients, test_a_client_that_never_reads_still_has_every_command_run);
	tcase_add_test(clients, test_a_client_gone_mid_line_leaves_no_half_command);
	tcase_add_test(clients, test_a_client_gone_mid_reply_still_has_every_command_run);
	tcase_add_test(clients, test_a_burst_of_fire_and_forget_clients_is_served_whole);

	/* A hostile peer, attack by attack: 1, hold every slot; 2, starve
	 * the host; 4, refuse who leaves early; 5, lose an answer on stop;
	 * 7, flood the log. The others are where their helpers are. */
	tcase_add_test(attacks, test_one_peer_cannot_hold_every_slot);
	tcase_add_test(attacks, test_an_unfinished_line_times_out_but_not_a_guests);
	tcase_add_test(attacks, test_a_hosts_command_goes_before_a_guests_queue);
	tcase_add_test(attacks, test_a_guests_commands_are_rate_limited);
	tcase_add_test(attacks, test_fire_and_forget_clients_are_served_while_guests_hold_and_flood);
	tcase_add_test(attacks, test_sigterm_while_virsh_runs_loses_no_answer);
	tcase_add_test(attacks, test_many_connections_of_one_peer_share_one_log_budget);
	daemon_attacks(attacks);
	client_attacks(attacks);

	tcase_add_test(virsh, test_virsh_dying_flooding_or_leaving_a_child_is_answered);
	tcase_add_test(fs, test_xml_directory_not_writable_fails_commands_until_it_is);
	tcase_add_test(fs, test_socket_file_removed_is_made_again);
	tcase_add_test(fs, test_socket_file_replaced_is_left_alone);
	tcase_add_test(fs, test_out_of_descriptors_clients_wait_and_are_served_later);
	return s;
}
