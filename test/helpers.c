/*
 * helpers.c: the world each live test runs in: a temporary directory, a
 * fake virsh that reports every call on a FIFO, the daemon as a process
 * with its log on a pipe, and clients on its real socket.
 *
 * Everything waits on real events (a line on a pipe, a FIFO or the
 * socket) with a generous deadline, never on a bare sleep.
 */
#define _GNU_SOURCE

#include <sys/prctl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD	77		/* Linux 6.5; older headers lack it */
#endif
#include <linux/capability.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/pidfd.h>

#include <dirent.h>
#include <grp.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests.h"
#include "../common.h"

extern char **environ;

struct world w;

/* The runner's directory: each test's own is made in it, and the runner
 * removes it whole at the end, also what a failed test left behind (Check
 * ends a failed test at once, without its teardown). */
static char scratch[40];

const char *
scratch_dir(void)
{
	if (scratch[0] == '\0') {
		snprintf(scratch, sizeof(scratch), "/tmp/usbserver-test.XXXXXX");
		if (mkdtemp(scratch) == NULL) {
			perror("mkdtemp");
			exit(EXIT_FAILURE);
		}
	}
	return scratch;
}

/*
 * The fake virsh. It records its arguments, environment, parent's pid,
 * open descriptors and the XML file it was given, reports "start" and
 * "end" on the events FIFO, and answers by the domain's name as the real
 * one would:
 *   fail*   two "error:" lines (virsh's generic one, then the reason), exit 1
 *   quiet*  exit 3, no output
 *   noisy*  an ordinary line on stdout and stderr, exit 1
 *   sig*    killed by SIGKILL
 *   hang*   never returns (sleeps past any deadline a test sets)
 *   closed* closes its output, then never returns
 *   gate*   waits for a line on the gate FIFO, then succeeds
 *   held*   libvirt's refusal for a device another domain holds
 *   multi*  libvirt's refusal for two host devices with one VID:PID
 *   flood*  4 MB of lines on stderr, then an "error:" line, exit 1
 *   orphan* leaves a child holding its output open (its pid in
 *           "orphan.pid"), exit 0
 *   late*   succeeds; once a line comes on the gate FIFO, an "error:"
 *           line comes as virsh says it lost libvirtd, then "said" on
 *           the events FIFO
 *   kept*   as libvirt: a detach fails unless the domain holds the device,
 *           at the address the XML names (by its ids, without one)
 *   other   "Device attached successfully", exit 0
 * and "list" prints the file "domains" in its directory, if there is one.
 * A domain's attached devices are kept in "state.VM" ("VVVV PPPP BUS DEV"
 * lines); "dumpxml" prints them as libvirt does. "domstate" prints the
 * file "domstate.VM" ("running" without one; a file "gone.VM" makes it
 * fail as for a domain that does not exist). "event" records its
 * arguments in "event.args" and prints what the test writes to the FIFO
 * "libvirt-events" (w.libvirt) until the test closes it; with a file
 * "libvirtd-down" it fails at once, as virsh does without libvirtd, its
 * error the file's text if it has any.
 * Started with only "[-c URI] -q", it is virsh's shell, as on a pipe:
 * it notes its pid in "shells", prompts, echoes each line, runs "echo"
 * and "echo --err" itself and every other command as above (sig* kills
 * the shell too, as a crash of virsh would); with a file "noshell" it
 * ends at once instead.
 */
static const char fake_virsh[] =
    "#!/bin/sh\n"
    "dir='%s'\n"
    "id=$$\n"
    "case \"$*\" in\n"
    "-q|'-c '*' -q')\n"
    "	echo $$ >> \"$dir/shells\"\n"
    "	[ -e \"$dir/noshell\" ] && exit 0\n"
    "	pre=; [ \"$1\" = -c ] && pre=\"-c $2\"\n"
    "	while printf 'virsh # '; IFS= read -r line; do\n"
    "		printf '%%s\\n' \"$line\"\n"
    "		eval \"set -- $line\"\n"
    "		if [ \"$1 $2\" = 'echo --err' ]; then\n"
    "			shift 2; printf 'error: %%s\\n' \"$*\" >&2; continue\n"
    "		elif [ \"$1\" = echo ]; then\n"
    "			shift; printf '%%s' \"$*\"; continue\n"
    "		fi\n"
    "		FAKE_SHELL=$$ \"$0\" $pre \"$@\" < /dev/null\n"
    "	done\n"
    "	exit 0 ;;\n"
    "esac\n"
    "case \" $* \" in\n"
    "*' event '*)\n"
    "	for a in \"$@\"; do printf '%%s\\n' \"$a\"; done > \"$dir/event.args\"\n"
    "	if [ -s \"$dir/libvirtd-down\" ]; then\n"
    "		printf 'error: %%s\\n' \"$(cat \"$dir/libvirtd-down\")\" >&2; exit 1\n"
    "	elif [ -e \"$dir/libvirtd-down\" ]; then\n"
    "		echo 'error: failed to connect to the hypervisor' >&2; exit 1\n"
    "	fi\n"
    "	exec cat \"$dir/libvirt-events\" ;;\n"
    "*' domstate '*)\n"
    "	for a in \"$@\"; do dom=$a; done\n"
    "	if [ -e \"$dir/gone.$dom\" ]; then\n"
    "		echo \"error: failed to get domain '$dom'\" >&2; exit 1\n"
    "	fi\n"
    "	cat \"$dir/domstate.$dom\" 2>/dev/null || echo running\n"
    "	exit 0 ;;\n"
    "esac\n"
    "for a in \"$@\"; do printf '%%s\\n' \"$a\"; done > \"$dir/call.$id.args\"\n"
    "env | grep -v '^FAKE_SHELL=' > \"$dir/call.$id.env\"\n"
    "echo $PPID > \"$dir/call.$id.ppid\"\n"
    "ls -l /proc/$$/fd > \"$dir/call.$id.fds\"\n"
    "verb= dom= file=\n"
    "while [ $# -gt 0 ]; do\n"
    "	case $1 in\n"
    "	-c) shift ;;\n"
    "	--domain) dom=$2; shift ;;\n"
    "	--file) file=$2; shift ;;\n"
    "	*-device|list|dumpxml) verb=$1 ;;\n"
    "	esac\n"
    "	shift\n"
    "done\n"
    "if [ \"$verb\" = list ]; then\n"
    "	cat \"$dir/domains\" 2>/dev/null\n"
    "	exit 0\n"
    "fi\n"
    "state=\"$dir/state.$dom\"\n"
    "if [ \"$verb\" = dumpxml ]; then\n"
    "	echo \"<domain type='kvm' id='1'>\"\n"
    "	echo \"  <name>$dom</name>\"\n"
    "	echo '  <devices>'\n"
    "	echo \"    <hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source></hostdev>\"\n"
    "	[ -f \"$state\" ] && while read v p b d; do\n"
    "		echo \"    <hostdev mode='subsystem' type='usb' managed='no'>\"\n"
    "		echo \"      <source>\"\n"
    "		echo \"        <vendor id='0x$v'/>\"\n"
    "		echo \"        <product id='0x$p'/>\"\n"
    "		echo \"        <address bus='$b' device='$d'/>\"\n"
    "		echo \"      </source>\"\n"
    "		echo \"      <alias name='hostdev0'/>\"\n"
    "		echo \"    </hostdev>\"\n"
    "	done < \"$state\"\n"
    "	echo '  </devices>'\n"
    "	echo '</domain>'\n"
    "	exit 0\n"
    "fi\n"
    "[ -n \"$file\" ] && cat -- \"$file\" > \"$dir/call.$id.xml\"\n"
    "echo \"start $id $dom $verb\" > \"$dir/events\"\n"
    "status=0\n"
    "case $dom in\n"
    "fail*)\n"
    "	echo \"error: Failed to ${verb%%-device} device from $file\" >&2\n"
    "	echo \"error: Requested operation is not valid: fake refusal\" >&2\n"
    "	status=1 ;;\n"
    "quiet*) status=3 ;;\n"
    "noisy*) echo 'some output'; echo 'a warning, not an error' >&2; status=1 ;;\n"
    "sig*) kill -KILL ${FAKE_SHELL:-$$} $$ ;;\n"
    "hang*) exec sleep 60 ;;\n"
    "closed*) exec sleep 60 >&- 2>&- ;;\n"
    "gate*) read go < \"$dir/gate\" ;;\n"
    "held*) echo \"error: Failed to ${verb%%-device} device from $file\" >&2\n"
    "	echo 'error: Requested operation is not valid: USB device 001:003 is in use by driver QEMU, domain other' >&2\n"
    "	status=1 ;;\n"
    "flood*) yes 'a line of noise, again and again' | head -n 125000 >&2\n"
    "	echo 'error: flooded' >&2; status=1 ;;\n"
    "orphan*) sleep 60 & echo $! > \"$dir/orphan.pid\" ;;\n"
    "late*) (read go < \"$dir/gate\"\n"
    "	echo 'error: Disconnected from qemu:///system due to end of file' >&2\n"
    "	echo \"said $id $dom late\" > \"$dir/events\") & ;;\n"
    "kept*) if [ \"$verb\" = detach-device ]; then\n"
    "	v=$(sed -n \"s/.*vendor id='0x\\([0-9a-f]*\\)'.*/\\1/p\" \"$file\")\n"
    "	p=$(sed -n \"s/.*product id='0x\\([0-9a-f]*\\)'.*/\\1/p\" \"$file\")\n"
    "	a=$(sed -n \"s/.*address bus='\\([0-9]*\\)' device='\\([0-9]*\\)'.*/\\1 \\2/p\" \"$file\")\n"
    "	if ! grep -q \"^$v $p ${a:-[0-9]* [0-9]*}\\$\" \"$state\" 2>/dev/null; then\n"
    "		echo \"error: Failed to detach device from $file\" >&2\n"
    "		echo \"error: device not found: host usb device vendor=0x$v product=0x$p not found\" >&2\n"
    "		status=1\n"
    "	fi\n"
    "	fi ;;\n"
    "multi*) echo \"error: Failed to ${verb%%-device} device from $file\" >&2\n"
    "	echo 'error: operation failed: Multiple USB devices for 046d:c52b, use <address> to specify one' >&2\n"
    "	status=1 ;;\n"
    "esac\n"
    "if [ $status = 0 ] && [ -n \"$file\" ]; then\n"
    "	v=$(sed -n \"s/.*vendor id='0x\\([0-9a-f]*\\)'.*/\\1/p\" \"$file\")\n"
    "	p=$(sed -n \"s/.*product id='0x\\([0-9a-f]*\\)'.*/\\1/p\" \"$file\")\n"
    "	b=$(sed -n \"s/.*address bus='\\([0-9]*\\)' device='\\([0-9]*\\)'.*/\\1/p\" \"$file\")\n"
    "	d=$(sed -n \"s/.*address bus='\\([0-9]*\\)' device='\\([0-9]*\\)'.*/\\2/p\" \"$file\")\n"
    "	touch \"$state\"\n"
    "	if [ -n \"$b\" ]; then grep -v \"^$v $p $b $d\\$\" \"$state\"; else grep -v \"^$v $p \" \"$state\"; fi > \"$state.new\"\n"
    "	[ \"$verb\" = attach-device ] && echo \"$v $p ${b:-1} ${d:-$(($(wc -l < \"$state.new\") + 3))}\" >> \"$state.new\"\n"
    "	mv \"$state.new\" \"$state\"\n"
    "fi\n"
    "echo \"end $id $dom $verb\" > \"$dir/events\"\n"
    "[ $status = 0 ] && echo 'Device attached successfully'\n"
    "exit $status\n";

void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	ck_assert_msg(fd != -1, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	ck_assert_int_eq(close(fd), 0);
}

void
world_setup(void)
{
	char path[256], script[sizeof(fake_virsh) + 128];

	/* Check runs each test in a child: it must not outlive the runner. */
	ck_assert_int_eq(prctl(PR_SET_PDEATHSIG, SIGKILL), 0);
	memset(&w, 0, sizeof(w));
	w.daemon = -1;
	w.listen_fd = -1;
	w.gate = w.events.fd = w.log.fd = w.libvirt = -1;
	snprintf(w.dir, sizeof(w.dir), "%s/t.XXXXXX", scratch_dir());
	ck_assert_msg(mkdtemp(w.dir) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(w.sock, sizeof(w.sock), "%s/sock", w.dir);
	snprintf(w.virsh, sizeof(w.virsh), "%s/virsh", w.dir);
	snprintf(w.xmldir, sizeof(w.xmldir), "%s/xml", w.dir);
	ck_assert_int_eq(mkdir(w.xmldir, 0700), 0);
	/* Ours: no QEMU of the machine's is a guest of the test's. */
	snprintf(w.qemu_run, sizeof(w.qemu_run), "%s/qemu-run", w.dir);
	ck_assert_int_eq(mkdir(w.qemu_run, 0700), 0);
	/* Empty: no allow list, whatever the machine has in /etc. */
	snprintf(w.config, sizeof(w.config), "%s/usbserver.conf", w.dir);
	write_file(w.config, "", 0600);

	snprintf(script, sizeof(script), fake_virsh, w.dir);
	write_file(w.virsh, script, 0755);

	/* Held open read-write, so the fake never blocks opening them. */
	snprintf(path, sizeof(path), "%s/events", w.dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	w.events.fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	ck_assert_int_ne(w.events.fd, -1);
	snprintf(path, sizeof(path), "%s/gate", w.dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	w.gate = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ne(w.gate, -1);
	snprintf(path, sizeof(path), "%s/libvirt-events", w.dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	w.libvirt = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ne(w.libvirt, -1);
	snprintf(w.ledger, sizeof(w.ledger), "%s/run/ledger", w.dir);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
remove_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void
scratch_remove(void)
{
	if (scratch[0] != '\0')
		remove_tree(scratch);
}

void
world_teardown(void)
{
	if (w.daemon > 0) {
		kill(w.daemon, SIGKILL);
		waitpid(w.daemon, NULL, 0);
	}
	if (w.events.fd != -1)
		close(w.events.fd);
	if (w.gate != -1)
		close(w.gate);
	if (w.libvirt != -1)
		close(w.libvirt);
	if (w.log.fd != -1)
		close(w.log.fd);
	if (w.dir[0] != '\0')
		remove_tree(w.dir);
}

int
reader_line(struct reader *r, char *out, size_t size, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	char *nl;
	size_t n;
	ssize_t got;

	for (;;) {
		nl = memchr(r->buf, '\n', r->len);
		if (nl != NULL || r->len == sizeof(r->buf)) {
			n = nl != NULL ? (size_t)(nl - r->buf) : r->len;
			snprintf(out, size, "%.*s", (int)n, r->buf);
			n = nl != NULL ? n + 1 : n;
			memmove(r->buf, r->buf + n, r->len - n);
			r->len -= n;
			return 1;
		}
		int64_t left = deadline - now_ms();
		struct pollfd p = { .fd = r->fd, .events = POLLIN };
		int ready = poll(&p, 1, left > 0 ? (int)left : 0);

		if (ready == 0 && left <= 0)
			return -1;	/* a timeout of 0 still looks once */
		if (ready <= 0)
			continue;
		got = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
		if (got == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (got <= 0) {
			if (r->len == 0)
				return 0;
			snprintf(out, size, "%.*s", (int)r->len, r->buf);
			r->len = 0;
			return 1;
		}
		r->len += (size_t)got;
	}
}

bool
reader_wait(struct reader *r, const char *needle, char *line, size_t size)
{
	int64_t deadline = now_ms() + WAIT_MS;
	char buf[8192];

	while (now_ms() < deadline) {
		if (reader_line(r, buf, sizeof(buf), (int)(deadline - now_ms())) != 1)
			return false;
		if (strstr(buf, needle) != NULL) {
			if (line != NULL)
				snprintf(line, size, "%s", buf);
			return true;
		}
	}
	return false;
}

bool
log_wait(const char *needle, char *line, size_t size)
{
	return reader_wait(&w.log, needle, line, size);
}

bool
test_skips(const char *what, const char *why)
{
	ck_assert_msg(getenv("USBSERVER_REQUIRE") == NULL, "%s cannot run "
	    "here, and USBSERVER_REQUIRE is set: %s", what, why);
	fflush(stdout);
	fprintf(stderr, "SKIP %s: %s\n", what, why);
	return true;
}

long
log_peer(const char *line, const char *want)
{
	size_t n = strlen(want);
	long pid;
	unsigned long uid;
	int end = -1;

	if (strncmp(line, want, n) != 0)
		return -1;
	if (line[n] == '\0')
		return 0;
	if (sscanf(line + n, " (peer pid %ld uid %lu)%n", &pid, &uid,
	    &end) != 2 || end < 0 || line[n + (size_t)end] != '\0' || pid <= 0)
		return -1;
	return pid;
}

void
daemon_start(const char *first, ...)
{
	char *argv[48], pidenv[32];
	int argc = 0, fd[2], null;
	pid_t parent = getpid();
	const char *a;
	va_list ap;

	for (int i = 0; w.prefix[i] != NULL && argc < 8; i++)
		argv[argc++] = (char *)w.prefix[i];
	argv[argc++] = (char *)USBSERVER_BIN;
	argv[argc++] = (char *)"--debug";
	argv[argc++] = (char *)"--socket";
	argv[argc++] = w.sock;
	argv[argc++] = (char *)"--xml-dir";
	argv[argc++] = w.xmldir;
	argv[argc++] = (char *)"--config";
	argv[argc++] = w.config;
	if (w.virsh[0] != '\0') {
		argv[argc++] = (char *)"--virsh";
		argv[argc++] = w.virsh;
	}
	if (w.qemu_run[0] != '\0') {
		argv[argc++] = (char *)"--qemu-run-dir";
		argv[argc++] = w.qemu_run;
	}
	argv[argc++] = (char *)"--ledger";
	argv[argc++] = w.ledger;
	va_start(ap, first);
	for (a = first; a != NULL && argc < 47; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;

	ck_assert_int_eq(pipe2(fd, O_CLOEXEC), 0);
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ne(null, -1);
	w.daemon = fork();
	ck_assert_int_ne(w.daemon, -1);
	if (w.daemon == 0) {
		/* Dies with this test, even when Check kills it at a timeout. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
			_exit(126);
		/* As the unit runs it: root with no capability but CAP_CHOWN. */
		for (int cap = 0; w.chown_only && cap <= CAP_LAST_CAP; cap++)
			if (cap != CAP_CHOWN && prctl(PR_CAPBSET_DROP, cap) == -1)
				_exit(126);
		if (dup2(null, 0) == -1 || dup2(fd[1], 1) == -1 ||
		    dup2(fd[1], 2) == -1)
			_exit(126);
		for (int i = 0; w.env[i] != NULL; i++)
			if (putenv((char *)w.env[i]) != 0)
				_exit(126);
		/* A listening socket passed as systemd passes it. */
		if (w.listen_fd != -1) {
			snprintf(pidenv, sizeof(pidenv), "%ld", (long)getpid());
			if (dup2(w.listen_fd, 3) == -1 ||
			    setenv("LISTEN_FDS", "1", 1) == -1 ||
			    setenv("LISTEN_PID", pidenv, 1) == -1)
				_exit(126);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	close(null);
	close(fd[1]);
	w.log.fd = fd[0];
	w.log.len = 0;
	ck_assert_msg(log_wait(w.ready != NULL ? w.ready : "listening on", NULL,
	    0), "the daemon did not start");
}

/* Waits for pid to end within WAIT_MS; its wait status, or -1. */
static int
wait_deadline(pid_t pid)
{
	struct pollfd p = { .fd = pidfd_open(pid, 0), .events = POLLIN };
	int status = -1;

	ck_assert_int_ne(p.fd, -1);
	if (poll(&p, 1, WAIT_MS) == 1)
		waitpid(pid, &status, 0);
	close(p.fd);
	return status;
}

int
daemon_stop(void)
{
	int status;

	ck_assert_int_gt(w.daemon, 0);
	ck_assert_int_eq(kill(w.daemon, SIGTERM), 0);
	status = wait_deadline(w.daemon);
	ck_assert_msg(status != -1, "the daemon did not stop on SIGTERM");
	w.daemon = -1;
	return status;
}

void
client_open(struct client *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w.sock);
	c->r.len = 0;
	c->r.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(c->r.fd, -1);
	ck_assert_msg(connect(c->r.fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
	    "connect %s: %s", w.sock, strerror(errno));
}

void
client_sendn(struct client *c, const void *buf, size_t len)
{
	ck_assert_int_eq(send(c->r.fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

void
client_send(struct client *c, const char *s)
{
	client_sendn(c, s, strlen(s));
}

void
client_reply(struct client *c, char *line, size_t size)
{
	int r = reader_line(&c->r, line, size, WAIT_MS);

	ck_assert_msg(r == 1, r == 0 ? "the daemon closed the connection" :
	    "no reply within %d ms", WAIT_MS);
}

void
sysfs_device(const char *root, const char *port, const char *vid,
    const char *pid, int bus, int dev)
{
	const char *names[] = { "idVendor", "idProduct", "busnum", "devnum" };
	char path[512], text[4][16];

	snprintf(text[0], sizeof(text[0]), "%s\n", vid);
	snprintf(text[1], sizeof(text[1]), "%s\n", pid);
	snprintf(text[2], sizeof(text[2]), "%d\n", bus);
	snprintf(text[3], sizeof(text[3]), "%d\n", dev);
	if (mkdir(root, 0755) == -1)
		ck_assert_int_eq(errno, EEXIST);
	snprintf(path, sizeof(path), "%s/%s", root, port);
	if (mkdir(path, 0755) == -1)	/* plugged in again, or another */
		ck_assert_int_eq(errno, EEXIST);
	for (int i = 0; i < 4; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s/%s", root, port, names[i]);
		ck_assert_ptr_nonnull(f = fopen(path, "we"));
		fputs(text[i], f);
		ck_assert_int_eq(fclose(f), 0);
	}
}

void
expect_reply(struct client *c, const char *want)
{
	char line[1024];

	client_reply(c, line, sizeof(line));
	ck_assert_str_eq(line, want);
}

void
client_close(struct client *c)
{
	close(c->r.fd);
	c->r.fd = -1;
}

pid_t
spawn_fds(char *const argv[], int in, int out, int err)
{
	const int fds[3] = { in, out, err };
	pid_t pid = fork();

	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		for (int i = 0; i < 3; i++)
			if (fds[i] != -1 && dup2(fds[i], i) == -1)
				_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

int
spawn_capture(char *const argv[], const char *in, char *out, size_t size,
    int timeout_ms)
{
	posix_spawn_file_actions_t fa;
	int ofd[2], ifd[2] = { -1, -1 }, status = -1;
	struct pollfd p = { .fd = -1, .events = POLLIN };
	int64_t deadline, left;
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	out[0] = '\0';
	if (pipe2(ofd, O_CLOEXEC) == -1)
		return -1;
	if (in != NULL && pipe2(ifd, O_CLOEXEC) == -1) {
		close(ofd[0]);
		close(ofd[1]);
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	if (in != NULL)
		posix_spawn_file_actions_adddup2(&fa, ifd[0], 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, ofd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, ofd[1], 2);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0)
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	close(ofd[1]);
	if (in != NULL) {
		close(ifd[0]);
		if (pid > 0)
			(void)!write(ifd[1], in, strlen(in));
		close(ifd[1]);
	}
	if (pid > 0 && (p.fd = pidfd_open(pid, 0)) == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		pid = -1;
	}
	if (pid < 0) {
		close(ofd[0]);
		return -1;
	}
	/* Its output up to EOF, then its exit, all within one deadline;
	 * output past size is read and dropped. */
	deadline = now_ms() + timeout_ms;
	for (;;) {
		struct pollfd o = { .fd = ofd[0], .events = POLLIN };
		char junk[4096];

		left = deadline - now_ms();
		if (left <= 0 || poll(&o, 1, (int)left) != 1)
			break;
		if (len < size - 1)
			n = read(ofd[0], out + len, size - 1 - len);
		else
			n = read(ofd[0], junk, sizeof(junk));
		if (n <= 0)
			break;
		if (len < size - 1)
			len += (size_t)n;
	}
	out[len] = '\0';
	close(ofd[0]);
	left = deadline - now_ms();
	if (left > 0 && poll(&p, 1, (int)left) == 1)
		waitpid(pid, &status, 0);
	else {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	close(p.fd);
	return status;
}

int
run(char *const argv[], const char *in, char *out, size_t size)
{
	int status = spawn_capture(argv, in, out, size, WAIT_MS);

	ck_assert_msg(status != -1, "%s did not run or finish within %d ms: %s",
	    argv[0], WAIT_MS, out);
	return status;
}

void
dir_list(const char *dir, char *buf, size_t size)
{
	struct dirent *de;
	size_t len = 0;
	DIR *d = opendir(dir);

	ck_assert_msg(d != NULL, "opendir %s: %s", dir, strerror(errno));
	buf[0] = '\0';
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			len += (size_t)snprintf(buf + len, len < size ? size - len : 0,
			    "%s ", de->d_name);
	closedir(d);
	ck_assert_uint_lt(len, size);
}

ssize_t
slurp(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n;

	if (fd == -1)
		return -1;
	while ((n = read(fd, buf + len, size - 1 - len)) > 0 &&
	    (len += (size_t)n) < size - 1)
		;
	buf[len] = '\0';
	close(fd);
	return (ssize_t)len;
}

void
event_wait(const char *kind, const char *vm, char *id, size_t size)
{
	char line[256], want[160];
	int64_t deadline = now_ms() + WAIT_MS;

	while (now_ms() < deadline) {
		ck_assert_msg(reader_line(&w.events, line, sizeof(line),
		    (int)(deadline - now_ms())) == 1,
		    "no '%s' from the fake virsh for %s", kind, vm);
		/* "KIND ID VM VERB" */
		char *sp1 = strchr(line, ' ');
		char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
		if (sp2 == NULL || (size_t)(sp1 - line) != strlen(kind) ||
		    strncmp(line, kind, strlen(kind)) != 0)
			continue;
		snprintf(want, sizeof(want), " %s ", vm);
		if (strncmp(sp2, want, strlen(want)) != 0)
			continue;
		snprintf(id, size, "%.*s", (int)(sp2 - sp1 - 1), sp1 + 1);
		return;
	}
	ck_abort_msg("no '%s' from the fake virsh for %s", kind, vm);
}

ssize_t
call_file(const char *id, const char *what, char *buf, size_t size)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/call.%s.%s", w.dir, id, what);
	return slurp(path, buf, size);
}

/*
 * "check_usbserver peer SOCKET [--pidfile PATH] [--as UID:GID] ARGS...":
 * a second real process on the daemon's socket. With --pidfile it first
 * writes its pid there, as libvirt does for a QEMU it starts; with --as
 * it then drops to that user, group and no others. ARGS are only what it
 * says of itself, such as QEMU's "-name guest=vmA". It sends its standard
 * input, and copies the daemon's answers to standard output as they come,
 * until the daemon's EOF.
 */
static int
fit_path(char *dst, size_t size, const char *path)
{
	int n = snprintf(dst, size, "%s", path);

	return n < 0 || (size_t)n >= size ? -1 : n;
}

int
peer_main(int argc, char *argv[])
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[4096];
	unsigned long uid, gid;
	ssize_t n;
	int fd, i = 3;

	if (argc < 3 || fit_path(sa.sun_path, sizeof(sa.sun_path), argv[2]) < 0)
		return 2;
	if (i + 1 < argc && strcmp(argv[i], "--pidfile") == 0) {
		FILE *f = fopen(argv[i + 1], "w");

		if (f == NULL || fprintf(f, "%ld\n", (long)getpid()) < 0 ||
		    fclose(f) != 0)
			return 1;
		i += 2;
	}
	if (i + 1 < argc && strcmp(argv[i], "--as") == 0) {
		if (sscanf(argv[i + 1], "%lu:%lu", &uid, &gid) != 2)
			return 2;
		if (setgroups(0, NULL) == -1 || setgid((gid_t)gid) == -1 ||
		    setuid((uid_t)uid) == -1) {
			perror("--as");
			return 1;
		}
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		perror(argv[2]);
		return 1;
	}
	/* Both ways at once: a test may hold the input open and read. The
	 * input is read to its end even after the daemon's (what it closed
	 * at once is not sent), so that whoever writes it never meets a
	 * closed pipe. */
	for (struct pollfd p[2] = { { .fd = STDIN_FILENO, .events = POLLIN },
	    { .fd = fd, .events = POLLIN } }; p[0].fd != -1 || p[1].fd != -1; ) {
		if (poll(p, 2, -1) == -1)
			return 1;
		if (p[0].revents != 0) {
			if ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0 &&
			    p[1].fd != -1)
				(void)send(fd, buf, (size_t)n, MSG_NOSIGNAL);
			if (n <= 0) {
				shutdown(fd, SHUT_WR);
				p[0].fd = -1;
			}
		}
		if (p[1].revents == 0)
			continue;
		if ((n = read(fd, buf, sizeof(buf))) < 0)
			return 1;
		if (n == 0)
			p[1].fd = -1;
		else if (write(STDOUT_FILENO, buf, (size_t)n) != n)
			return 1;
	}
	return 0;
}

/*
 * "check_usbserver nopidfd PROGRAM ARGS...": runs PROGRAM as on a kernel
 * before Linux 6.5, where getsockopt(SO_PEERPIDFD) fails ENOPROTOOPT (a
 * seccomp filter says so), so that the daemon's other way to tell that a
 * pid is still its peer's is tested on any kernel. Debian 12's is such a
 * kernel. Checks the filter works before it runs PROGRAM.
 */
int
nopidfd_main(int argc, char *argv[])
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	enum { LOW = 0 };
#else
	enum { LOW = 4 };
#endif
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getsockopt, 0, 5),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, args[1]) + LOW),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SOL_SOCKET, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, args[2]) + LOW),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SO_PEERPIDFD, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOPROTOOPT),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = sizeof(filter) / sizeof(filter[0]), .filter = filter,
	};
	socklen_t len = sizeof(int);
	int sv[2], pidfd;

	if (argc < 3)
		return 2;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == -1) {
		perror("seccomp");
		return 125;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1 ||
	    getsockopt(sv[0], SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != -1 ||
	    errno != ENOPROTOOPT) {
		fprintf(stderr, "nopidfd: SO_PEERPIDFD still works\n");
		return 125;
	}
	close(sv[0]);
	close(sv[1]);
	execvp(argv[2], argv + 2);
	perror(argv[2]);
	return 127;
}
