/*
 * test_daemon.c: usbserver as a process, over its real socket, with the
 * fake virsh of helpers.c, the real socat, the real virsh where it can
 * serve without libvirtd, and the real syslog protocol.
 */
#define _GNU_SOURCE

#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <poll.h>
#include <stddef.h>

#include <dirent.h>
#include <glob.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common.h"
#include "tests.h"

#define LINE	1024

static int	listening_socket(void);

/* Starts the daemon with the fake virsh, and a client with replies on. */
static void
start_with_replies(struct client *c)
{
	daemon_start(NULL);
	client_open(c);
	client_send(c, "reply on\n");
}

/* The same, with virsh run once per command: how it ended is all a
 * failure without an "error:" line can say, and a shell cannot tell. */
static void
start_one_shot(struct client *c)
{
	daemon_start("--one-shot", NULL);
	client_open(c);
	client_send(c, "reply on\n");
}

/* After shutdown(SHUT_WR): the daemon sends nothing more and closes. */
static void
expect_silence(struct client *c)
{
	char line[LINE];

	shutdown(c->r.fd, SHUT_WR);
	ck_assert_int_eq(reader_line(&c->r, line, sizeof(line), WAIT_MS), 0);
}

static void
expect_log(const char *want)
{
	char line[LINE];

	ck_assert_msg(log_wait(want, line, sizeof(line)), "no log line '%s'", want);
	ck_assert_msg(log_peer(line, want) >= 0, "log line '%s', not '%s'",
	    line, want);
}

/* A log line that holds part, somewhere. */
static void
expect_log_part(const char *part)
{
	ck_assert_msg(log_wait(part, NULL, 0), "no log line with '%s'", part);
}

static bool
is_root(void)
{
	return geteuid() == 0;
}

/* ------------------------------------------------------------------ */
/* The protocol                                                        */

START_TEST(test_guide_socat_command_attaches)
{
	char cmd[512], out[LINE], id[32], args[LINE], want[LINE], xml[LINE];
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", cmd, NULL };

	daemon_start(NULL);
	/* Exactly the guide's command, with the real socat. */
	snprintf(cmd, sizeof(cmd),
	    "echo 'win10 attach 046D:C52B' | socat - UNIX-CONNECT:%s", w.sock);
	ck_assert_int_eq(run(argv, NULL, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");	/* no reply without "reply on" */
	expect_log("[VMusb] win10 attached device 046d:c52b");

	event_wait("end", "win10", id, sizeof(id));
	ck_assert_int_gt(call_file(id, "args", args, sizeof(args)), 0);
	snprintf(want, sizeof(want), "attach-device\n--domain\nwin10\n--file\n"
	    "%s/device-046d:c52b.xml\n", w.xmldir);
	ck_assert_str_eq(args, want);
	ck_assert_int_gt(call_file(id, "xml", xml, sizeof(xml)), 0);
	ck_assert_str_eq(xml, "<hostdev mode='subsystem' type='usb'><source>"
	    "<vendor id='0x046d'/><product id='0xc52b'/></source></hostdev>\n");
}
END_TEST

START_TEST(test_last_line_without_newline_is_a_command)
{
	char cmd[512], out[LINE];
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", cmd, NULL };

	daemon_start(NULL);
	snprintf(cmd, sizeof(cmd),
	    "printf 'win10 detach 046d:c52b' | socat - UNIX-CONNECT:%s", w.sock);
	ck_assert_int_eq(run(argv, NULL, out, sizeof(out)), 0);
	expect_log("[VMusb] win10 detached device 046d:c52b");
}
END_TEST

START_TEST(test_connect_uri_is_passed_as_dash_c)
{
	struct client c;
	char id[32], args[LINE], want[LINE];

	daemon_start("--connect", "qemu:///system", NULL);
	client_open(&c);
	client_send(&c, "reply on\nwin10 detach 046d:c52b\n");
	expect_reply(&c, "ok win10 detach 046d:c52b");
	event_wait("end", "win10", id, sizeof(id));
	ck_assert_int_gt(call_file(id, "args", args, sizeof(args)), 0);
	snprintf(want, sizeof(want), "-c\nqemu:///system\ndetach-device\n"
	    "--domain\nwin10\n--file\n%s/device-046d:c52b.xml\n", w.xmldir);
	ck_assert_str_eq(args, want);
}
END_TEST

START_TEST(test_no_reply_without_reply_on)
{
	struct client c;

	daemon_start(NULL);
	client_open(&c);
	client_send(&c, "win10 attach 046d:c52b\nnot a command\n");
	expect_log("[VMusb] win10 attached device 046d:c52b");
	expect_log("[VMusb] invalid action: not a command");
	expect_silence(&c);
}
END_TEST

START_TEST(test_reply_on_gives_one_reply_per_command_in_order)
{
	struct client c;

	start_one_shot(&c);
	client_send(&c, "win10 attach 046d:c52b\n"
	    "failvm detach 046D:C077\n"
	    "this is not a command\n"
	    "\n"
	    "quietvm attach 1234:abcd\n");
	expect_reply(&c, "ok win10 attach 046d:c52b");
	expect_reply(&c, "error failvm detach 046d:c077: Requested operation "
	    "is not valid: fake refusal");
	expect_reply(&c, "error: expected: VM attach|detach VID:PID");
	expect_reply(&c, "error quietvm attach 1234:abcd: virsh exited with "
	    "status 3");
	/* "reply off" ends it: the next command runs, answered by nothing. */
	client_send(&c, "reply off\nwin10 detach 046d:c52b\n");
	expect_log("[VMusb] win10 detached device 046d:c52b");
	expect_silence(&c);
}
END_TEST

START_TEST(test_empty_lines_and_blanks_are_ignored)
{
	struct client c;

	start_with_replies(&c);
	client_send(&c, "\n\r\n   \n\t\r\n  win10\tattach   046d:c52b \r\n");
	expect_reply(&c, "ok win10 attach 046d:c52b");
	expect_silence(&c);
}
END_TEST

START_TEST(test_failure_is_logged_with_virsh_reason)
{
	struct client c;

	start_one_shot(&c);
	client_send(&c, "failvm attach 046d:c52b\nnoisyvm detach 046d:c52b\n"
	    "sigvm attach 046d:c52b\n");
	expect_log("[VMusb] failvm attaching device 046d:c52b failed: "
	    "Requested operation is not valid: fake refusal");
	expect_log("[VMusb] noisyvm detaching device 046d:c52b failed: "
	    "a warning, not an error");
	expect_log("[VMusb] sigvm attaching device 046d:c52b failed: "
	    "virsh killed by signal 9");
	expect_reply(&c, "error failvm attach 046d:c52b: Requested operation "
	    "is not valid: fake refusal");
	expect_reply(&c, "error noisyvm detach 046d:c52b: a warning, not an error");
	expect_reply(&c, "error sigvm attach 046d:c52b: virsh killed by signal 9");
}
END_TEST

START_TEST(test_invalid_line_is_logged_escaped)
{
	struct client c;
	static const char line[] = "  bad\x01vm\xff \x1b[2J attach \\x\r\n";

	start_with_replies(&c);
	client_sendn(&c, line, sizeof(line) - 1);
	expect_log("[VMusb] invalid action: bad\\x01vm\\xff \\x1b[2J attach \\x5cx");
	expect_reply(&c, "error: expected: VM attach|detach VID:PID");
}
END_TEST

/* --debug names each connection, its peer, and what it asks for. */
START_TEST(test_debug_log_follows_each_connection)
{
	char want[LINE], line[LINE];
	struct client c;

	daemon_start(NULL);
	client_open(&c);
	snprintf(want, sizeof(want), "[VMusb] connection 1 opened by pid %ld "
	    "(uid %lu gid %lu), a host client (its credentials)", (long)getpid(),
	    (unsigned long)geteuid(), (unsigned long)getegid());
	expect_log(want);
	client_send(&c, "win10 attach 046d:c52b\n");
	expect_log("[VMusb] connection 1: win10 attach 046d:c52b");
	/* Each command's line names its peer. */
	ck_assert(log_wait("[VMusb] win10 attached device 046d:c52b", line,
	    sizeof(line)));
	snprintf(want, sizeof(want), "[VMusb] win10 attached device 046d:c52b "
	    "(peer pid %ld uid %lu)", (long)getpid(), (unsigned long)geteuid());
	ck_assert_str_eq(line, want);
	client_close(&c);
	expect_log("[VMusb] connection 1 closed");
	client_open(&c);
	ck_assert(log_wait("[VMusb] connection 2 opened by pid", NULL, 0));
	client_close(&c);
}
END_TEST


/* ------------------------------------------------------------------ */
/* Policy: who may move what                                           */

/* A second real process on the socket: as uid:gid unless uid is 0,
 * named by the pid file pidfile first if there is one (as libvirt names
 * the QEMU it starts), saying "-name SAYS" of itself as QEMU does if says
 * is not NULL. Sends in, returns what the daemon answered. */
/* The runner's argv as "peer", into argv[0..9] (self holds its path):
 * --pidfile, --as and -name where not NULL. */
static void
peer_argv(char *argv[10], char self[PATH_MAX], const char *pidfile,
    const char *as, const char *says)
{
	ssize_t n = readlink("/proc/self/exe", self, PATH_MAX - 1);
	const char *opt[3][2] = { { "--pidfile", pidfile }, { "--as", as },
	    { "-name", says } };
	int argc = 0;

	ck_assert_int_gt(n, 0);
	self[n] = '\0';
	argv[argc++] = self;
	argv[argc++] = (char *)"peer";
	argv[argc++] = w.sock;
	for (int i = 0; i < 3; i++)
		if (opt[i][1] != NULL) {
			argv[argc++] = (char *)opt[i][0];
			argv[argc++] = (char *)opt[i][1];
		}
	argv[argc] = NULL;
}

static int
peer_spawn(uid_t uid, gid_t gid, const char *pidfile, const char *says,
    const char *in, char *out, size_t size)
{
	char self[PATH_MAX], *argv[10], as[48];

	snprintf(as, sizeof(as), "%lu:%lu", (unsigned long)uid,
	    (unsigned long)gid);
	peer_argv(argv, self, pidfile, uid != 0 ? as : NULL, says);
	return run(argv, in, out, size);
}

static void
peer_as(uid_t uid, gid_t gid, const char *pidfile, const char *says,
    const char *in, char *out, size_t size)
{
	ck_assert_int_eq(peer_spawn(uid, gid, pidfile, says, in, out, size), 0);
}

/* The guest of domain vm, run as uid:gid: libvirt's pid file for vm, in
 * the daemon's --qemu-run-dir, names it. */
static void
guest_as(uid_t uid, gid_t gid, const char *vm, const char *in, char *out,
    size_t size)
{
	char pidfile[256];

	snprintf(pidfile, sizeof(pidfile), "%s/%s.pid", w.qemu_run, vm);
	peer_as(uid, gid, pidfile, NULL, in, out, size);
}

/* A peer that may do nothing is closed at once, answered nothing, and
 * that is logged for its uid. */
static void
peer_closed(uid_t uid, gid_t gid, const char *says, const char *in)
{
	char out[1024], want[128];

	(void)peer_spawn(uid, gid, NULL, says, in, out, sizeof(out));
	ck_assert_msg(strstr(out, "error ") == NULL && strstr(out, "ok ") ==
	    NULL, "a peer that may do nothing was answered: %s", out);
	snprintf(want, sizeof(want), "connections of uid %lu are closed at "
	    "once: it may do nothing", (unsigned long)uid);
	ck_assert_msg(log_wait(want, NULL, 0), "no log line '%s'", want);
}

/* The fake virsh ran exactly these ("VM VERB" each, in order); the daemon
 * has answered everything, so every call it made is on the FIFO. */
static void
expect_calls(const char *want)
{
	char line[256], got[LINE] = "";
	size_t len = 0;

	while (reader_line(&w.events, line, sizeof(line), 0) == 1) {
		char *sp = strchr(line, ' '), *vm;

		if (strncmp(line, "end ", 4) != 0 || sp == NULL ||
		    (vm = strchr(sp + 1, ' ')) == NULL)
			continue;
		len += (size_t)snprintf(got + len, sizeof(got) - len, "%s;",
		    vm + 1);
		ck_assert_uint_lt(len, sizeof(got));
	}
	ck_assert_str_eq(got, want);
}

START_TEST(test_qemu_peer_acts_only_on_its_own_domain)
{
	char out[LINE];

	daemon_start(NULL);
	guest_as(0, 0, "vmA", "reply on\n"
	    "vmB detach 046d:c52b\nvmA detach 046d:c52b\nvmA attach 046d:c52b\n",
	    out, sizeof(out));
	ck_assert_str_eq(out, "error vmB detach 046d:c52b: not allowed\n"
	    "ok vmA detach 046d:c52b\n"
	    "error vmA attach 046d:c52b: not allowed\n");
	expect_log("[VMusb] vmB detaching device 046d:c52b denied: a guest may "
	    "only act on its own domain");
	expect_log("[VMusb] vmA detached device 046d:c52b");
	expect_log("[VMusb] vmA attaching device 046d:c52b denied: a guest may "
	    "not attach devices (see --guest-attach)");
	expect_calls("vmA detach-device;");
}
END_TEST

/* A guest's failed command with a port says nothing of the host's
 * ports: whether a device is there, or another, reads the same. */
/* Sends in as the guest of vm, and says how long the daemon took to
 * answer all of it, in ms. */
static int64_t
guest_timed(const char *vm, const char *in, char *out, size_t size)
{
	int64_t t0 = now_ms();

	guest_as(0, 0, vm, in, out, size);
	return now_ms() - t0;
}

/* A guest hears "not allowed" or "failed", never libvirt's words nor
 * what sits at the host's ports, and not sooner when the device is not
 * there: a missing device fails as a present one does, and a refusal
 * comes no sooner than a failure. The host's log keeps every reason. */
START_TEST(test_guest_learns_nothing_of_the_hosts_ports)
{
	char out[LINE], sys[300];

	snprintf(sys, sizeof(sys), "%s/sys", w.dir);
	sysfs_device(sys, "1-2", "046d", "c52b", 1, 5);
	daemon_start("--sysfs", sys, "--allow", "046d:c534", "--allow",
	    "046d:c52b", "--allow", "1050:0407", NULL);
	/* Not there; there, but libvirt refuses; libvirt names another
	 * domain; not on the allow list. */
	ck_assert_int_ge(guest_timed("failvmA", "reply on\nfailvmA detach "
	    "046d:c534@1-2\n", out, sizeof(out)), GUEST_ANSWER_MS);
	ck_assert_str_eq(out, "error failvmA detach 046d:c534@1-2: failed\n");
	ck_assert_int_ge(guest_timed("failvmA", "reply on\nfailvmA detach "
	    "046d:c52b@1-2\n", out, sizeof(out)), GUEST_ANSWER_MS);
	ck_assert_str_eq(out, "error failvmA detach 046d:c52b@1-2: failed\n");
	ck_assert_int_ge(guest_timed("heldvm", "reply on\nheldvm detach "
	    "1050:0407\n", out, sizeof(out)), GUEST_ANSWER_MS);
	ck_assert_str_eq(out, "error heldvm detach 1050:0407: failed\n");
	ck_assert_int_ge(guest_timed("failvmA", "reply on\nfailvmA detach "
	    "0781:5581@1-2\n", out, sizeof(out)), GUEST_ANSWER_MS);
	ck_assert_str_eq(out, "error failvmA detach 0781:5581@1-2: not "
	    "allowed\n");
	expect_log("[VMusb] failvmA detaching device 046d:c534@1-2 failed: no "
	    "046d:c534 at port 1-2");
	expect_log("[VMusb] failvmA detaching device 046d:c52b@1-2 failed: "
	    "Requested operation is not valid: fake refusal");
	expect_log_part("failed: Requested operation is not valid: USB device "
	    "001:003 is in use by driver QEMU, domain other");
	expect_log("[VMusb] failvmA detaching device 0781:5581@1-2 denied: the "
	    "device is not on the allow list");
}
END_TEST

START_TEST(test_guest_attach_lets_a_guest_attach_to_itself_only)
{
	char out[LINE];

	daemon_start("--guest-attach", NULL);
	guest_as(0, 0, "vmA", "reply on\nvmA attach 046d:c52b\n"
	    "vmB attach 046d:c52b\n", out, sizeof(out));
	ck_assert_str_eq(out, "ok vmA attach 046d:c52b\n"
	    "error vmB attach 046d:c52b: not allowed\n");
	expect_calls("vmA attach-device;");
}
END_TEST


/* libvirt's pid file is what counts: a QEMU that blanked or forged its
 * command line is still the guest of its own domain. */
START_TEST(test_libvirt_pid_file_names_the_guest_whatever_its_command_line)
{
	char out[LINE], run_dir[160], pidfile[200];

	snprintf(run_dir, sizeof(run_dir), "%s/qemu-run", w.dir);
	snprintf(pidfile, sizeof(pidfile), "%s/vmA.pid", run_dir);
	daemon_start("--qemu-run-dir", run_dir, NULL);
	peer_as(0, 0, pidfile, NULL, "reply on\nvmB attach 046d:c52b\n"
	    "vmA detach 046d:c52b\n", out, sizeof(out));
	ck_assert_str_eq(out, "error vmB attach 046d:c52b: not allowed\n"
	    "ok vmA detach 046d:c52b\n");
	peer_as(0, 0, pidfile, "guest=vmB", "reply on\nvmB detach 046d:c52b\n",
	    out, sizeof(out));
	ck_assert_str_eq(out, "error vmB detach 046d:c52b: not allowed\n");
	expect_calls("vmA detach-device;");
}
END_TEST

/* Gives the socket to group 65534, so that uid 65534 can reach it; the
 * daemon's QEMU pid files are in run_dir. */
static bool
socket_for_nobody(const char *what, char *run_dir, size_t size)
{
	if (!is_root())
		return !test_skips(what, "needs root to run a peer as another "
		    "user");
	ck_assert_int_eq(chmod(scratch_dir(), 0711), 0);
	ck_assert_int_eq(chmod(w.dir, 0711), 0);
	snprintf(run_dir, size, "%s/qemu-run", w.dir);
	daemon_start("--socket-group", "65534", "--socket-mode", "0660",
	    "--qemu-run-dir", run_dir, NULL);
	return true;
}

/* A process of uid 65534 that libvirt's pid file dir/NAME.pid names. */
static pid_t
fake_qemu(const char *dir, const char *name)
{
	char path[256], ok;
	int fd[2];
	FILE *f;
	pid_t pid;

	ck_assert_int_eq(pipe2(fd, O_CLOEXEC), 0);
	if ((pid = fork()) == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 ||
		    setgroups(0, NULL) == -1 || setgid(65534) == -1 ||
		    setuid(65534) == -1 || write(fd[1], "", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	ck_assert_int_gt(pid, 0);
	close(fd[1]);
	ck_assert_int_eq(read(fd[0], &ok, 1), 1);	/* it is uid 65534 now */
	close(fd[0]);
	snprintf(path, sizeof(path), "%s/%s.pid", dir, name);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f, "%ld", (long)pid);
	ck_assert_int_eq(fclose(f), 0);
	return pid;
}

/* Members of the socket's group are host clients; but not a user that a
 * QEMU of libvirt's runs as (its helpers share it), nor another user who
 * reaches the socket because libvirt gave it away. */
START_TEST(test_socket_group_members_are_host_clients_unless_qemu_runs_as_them)
{
	char out[LINE], run_dir[160];
	pid_t qemu;

	if (!socket_for_nobody("socket group test", run_dir, sizeof(run_dir)))
		return;
	peer_as(65534, 65534, NULL, NULL, "reply on\nvm detach 046d:c52b\n",
	    out, sizeof(out));
	ck_assert_str_eq(out, "ok vm detach 046d:c52b\n");

	qemu = fake_qemu(run_dir, "vmQ");
	peer_closed(65534, 65534, NULL, "reply on\nvm detach 046d:c52b\n");
	ck_assert_int_eq(kill(qemu, SIGKILL), 0);
	ck_assert_int_eq(waitpid(qemu, NULL, 0), qemu);

	ck_assert_int_eq(chown(w.sock, 65533, (gid_t)-1), 0);
	peer_closed(65533, 65533, NULL, "reply on\nvm detach 046d:c52b\n");
	/* A guest of that user is still the guest of its domain. */
	guest_as(65533, 65533, "vm", "reply on\nvm detach 046d:c52b\n", out,
	    sizeof(out));
	ck_assert_str_eq(out, "ok vm detach 046d:c52b\n");
	expect_calls("vm detach-device;vm detach-device;");
}
END_TEST

/* As the unit runs it: no capability but CAP_CHOWN. A guest of another
 * user may still detach from itself, and a stale socket that libvirt gave
 * to that user is taken back. */
START_TEST(test_with_cap_chown_alone_a_guest_still_detaches)
{
	char out[LINE], run_dir[160];
	int fd;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (!is_root() && test_skips("CAP_CHOWN test", "needs root"))
		return;
	/* A stale socket, re-owned as libvirt does for QEMU. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w.sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	ck_assert_int_eq(chmod(w.sock, 0600), 0);
	ck_assert_int_eq(chown(w.sock, 64055, 64055), 0);

	w.chown_only = true;
	if (!socket_for_nobody("CAP_CHOWN test", run_dir, sizeof(run_dir)))
		return;
	guest_as(65534, 65534, "vmA", "reply on\nvmA detach 046d:c52b\n"
	    "vmB detach 046d:c52b\n", out, sizeof(out));
	ck_assert_str_eq(out, "ok vmA detach 046d:c52b\n"
	    "error vmB detach 046d:c52b: not allowed\n");
}
END_TEST

/*
 * What a process says of itself names no domain. A compromised QEMU (of
 * vmA, uid 65534, as libvirt's pid file says) forks, and its child writes
 * QEMU's "-name guest=vmB" on its command line: that child is no guest of
 * vmB, and, as QEMU runs as its user, no host client either. QEMU itself
 * is still vmA's guest.
 */
START_TEST(test_a_command_line_naming_a_domain_makes_no_guest)
{
	char out[LINE], run_dir[160];
	pid_t qemu;

	if (!socket_for_nobody("forged command line test", run_dir,
	    sizeof(run_dir)))
		return;
	qemu = fake_qemu(run_dir, "vmA");
	peer_closed(65534, 65534, "guest=vmB,debug-threads=on",
	    "reply on\nvmB detach 046d:c52b\n");
	guest_as(65534, 65534, "vmA", "reply on\nvmA detach 046d:c52b\n", out,
	    sizeof(out));
	ck_assert_str_eq(out, "ok vmA detach 046d:c52b\n");
	ck_assert_int_eq(kill(qemu, SIGKILL), 0);
	ck_assert_int_eq(waitpid(qemu, NULL, 0), qemu);
	expect_calls("vmA detach-device;");
}
END_TEST

/* On a kernel without SO_PEERPIDFD (Debian 12's), libvirt's pid file
 * still names the guest: the start time of the process it names says
 * that process is the peer. */
START_TEST(test_without_pidfds_a_guest_is_still_known)
{
	char self[PATH_MAX], out[LINE];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	ck_assert_int_gt(n, 0);
	self[n] = '\0';
	w.prefix[0] = self;
	w.prefix[1] = "nopidfd";
	daemon_start(NULL);
	guest_as(0, 0, "vmA", "reply on\nvmB detach 046d:c52b\n"
	    "vmA detach 046d:c52b\n", out, sizeof(out));
	ck_assert_str_eq(out, "error vmB detach 046d:c52b: not allowed\n"
	    "ok vmA detach 046d:c52b\n");
	expect_log_part("the guest of vmA (libvirt's pid file, started before we "
	    "accepted)");
	expect_calls("vmA detach-device;");
}
END_TEST

/* Sends the same three commands and checks what the allow list let by. */
static void
expect_allow_list_of_two(void)
{
	char line[LINE];
	struct client c;

	client_open(&c);
	client_send(&c, "reply on\nwin10 attach 046D:C52B\n"
	    "win10 attach 0781:5581\nwin10 detach 1050:0407\n");
	expect_reply(&c, "ok win10 attach 046d:c52b");
	expect_reply(&c, "error win10 attach 0781:5581: not allowed");
	expect_reply(&c, "ok win10 detach 1050:0407");
	expect_calls("win10 attach-device;win10 detach-device;");
	/* No warning that everything may move, and the refusal logged. */
	while (log_wait("[VMusb] ", line, sizeof(line)) &&
	    strstr(line, " denied: ") == NULL)
		ck_assert_ptr_null(strstr(line, "no allow list"));
	ck_assert_int_gt(log_peer(line, "[VMusb] win10 attaching device "
	    "0781:5581 denied: the device is not on the allow list"), 0);
}

/* A device named by its port: the daemon reads sysfs for its bus and
 * device number now, puts them in the XML beside the ids, and refuses
 * when another device, or none, sits there. */
START_TEST(test_device_at_a_port_is_named_by_its_address)
{
	struct client c;
	char sys[300], id[32], xml[512], args[1024], want[LINE];

	snprintf(sys, sizeof(sys), "%s/sys", w.dir);
	sysfs_device(sys, "1-2", "046d", "c52b", 1, 5);
	sysfs_device(sys, "3-1.4", "046d", "c52b", 3, 12);
	daemon_start("--sysfs", sys, NULL);
	client_open(&c);
	client_send(&c, "reply on\nwin10 attach 046d:C52B@3-1.4\n");
	expect_reply(&c, "ok win10 attach 046d:c52b@3-1.4");
	event_wait("end", "win10", id, sizeof(id));
	ck_assert_int_gt(call_file(id, "xml", xml, sizeof(xml)), 0);
	ck_assert_str_eq(xml, "<hostdev mode='subsystem' type='usb'><source>"
	    "<vendor id='0x046d'/><product id='0xc52b'/>"
	    "<address bus='3' device='12'/></source></hostdev>\n");
	ck_assert_int_gt(call_file(id, "args", args, sizeof(args)), 0);
	snprintf(want, sizeof(want), "%s/device-046d:c52b@3-1.4.xml\n",
	    w.xmldir);
	ck_assert_msg(strstr(args, want) != NULL, "args: %s", args);
	/* Detached by the same address. */
	client_send(&c, "win10 detach 046d:c52b@3-1.4\n");
	expect_reply(&c, "ok win10 detach 046d:c52b@3-1.4");
	/* Another device there, or none. */
	client_send(&c, "win10 attach 046d:c534@1-2\nwin10 attach "
	    "046d:c52b@9-9\n");
	expect_reply(&c, "error win10 attach 046d:c534@1-2: no 046d:c534 at "
	    "port 1-2");
	expect_reply(&c, "error win10 attach 046d:c52b@9-9: no 046d:c52b at "
	    "port 9-9");
	expect_log("[VMusb] win10 attaching device 046d:c534@1-2 failed: no "
	    "046d:c534 at port 1-2");
	/* libvirt cannot tell them apart: the reply says where they are. */
	client_send(&c, "multivm attach 046d:c52b\n");
	expect_reply(&c, "error multivm attach 046d:c52b: operation failed: "
	    "Multiple USB devices for 046d:c52b, use <address> to specify one; "
	    "name one, as 046d:c52b@1-2; it is at ports 1-2, 3-1.4");
}
END_TEST

/* An allow entry VID:PID lets the device move from any port; one with
 * @PORT from that port only. */
START_TEST(test_allow_entry_with_a_port_allows_that_port_only)
{
	struct client c;
	char sys[300];

	snprintf(sys, sizeof(sys), "%s/sys", w.dir);
	sysfs_device(sys, "1-2", "046d", "c52b", 1, 5);
	sysfs_device(sys, "1-3", "046d", "c52b", 1, 6);
	sysfs_device(sys, "2-1", "0627", "0001", 2, 2);
	daemon_start("--sysfs", sys, "--allow", "046d:c52b@1-2", "--allow",
	    "0627:0001", NULL);
	client_open(&c);
	client_send(&c, "reply on\nvm attach 046d:c52b@1-2\n"
	    "vm attach 046d:c52b@1-3\nvm attach 046d:c52b\n"
	    "vm attach 0627:0001@2-1\nvm attach 0627:0001\n");
	expect_reply(&c, "ok vm attach 046d:c52b@1-2");
	expect_reply(&c, "error vm attach 046d:c52b@1-3: not allowed");
	expect_reply(&c, "error vm attach 046d:c52b: not allowed");
	expect_reply(&c, "ok vm attach 0627:0001@2-1");
	expect_reply(&c, "ok vm attach 0627:0001");
}
END_TEST

START_TEST(test_allow_flags_let_only_listed_devices_move)
{
	daemon_start("--allow", "046d:c52b", "--allow", "1050:0407", NULL);
	expect_allow_list_of_two();
}
END_TEST

START_TEST(test_allow_file_lets_only_listed_devices_move)
{
	FILE *f = fopen(w.config, "w");

	ck_assert_ptr_nonnull(f);
	fputs("# keyboard and mouse\nallow 046D:C52B\n\n"
	    "  allow 1050:0407\t# security key\n", f);
	ck_assert_int_eq(fclose(f), 0);
	daemon_start(NULL);
	expect_allow_list_of_two();
}
END_TEST

START_TEST(test_without_allow_list_a_warning_says_everything_may_move)
{
	char want[LINE];

	daemon_start(NULL);
	snprintf(want, sizeof(want), "[VMusb] no allow list: every host USB "
	    "device may be moved (see --allow and %s)", w.config);
	expect_log(want);
}
END_TEST

/* Writes a configuration file of the test's, with this mode. */
static void
conf_write(const char *path, const char *text, mode_t mode)
{
	FILE *f;

	unlink(path);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
}

/* The daemon refuses to start with --config path, saying want and naming
 * the file, before it listens. */
static void
expect_refused(const char *path, const char *want)
{
	char out[LINE];
	char *argv[] = { (char *)USBSERVER_BIN, (char *)"--debug",
	    (char *)"--socket", w.sock, (char *)"--xml-dir", w.xmldir,
	    (char *)"--config", (char *)path, NULL };
	int status = run(argv, NULL, out, sizeof(out));

	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1,
	    "status %#x: %s", status, out);
	ck_assert_msg(strstr(out, want) != NULL, "'%s' not in: %s", want, out);
	ck_assert_msg(strstr(out, path) != NULL, "the file is not named: %s",
	    out);
	ck_assert_int_eq(access(w.sock, F_OK), -1);	/* never listened */
}

/* SIGHUP reads the allow list again; a file it cannot take leaves the
 * list as it was, and says why. */
START_TEST(test_sighup_reads_the_allow_list_again)
{
	struct client c;

	conf_write(w.config, "allow 046d:c52b\n", 0600);
	start_with_replies(&c);
	client_send(&c, "win10 attach 1050:0407\n");
	expect_reply(&c, "error win10 attach 1050:0407: not allowed");
	conf_write(w.config, "allow 046d:c52b\nallow 1050:0407\n", 0600);
	ck_assert_int_eq(kill(w.daemon, SIGHUP), 0);
	expect_log_part("SIGHUP: the allow list read again from ");
	client_send(&c, "win10 attach 1050:0407\n");
	expect_reply(&c, "ok win10 attach 1050:0407");
	conf_write(w.config, "allow 1050\n", 0600);
	ck_assert_int_eq(kill(w.daemon, SIGHUP), 0);
	expect_log_part(":1: invalid device (expected VID:PID, four hex digits "
	    "each, or VID:PID@PORT): the allow list stays as it was");
	client_send(&c, "win10 attach 1050:0407\n");
	expect_reply(&c, "ok win10 attach 1050:0407");
	client_close(&c);
}
END_TEST

/* Signals that would end the daemon with nothing said, and its socket
 * file left behind, are ignored: it goes on serving. */
START_TEST(test_stray_signals_are_ignored)
{
	static const int sigs[] = { SIGUSR1, SIGUSR2, SIGALRM, SIGPIPE };
	struct client c;

	daemon_start(NULL);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		ck_assert_int_eq(kill(w.daemon, sigs[i]), 0);
	client_open(&c);
	client_send(&c, "reply on\nwin10 detach 046d:c52b\n");
	expect_reply(&c, "ok win10 detach 046d:c52b");
	client_close(&c);
	ck_assert_int_eq(access(w.sock, F_OK), 0);
	ck_assert_int_eq(daemon_stop(), 0);
	ck_assert_int_eq(access(w.sock, F_OK), -1);
}
END_TEST

START_TEST(test_bad_config_files_are_refused_naming_file_and_line)
{
	char path[160], long_line[MAX_CONFIG_LINE + 32];

	snprintf(path, sizeof(path), "%s/bad.conf", w.dir);
	conf_write(path, "allow 046d:c52b\nallow 046d\n", 0600);
	expect_refused(path, "bad.conf:2: invalid device");
	conf_write(path, "# ok\n\ndeny 1234:5678\n", 0600);
	expect_refused(path, "bad.conf:3: expected 'allow VID:PID[@PORT]'");
	snprintf(long_line, sizeof(long_line), "allow 046d:c52b %*s\n",
	    MAX_CONFIG_LINE, "#");
	conf_write(path, long_line, 0600);
	expect_refused(path, "bad.conf:1: line too long");
	conf_write(path, "allow 046d:c52b\n", 0620);
	expect_refused(path, "is writable by group or others");
	conf_write(path, "allow 046d:c52b\n", 0602);
	expect_refused(path, "is writable by group or others");
	unlink(path);
	expect_refused(path, "No such file or directory");
	expect_refused(w.xmldir, "is not a regular file");
}
END_TEST

START_TEST(test_config_of_another_user_is_refused)
{
	char path[160];

	if (!is_root() && test_skips("config owner test", "needs root to "
	    "give a file away"))
		return;
	snprintf(path, sizeof(path), "%s/other.conf", w.dir);
	conf_write(path, "allow 046d:c52b\n", 0600);
	ck_assert_int_eq(chown(path, 65534, 65534), 0);
	expect_refused(path, "belongs to uid 65534, not root; refusing it");
}
END_TEST

START_TEST(test_bad_allow_flag_is_a_usage_error)
{
	char out[LINE];
	char *argv[] = { (char *)USBSERVER_BIN, (char *)"--allow",
	    (char *)"046d:*", NULL };

	ck_assert_int_eq(WEXITSTATUS(run(argv, NULL, out, sizeof(out))), 2);
	ck_assert_ptr_nonnull(strstr(out, "--allow: expected VID:PID"));
}
END_TEST

/* ------------------------------------------------------------------ */
/* Hostile input                                                       */

/* Each of these gets an "error: " reply, runs nothing, writes no file,
 * and leaves the connection open. */
static const struct {
	const char	*line;
	size_t		 len;
} hostile[] = {
#define H(s)	{ s, sizeof(s) - 1 }
	H("../../etc/passwd attach 046d:c52b\n"),
	H("/etc attach 046d:c52b\n"),
	H("win10 attach ../../../etc/shadow\n"),
	H("win10 attach 046d:c52b/../../x\n"),
	H("-c attach 046d:c52b\n"),
	H("--domain attach 046d:c52b\n"),
	H("win10 attach --file=/etc/passwd\n"),
	H("win10 --file 046d:c52b\n"),
	H("'win10' attach 046d:c52b\n"),
	H("win10\" attach 046d:c52b\n"),
	H("win10 attach 046d:c52b'\n"),
	H("<win10> attach 046d:c52b\n"),
	H("win10 attach 046d:c52b<\n"),
	H("a&b attach 046d:c52b\n"),
	H("win10 attach 046d:c52b&\n"),
	H("win10;reboot attach 046d:c52b\n"),
	H("$(reboot) attach 046d:c52b\n"),
	H("win\00010 attach 046d:c52b\n"),
	H("win10 att\000ach 046d:c52b\n"),
	H("win10 attach 046d:c5\0002b\n"),
	H("\000\n"),
	H("w\x80in10 attach 046d:c52b\n"),
	H("win10 attach 046d:c52\xff\n"),
	H("\xef\xbb\xbfwin10 attach 046d:c52b\n"),
	H("win10\n"),
	H("win10 attach\n"),
	H("win10 attach 046d:c52b extra\n"),
	H("win10 attach 046d:c52b 046d:c077\n"),
	H("win10 reattach 046d:c52b\n"),
	H("win10 ATTACH 046d:c52b\n"),
	H("win10 attach 46d:c52b\n"),
	H("win10 attach 046dc52b\n"),
	H("win10 attach 0x46:c52b\n"),
	H("reply maybe\n"),
#undef H
};

START_TEST(test_hostile_lines_are_refused_and_the_connection_lives)
{
	struct client c;
	char line[LINE], entries[LINE] = "";

	start_with_replies(&c);
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		client_sendn(&c, hostile[i].line, hostile[i].len);
		client_reply(&c, line, sizeof(line));
		ck_assert_msg(strncmp(line, "error: ", 7) == 0,
		    "line %zu got '%s'", i, line);
	}
	/* Nothing ran for any of them. */
	ck_assert_int_eq(reader_line(&w.events, line, sizeof(line), 0), -1);
	client_send(&c, "win10 attach 046d:c52b\n");
	expect_reply(&c, "ok win10 attach 046d:c52b");

	/* The one file written is the valid command's. */
	dir_list(w.xmldir, entries, sizeof(entries));
	ck_assert_str_eq(entries, "device-046d:c52b.xml ");
}
END_TEST

START_TEST(test_overlong_line_is_skipped_never_truncated_into_a_command)
{
	struct client c;
	char big[MAX_LINE * 3], line[LINE];
	size_t n;

	start_with_replies(&c);
	/* Padding, then a valid command as the line's tail: a server that
	 * kept the tail would run it. */
	memset(big, ' ', sizeof(big));
	n = sizeof(big) - 40;
	memcpy(big + n, "win10 attach 046d:c52b\n", 23);
	client_sendn(&c, big, n + 23);
	expect_reply(&c, "error: line too long");
	ck_assert_msg(log_wait("line too long", line, sizeof(line)),
	    "the overlong line was not logged");

	/* A line exactly MAX_LINE long is still a line. */
	memset(big, ' ', MAX_LINE);
	memcpy(big + MAX_LINE - 22, "win10 attach 046d:c52b", 22);
	big[MAX_LINE] = '\n';
	client_sendn(&c, big, MAX_LINE + 1);
	expect_reply(&c, "ok win10 attach 046d:c52b");
	/* And the one before never ran. */
	event_wait("end", "win10", line, sizeof(line));
	ck_assert_int_eq(reader_line(&w.events, line, sizeof(line), 0), -1);
}
END_TEST

START_TEST(test_line_delivered_one_byte_at_a_time)
{
	struct client c;
	const char *s = "win10 attach 046d:c52b\r\n";

	start_with_replies(&c);
	for (; *s != '\0'; s++)
		client_sendn(&c, s, 1);
	expect_reply(&c, "ok win10 attach 046d:c52b");
}
END_TEST

START_TEST(test_peer_that_does_not_read_loses_replies_not_commands)
{
	struct client c;
	enum { N = 20000 };
	char *flood, line[LINE];
	size_t got = 0;

	daemon_start(NULL);
	client_open(&c);
	client_send(&c, "reply on\n");
	ck_assert_ptr_nonnull(flood = malloc(N * 2));
	for (int i = 0; i < N; i++)
		memcpy(flood + i * 2, "x\n", 2);
	client_sendn(&c, flood, N * 2);
	free(flood);
	client_send(&c, "win10 attach 046d:c52b\n");

	/* The command after the flood still ran... */
	event_wait("end", "win10", line, sizeof(line));
	expect_log("[VMusb] win10 attached device 046d:c52b");
	/* ...while replies were dropped, whole. */
	while (reader_line(&c.r, line, sizeof(line), 200) == 1) {
		ck_assert_msg(strcmp(line, "error: expected: VM attach|detach "
		    "VID:PID") == 0 || strcmp(line, "ok win10 attach 046d:c52b") == 0,
		    "a broken reply: '%s'", line);
		got++;
	}
	ck_assert_uint_gt(got, 0);
	ck_assert_uint_lt(got, N + 1);
}
END_TEST

START_TEST(test_a_flood_of_junk_does_not_drown_the_log)
{
	struct client c;
	enum { N = 5000 };
	char line[LINE], want[LINE];
	int logged = 0;

	daemon_start(NULL);
	client_open(&c);
	for (int i = 0; i < N; i++)
		client_send(&c, "junk\n");
	client_send(&c, "win10 attach 046d:c52b\n");
	client_close(&c);
	/* The first few are logged, the rest counted once; a real command
	 * still gets its own line. */
	for (;;) {
		ck_assert_msg(log_wait("[VMusb] ", line, sizeof(line)),
		    "no summary of the unlogged lines");
		if (log_peer(line, "[VMusb] invalid action: junk") > 0)
			logged++;
		else if (strstr(line, "were not logged") != NULL)
			break;
	}
	ck_assert_int_eq(logged, 20);
	snprintf(want, sizeof(want), "[VMusb] %d more invalid, refused or "
	    "failed lines from uid %lu were not logged", N - 20,
	    (unsigned long)geteuid());
	ck_assert_str_eq(line, want);
}
END_TEST

/* ------------------------------------------------------------------ */
/* virsh failing, missing, hanging; one VM at a time, VMs in parallel  */

START_TEST(test_missing_virsh_is_logged_and_replied)
{
	struct client c;

	daemon_start("--virsh", "/nonexistent/virsh", NULL);
	client_open(&c);
	client_send(&c, "reply on\nwin10 attach 046d:c52b\n");
	expect_reply(&c, "error win10 attach 046d:c52b: cannot run "
	    "/nonexistent/virsh: No such file or directory");
	expect_log("[VMusb] win10 attaching device 046d:c52b failed: cannot run "
	    "/nonexistent/virsh: No such file or directory");
}
END_TEST

START_TEST(test_hung_virsh_is_killed_at_the_deadline)
{
	struct client c;

	daemon_start("--timeout", "1", NULL);
	client_open(&c);
	client_send(&c, "reply on\nhangvm attach 046d:c52b\nwin10 attach 046d:c52b\n");
	expect_reply(&c, "error hangvm attach 046d:c52b: timed out");
	expect_log("[VMusb] hangvm attaching device 046d:c52b failed: timed out");
	/* The same connection goes on. */
	expect_reply(&c, "ok win10 attach 046d:c52b");
	/* EOF on its output is not its end: it still meets the deadline. */
	client_send(&c, "closedvm detach 046d:c52b\n");
	expect_reply(&c, "error closedvm detach 046d:c52b: timed out");
}
END_TEST

START_TEST(test_other_vms_are_not_held_up)
{
	struct client a, b;
	char id[32];

	daemon_start(NULL);
	client_open(&a);
	client_open(&b);
	client_send(&a, "reply on\ngatevm attach 046d:c52b\n");
	event_wait("start", "gatevm", id, sizeof(id));
	/* gatevm's virsh is still running: win10's runs meanwhile. */
	client_send(&b, "reply on\nwin10 attach 046d:c077\n");
	expect_reply(&b, "ok win10 attach 046d:c077");
	ck_assert_int_eq(write(w.gate, "go\n", 3), 3);
	expect_reply(&a, "ok gatevm attach 046d:c52b");
}
END_TEST

START_TEST(test_one_vm_runs_one_command_at_a_time_in_arrival_order)
{
	struct client a, b;
	char first[32], second[32], line[LINE], args[LINE];

	daemon_start(NULL);
	client_open(&a);
	client_open(&b);
	client_send(&a, "reply on\ngatevm attach 0001:0001\n");
	event_wait("start", "gatevm", first, sizeof(first));
	client_send(&b, "reply on\ngatevm detach 0002:0002\n");
	/* The second must wait: no virsh starts for it while the first runs.
	 * (An absence needs a window; half a second is plenty here.) */
	ck_assert_int_eq(reader_line(&w.events, line, sizeof(line), 500), -1);
	ck_assert_int_eq(write(w.gate, "go\n", 3), 3);
	ck_assert_int_eq(reader_line(&w.events, line, sizeof(line), WAIT_MS), 1);
	ck_assert_ptr_nonnull(strstr(line, "end "));
	ck_assert_ptr_nonnull(strstr(line, first));
	expect_reply(&a, "ok gatevm attach 0001:0001");
	event_wait("start", "gatevm", second, sizeof(second));
	ck_assert_int_gt(call_file(second, "args", args, sizeof(args)), 0);
	ck_assert_ptr_nonnull(strstr(args, "detach-device\n"));
	ck_assert_int_eq(write(w.gate, "go\n", 3), 3);
	expect_reply(&b, "ok gatevm detach 0002:0002");
}
END_TEST

/* ------------------------------------------------------------------ */
/* What virsh gets                                                     */

START_TEST(test_virsh_gets_a_small_fixed_environment)
{
	struct client c;
	char id[32], env[4096], name[256];
	const char *p, *eol;

	setenv("LIBVIRT_DEFAULT_URI", "test:///default", 1);
	setenv("HOME", "/root", 1);
	setenv("SECRET_TOKEN", "leak", 1);
	setenv("LD_PRELOAD", "", 1);
	start_with_replies(&c);
	client_send(&c, "win10 attach 046d:c52b\n");
	expect_reply(&c, "ok win10 attach 046d:c52b");
	event_wait("end", "win10", id, sizeof(id));
	ck_assert_int_gt(call_file(id, "env", env, sizeof(env)), 0);
	ck_assert_ptr_nonnull(strstr(env, "PATH=" SAFE_PATH "\n"));
	ck_assert_ptr_nonnull(strstr(env, "LC_ALL=C\n"));
	ck_assert_ptr_nonnull(strstr(env, "HOME=/root\n"));
	ck_assert_ptr_nonnull(strstr(env, "LIBVIRT_DEFAULT_URI=test:///default\n"));
	/* virsh's shell: readline with no terminal to draw for, no init
	 * file, and no history file anywhere. */
	ck_assert_ptr_nonnull(strstr(env, "TERM=dumb\n"));
	ck_assert_ptr_nonnull(strstr(env, "INPUTRC=/dev/null\n"));
	ck_assert_ptr_nonnull(strstr(env, "XDG_CACHE_HOME=/dev/null\n"));
	/* Nothing else but what the shell adds of its own (PWD). */
	for (p = env; *p != '\0'; p = eol + 1) {
		eol = strchr(p, '\n');
		ck_assert_ptr_nonnull(eol);
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(p, "="), p);
		ck_assert_msg(strcmp(name, "PATH") == 0 ||
		    strcmp(name, "LC_ALL") == 0 || strcmp(name, "HOME") == 0 ||
		    strcmp(name, "LIBVIRT_DEFAULT_URI") == 0 ||
		    strcmp(name, "TERM") == 0 || strcmp(name, "INPUTRC") == 0 ||
		    strcmp(name, "XDG_CACHE_HOME") == 0 ||
		    strcmp(name, "PWD") == 0, "virsh got %s", name);
	}
}
END_TEST

START_TEST(test_virsh_gets_no_descriptor_of_ours)
{
	struct client c[3];
	char id[32], fds[4096], *line, *save;

	/* Run once: a shell's are checked in test_shell_gets_only_its_pipes. */
	daemon_start("--one-shot", NULL);
	for (int i = 0; i < 3; i++)
		client_open(&c[i]);
	client_send(&c[0], "reply on\nwin10 attach 046d:c52b\n");
	expect_reply(&c[0], "ok win10 attach 046d:c52b");
	event_wait("end", "win10", id, sizeof(id));
	ck_assert_int_gt(call_file(id, "fds", fds, sizeof(fds)), 0);
	/* "ls -l /proc/PID/fd": 0 is /dev/null, 1 and 2 our pipe. The shell
	 * has its own on 10 and up: the script, a /dev/null copy, and while
	 * it redirects, a saved copy of stdout: our pipe again (dash
	 * redirects in the shell before it forks ls, so 1 may be the very
	 * file this listing goes to). Not one socket, other pipe, signalfd,
	 * pidfd or file of the daemon. */
	char ourpipe[64] = "";
	const char *vglogs = getenv("VALGRIND_LOGS");
	for (int pass = 0; pass < 2; pass++) {
		char copy[sizeof(fds)];
		memcpy(copy, fds, sizeof(fds));
		for (line = strtok_r(copy, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			const char *arrow = strstr(line, " -> "), *t, *p;
			if (arrow == NULL)
				continue;	/* "total 0" */
			t = arrow + 4;
			for (p = arrow; p > line && p[-1] != ' '; p--)
				;
			int fd = atoi(p);
			if (pass == 0) {
				if (fd == 2)
					snprintf(ourpipe, sizeof(ourpipe), "%s", t);
				continue;
			}
			if (fd == 0)
				ck_assert_msg(strcmp(t, "/dev/null") == 0, "%s", line);
			else if (fd == 1)
				ck_assert_msg(strcmp(t, ourpipe) == 0 ||
				    (strncmp(t, w.dir, strlen(w.dir)) == 0 &&
				    strcmp(t + strlen(t) - 4, ".fds") == 0), "%s", line);
			else if (fd == 2)
				ck_assert_msg(strncmp(t, "pipe:", 5) == 0, "%s", line);
			else if (vglogs != NULL &&
			    strncmp(t, vglogs, strlen(vglogs)) == 0)
				continue;	/* valgrind's own, in check-valgrind */
			else
				ck_assert_msg(fd >= 10 && (strcmp(t, "/dev/null") == 0 ||
				    strcmp(t, w.virsh) == 0 || strcmp(t, ourpipe) == 0),
				    "virsh inherited %s", line);
		}
	}
}
END_TEST

/* The request req (one word) is answered "ok req" alone to host client
 * c, which is closed then; a guest is refused it. */
static void
expect_host_only(struct client *c, const char *req)
{
	char line[LINE], out[LINE], want[LINE];

	snprintf(line, sizeof(line), "%s\n", req);
	client_send(c, line);
	snprintf(want, sizeof(want), "ok %s", req);
	expect_reply(c, want);
	client_close(c);
	snprintf(line, sizeof(line), "reply on\n%s\n", req);
	guest_as(0, 0, "vmA", line, out, sizeof(out));
	snprintf(want, sizeof(want), "error %s: not allowed\n", req);
	ck_assert_str_eq(out, want);
}

/* ------------------------------------------------------------------ */
/* virsh's shells                                                      */

/* The pids of the shells the fake virsh has started, in order: how many. */
static int
shell_pids(pid_t *pids, int max)
{
	char path[PATH_MAX], buf[1024], *p, *end;
	int n = 0;

	snprintf(path, sizeof(path), "%s/shells", w.dir);
	if (slurp(path, buf, sizeof(buf)) <= 0)
		return 0;
	for (p = buf; n < max && (pids[n] = (pid_t)strtol(p, &end, 10)) > 0;
	    p = end)
		n++;
	return n;
}

/* The pid of the process that started the fake virsh call id. */
static pid_t
call_parent(const char *id)
{
	char buf[32];

	ck_assert_int_gt(call_file(id, "ppid", buf, sizeof(buf)), 0);
	return (pid_t)atol(buf);
}

/* One command for vm, answered ok; the parent of its virsh. */
static pid_t
attach_ok(struct client *c, const char *vm, const char *dev)
{
	char line[LINE], id[32];

	snprintf(line, sizeof(line), "%s attach %s\n", vm, dev);
	client_send(c, line);
	snprintf(line, sizeof(line), "ok %s attach %s", vm, dev);
	expect_reply(c, line);
	event_wait("end", vm, id, sizeof(id));
	return call_parent(id);
}

/* Whether pid is gone, reaped: not even a zombie is left. */
static bool
reaped(pid_t pid)
{
	return kill(pid, 0) == -1 && errno == ESRCH;
}

START_TEST(test_commands_go_to_one_resident_shell)
{
	struct client c;
	pid_t shells[4];
	char id[32], args[LINE], want[LINE];

	start_with_replies(&c);
	for (int i = 0; i < 4; i++) {
		pid_t parent = attach_ok(&c, "win10", "046d:c52b");

		ck_assert_int_eq(shell_pids(shells, 4), 1);
		ck_assert_int_eq(parent, shells[0]);
	}
	/* What it was told is what a one-shot run is given. */
	client_send(&c, "win10 detach 046d:c52b\n");
	expect_reply(&c, "ok win10 detach 046d:c52b");
	event_wait("end", "win10", id, sizeof(id));
	ck_assert_int_gt(call_file(id, "args", args, sizeof(args)), 0);
	snprintf(want, sizeof(want), "detach-device\n--domain\nwin10\n"
	    "--file\n%s/device-046d:c52b.xml\n", w.xmldir);
	ck_assert_str_eq(args, want);
	ck_assert_int_eq(shell_pids(shells, 4), 1);
}
END_TEST

START_TEST(test_a_shell_that_dies_fails_its_command_and_another_starts)
{
	struct client c;
	pid_t shells[4];

	start_with_replies(&c);
	attach_ok(&c, "win10", "046d:c52b");
	client_send(&c, "sigvm attach 046d:c52b\n");
	expect_reply(&c, "error sigvm attach 046d:c52b: virsh killed by signal 9");
	ck_assert_int_eq(shell_pids(shells, 4), 1);
	ck_assert(reaped(shells[0]));
	ck_assert_int_eq(attach_ok(&c, "win10", "046d:c077"),
	    shell_pids(shells, 4) == 2 ? shells[1] : -1);
}
END_TEST

START_TEST(test_a_hung_command_ends_its_shell_and_holds_up_no_other)
{
	struct client a, b;
	pid_t shells[4];
	char id[32];

	daemon_start("--timeout", "2", NULL);
	client_open(&a);
	client_open(&b);
	client_send(&a, "reply on\nhangvm attach 046d:c52b\n");
	client_send(&b, "reply on\n");
	event_wait("start", "hangvm", id, sizeof(id));
	/* A second shell serves win10 while the first waits on hangvm. */
	ck_assert_int_eq(attach_ok(&b, "win10", "046d:c077"),
	    shell_pids(shells, 4) == 2 ? shells[1] : -1);
	ck_assert_int_eq(call_parent(id), shells[0]);
	expect_reply(&a, "error hangvm attach 046d:c52b: timed out");
	ck_assert(reaped(shells[0]));
	/* The next command takes the shell that is left. */
	ck_assert_int_eq(attach_ok(&a, "win10", "046d:c52b"), shells[1]);
	ck_assert_int_eq(shell_pids(shells, 4), 2);
}
END_TEST

START_TEST(test_shells_that_keep_dying_give_way_to_one_shot_runs)
{
	struct client c;
	pid_t shells[8];
	char path[PATH_MAX], line[LINE];

	snprintf(path, sizeof(path), "%s/noshell", w.dir);
	write_file(path, "", 0644);
	start_with_replies(&c);
	/* Every command still works, by virsh run once, the daemon its
	 * parent; the shells are given up after three in a row. */
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(attach_ok(&c, "win10", "046d:c52b"), w.daemon);
	expect_log("[VMusb] virsh's shell keeps failing (virsh exited with "
	    "status 0): running virsh once per command for 60 s");
	ck_assert_int_eq(shell_pids(shells, 8), 3);
	for (int i = 0; i < 3; i++)
		ck_assert(reaped(shells[i]));
	/* Said once: nothing more of it up to a line logged after. */
	client_send(&c, "win10 nonsense\n");
	do {
		ck_assert_int_eq(reader_line(&w.log, line, sizeof(line),
		    WAIT_MS), 1);
		ck_assert_ptr_null(strstr(line, "keeps failing"));
	} while (strstr(line, "invalid action") == NULL);
}
END_TEST

START_TEST(test_an_argument_a_shell_cannot_take_runs_virsh_once)
{
	struct client c;
	char dir[512], id[32], args[LINE], want[LINE];
	pid_t shells[4];

	/* A quote, in the directory root chose: never in the shell's line. */
	snprintf(dir, sizeof(dir), "%s/it's", w.dir);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	daemon_start("--xml-dir", dir, NULL);
	client_open(&c);
	client_send(&c, "reply on\nwin10 attach 046d:c52b\n");
	expect_reply(&c, "ok win10 attach 046d:c52b");
	event_wait("end", "win10", id, sizeof(id));
	ck_assert_int_eq(call_parent(id), w.daemon);
	ck_assert_int_gt(call_file(id, "args", args, sizeof(args)), 0);
	snprintf(want, sizeof(want), "--file\n%s/device-046d:c52b.xml\n", dir);
	ck_assert_ptr_nonnull(strstr(args, want));
	/* No shell was started for it. */
	ck_assert_int_eq(shell_pids(shells, 4), 0);
}
END_TEST

START_TEST(test_a_shell_gets_its_three_pipes_and_nothing_else)
{
	struct client c;
	pid_t shells[4];
	char dir[64], path[PATH_MAX], target[PATH_MAX], std[3][64] = { "" };
	const char *vglogs = getenv("VALGRIND_LOGS");
	struct dirent *de;
	DIR *d;

	start_with_replies(&c);
	attach_ok(&c, "win10", "046d:c52b");
	ck_assert_int_eq(shell_pids(shells, 4), 1);
	snprintf(dir, sizeof(dir), "/proc/%ld/fd", (long)shells[0]);
	ck_assert_ptr_nonnull(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		int fd = atoi(de->d_name);
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		ck_assert_int_gt(n = readlink(path, target, sizeof(target) - 1), 0);
		target[n] = '\0';
		if (fd <= 2) {
			ck_assert_msg(strncmp(target, "pipe:", 5) == 0, "%d -> %s",
			    fd, target);
			snprintf(std[fd], sizeof(std[fd]), "%.63s", target);
		} else if (vglogs == NULL ||
		    strncmp(target, vglogs, strlen(vglogs)) != 0)
			/* dash's copy of its script, nothing of the daemon's
			 * (valgrind's own, in check-valgrind, aside). */
			ck_assert_msg(fd >= 10 && strcmp(target, w.virsh) == 0,
			    "the shell holds %d -> %s", fd, target);
	}
	closedir(d);
	/* Three pipes of their own: stdin, stdout, stderr, each there. */
	ck_assert_str_ne(std[0], "");
	ck_assert_str_ne(std[1], "");
	ck_assert_str_ne(std[2], "");
	ck_assert_str_ne(std[0], std[1]);
	ck_assert_str_ne(std[0], std[2]);
	ck_assert_str_ne(std[1], std[2]);
}
END_TEST

/* "domains": the running domains, as the daemon's virsh lists them,
 * for a host client alone; a name that is not printable is left out. */
START_TEST(test_domains_are_what_virsh_lists_for_host_clients_only)
{
	struct client c;
	char path[PATH_MAX], id[32], args[LINE];
	pid_t shells[4];
	glob_t g;

	snprintf(path, sizeof(path), "%s/domains", w.dir);
	write_file(path, "win10\n\n  linux  \nmy vm\n\033[2Jx\n\tlast", 0644);
	start_with_replies(&c);
	client_send(&c, "domains\n");
	expect_reply(&c, "domain win10");
	expect_reply(&c, "domain linux");
	expect_reply(&c, "domain my vm");
	expect_reply(&c, "domain last");
	expect_reply(&c, "ok domains");
	/* Asked of the daemon's shell: the one call the fake virsh had. */
	snprintf(path, sizeof(path), "%s/call.*.args", w.dir);
	ck_assert_int_eq(glob(path, 0, NULL, &g), 0);
	ck_assert_uint_eq(g.gl_pathc, 1);
	ck_assert_int_gt(slurp(g.gl_pathv[0], args, sizeof(args)), 0);
	ck_assert_str_eq(args, "list\n--state-running\n--name\n");
	snprintf(id, sizeof(id), "%.*s", (int)strcspn(g.gl_pathv[0] +
	    strlen(w.dir) + 6, "."), g.gl_pathv[0] + strlen(w.dir) + 6);
	globfree(&g);
	ck_assert_int_eq(shell_pids(shells, 4), 1);
	ck_assert_int_eq(call_parent(id), shells[0]);
	snprintf(path, sizeof(path), "%s/domains", w.dir);
	/* None running: "ok" alone. */
	write_file(path, "", 0644);
	expect_host_only(&c, "domains");
}
END_TEST

/* What virsh says between commands (it lost libvirtd, say) is logged,
 * and no command's failure. */
START_TEST(test_what_an_idle_shell_says_fails_no_command)
{
	struct client c;
	char id[32];
	pid_t shells[4];

	start_with_replies(&c);
	attach_ok(&c, "latevm", "046d:c52b");
	/* Its command answered, virsh speaks up of its own accord. */
	ck_assert_int_eq(write(w.gate, "go\n", 3), 3);
	event_wait("said", "latevm", id, sizeof(id));
	attach_ok(&c, "win10", "046d:c077");
	expect_log("[VMusb] virsh said: error: Disconnected from qemu:///system "
	    "due to end of file");
	ck_assert_int_eq(shell_pids(shells, 4), 1);
}
END_TEST

START_TEST(test_shells_end_with_the_daemon)
{
	struct client c;
	pid_t shells[4];

	start_with_replies(&c);
	attach_ok(&c, "win10", "046d:c52b");
	ck_assert_int_eq(shell_pids(shells, 4), 1);
	ck_assert(!reaped(shells[0]));
	ck_assert_int_eq(daemon_stop(), 0);
	ck_assert(reaped(shells[0]));
}
END_TEST

/* ------------------------------------------------------------------ */
/* Many clients                                                        */

START_TEST(test_many_clients_at_once_none_lost)
{
	enum { CLIENTS = 150, EACH = 2 };	/* more clients than the cap */
	static struct client c[CLIENTS];
	char line[LINE], want[LINE];

	daemon_start(NULL);
	for (int i = 0; i < CLIENTS; i++)
		client_open(&c[i]);
	for (int i = 0; i < CLIENTS; i++) {
		client_send(&c[i], "reply on\n");
		for (int j = 0; j < EACH; j++) {
			snprintf(line, sizeof(line), "vm%d attach %04x:%04x\n",
			    i % 7, i, j);
			client_send(&c[i], line);
		}
		shutdown(c[i].r.fd, SHUT_WR);
	}
	for (int i = 0; i < CLIENTS; i++) {
		for (int j = 0; j < EACH; j++) {
			snprintf(want, sizeof(want), "ok vm%d attach %04x:%04x",
			    i % 7, i, j);
			expect_reply(&c[i], want);
		}
		ck_assert_int_eq(reader_line(&c[i].r, line, sizeof(line),
		    WAIT_MS), 0);
		client_close(&c[i]);
	}
}
END_TEST

/* ------------------------------------------------------------------ */
/* Signals and start-up                                                */

static void
expect_clean_stop(int sig)
{
	struct stat st;
	int status;

	kill(w.daemon, sig);
	status = daemon_stop();		/* a second signal changes nothing */
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "wait status %#x", status);
	ck_assert_int_eq(lstat(w.sock, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
}

START_TEST(test_sigterm_removes_the_socket_and_exits_zero)
{
	struct client c;

	start_with_replies(&c);
	client_send(&c, "win10 attach 046d:c52b\n");
	expect_reply(&c, "ok win10 attach 046d:c52b");
	expect_clean_stop(SIGTERM);
	expect_log("[VMusb] stopped");
}
END_TEST

START_TEST(test_sigint_removes_the_socket_and_exits_zero)
{
	daemon_start(NULL);
	expect_clean_stop(SIGINT);
}
END_TEST

START_TEST(test_sigterm_waits_for_a_running_virsh)
{
	struct client c;
	char id[32];
	int status;

	start_with_replies(&c);
	client_send(&c, "gatevm attach 046d:c52b\n");
	event_wait("start", "gatevm", id, sizeof(id));
	kill(w.daemon, SIGTERM);
	/* Released after the signal: its virsh ends, is reaped, then exit. */
	ck_assert_int_eq(write(w.gate, "go\n", 3), 3);
	status = daemon_stop();
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	event_wait("end", "gatevm", id, sizeof(id));
}
END_TEST

START_TEST(test_vanished_client_does_not_kill_it)
{
	struct client a, b;
	char id[32];

	daemon_start(NULL);
	client_open(&a);
	/* The reply will meet a closed socket: EPIPE, never SIGPIPE. */
	client_send(&a, "reply on\ngatevm attach 046d:c52b\n");
	event_wait("start", "gatevm", id, sizeof(id));
	client_close(&a);
	ck_assert_int_eq(write(w.gate, "go\n", 3), 3);
	expect_log("[VMusb] gatevm attached device 046d:c52b");
	client_open(&b);
	client_send(&b, "reply on\nwin10 attach 046d:c52b\n");
	expect_reply(&b, "ok win10 attach 046d:c52b");
}
END_TEST

START_TEST(test_stale_socket_file_is_replaced)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct client c;
	int fd;

	/* A socket file nobody listens on, as a crashed server leaves. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w.sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	start_with_replies(&c);
	client_send(&c, "win10 attach 046d:c52b\n");
	expect_reply(&c, "ok win10 attach 046d:c52b");
}
END_TEST

START_TEST(test_live_server_is_not_stolen)
{
	char out[LINE], want[LINE];
	char *argv[] = { (char *)USBSERVER_BIN, (char *)"--debug",
	    (char *)"--socket", w.sock, (char *)"--ledger", w.ledger, NULL };
	struct client c;

	start_with_replies(&c);
	ck_assert_int_eq(WEXITSTATUS(run(argv, NULL, out, sizeof(out))), 1);
	snprintf(want, sizeof(want), "usbserver: another server is listening "
	    "on %s; not taking it over\n", w.sock);
	ck_assert_str_eq(out, want);
	/* The first one still serves, on the same connection. */
	client_send(&c, "win10 attach 046d:c52b\n");
	expect_reply(&c, "ok win10 attach 046d:c52b");
}
END_TEST

START_TEST(test_non_socket_at_the_path_is_left_alone)
{
	char out[LINE], want[LINE], buf[64];
	char *argv[] = { (char *)USBSERVER_BIN, (char *)"--debug",
	    (char *)"--socket", w.sock, (char *)"--ledger", w.ledger, NULL };
	FILE *f = fopen(w.sock, "we");

	ck_assert_ptr_nonnull(f);
	fputs("mine\n", f);
	fclose(f);
	ck_assert_int_eq(WEXITSTATUS(run(argv, NULL, out, sizeof(out))), 1);
	snprintf(want, sizeof(want), "usbserver: %s exists and is not a "
	    "socket; not touching it\n", w.sock);
	ck_assert_str_eq(out, want);
	ck_assert_int_gt(slurp(w.sock, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "mine\n");
}
END_TEST

START_TEST(test_unsafe_xml_dir_is_refused)
{
	char out[LINE], want[LINE], open_dir[256];
	char *argv[] = { (char *)USBSERVER_BIN, (char *)"--debug",
	    (char *)"--socket", w.sock, (char *)"--xml-dir", open_dir, NULL };

	snprintf(open_dir, sizeof(open_dir), "%s/open", w.dir);
	ck_assert_int_eq(mkdir(open_dir, 0777), 0);
	ck_assert_int_eq(chmod(open_dir, 0777), 0);	/* not sticky */
	ck_assert_int_eq(WEXITSTATUS(run(argv, NULL, out, sizeof(out))), 1);
	snprintf(want, sizeof(want), "usbserver: %s is writable by others and "
	    "not sticky; refusing to write XML files there\n", open_dir);
	ck_assert_str_eq(out, want);

	snprintf(open_dir, sizeof(open_dir), "relative/dir");
	ck_assert_int_eq(WEXITSTATUS(run(argv, NULL, out, sizeof(out))), 1);
	ck_assert_str_eq(out, "usbserver: --xml-dir must be an absolute path: "
	    "relative/dir\n");
}
END_TEST

START_TEST(test_options_help_version_and_bad_timeout)
{
	char out[4096];
	char *help[] = { (char *)USBSERVER_BIN, (char *)"--help", NULL };
	char *version[] = { (char *)USBSERVER_BIN, (char *)"--version", NULL };
	char *bad[] = { (char *)USBSERVER_BIN, (char *)"--timeout", (char *)"0",
	    NULL };
	char *extra[] = { (char *)USBSERVER_BIN, (char *)"stray", NULL };

	ck_assert_int_eq(run(help, NULL, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "--xml-dir DIR"));
	ck_assert_int_eq(run(version, NULL, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "usbserver " USBSERVER_VERSION "\n");
	ck_assert_int_eq(WEXITSTATUS(run(bad, NULL, out, sizeof(out))), 2);
	ck_assert_str_eq(out, "usbserver: --timeout: expected seconds from 1 "
	    "to 3600, got '0'\n");
	ck_assert_int_eq(WEXITSTATUS(run(extra, NULL, out, sizeof(out))), 2);
}
END_TEST

START_TEST(test_socket_is_owner_only)
{
	struct stat st;

	daemon_start(NULL);
	ck_assert_int_eq(lstat(w.sock, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
}
END_TEST

/* connect() to the socket as uid:gid, from a child; its errno or 0. */
static int
connect_as(uid_t uid, gid_t gid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int status, fd;
	pid_t pid;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w.sock);
	if ((pid = fork()) == 0) {
		if (setgroups(0, NULL) == -1 || setgid(gid) == -1 ||
		    setuid(uid) == -1)
			_exit(255);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		_exit(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 :
		    errno);
	}
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) != 255);
	return WEXITSTATUS(status);
}

START_TEST(test_socket_mode_and_group_are_set_before_anyone_connects)
{
	struct group *gr = getgrgid(65534);
	const char *name = gr != NULL ? gr->gr_name : "65534";
	struct stat st;

	if (!is_root() && test_skips("socket group test", "needs root to "
	    "give the socket to another group"))
		return;
	/* Others may pass through to the socket, nothing more. */
	ck_assert_int_eq(chmod(scratch_dir(), 0711), 0);
	ck_assert_int_eq(chmod(w.dir, 0711), 0);
	/* Owner-only: the group's members are refused. */
	daemon_start(NULL);
	ck_assert_int_eq(connect_as(65534, 65534), EACCES);
	ck_assert_int_eq(daemon_stop(), 0);

	daemon_start("--socket-group", name, "--socket-mode", "0660", NULL);
	ck_assert_int_eq(lstat(w.sock, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0660);
	ck_assert_uint_eq(st.st_gid, 65534);
	ck_assert_uint_eq(st.st_uid, geteuid());
	ck_assert_int_eq(connect_as(65534, 65534), 0);
	/* Neither owner nor group: refused. */
	ck_assert_int_eq(connect_as(65534, 65533), EACCES);
}
END_TEST

/* --socket-user gives the socket to QEMU's user, say: it may connect,
 * but owning the socket does not make it a host client. */
START_TEST(test_socket_user_owns_the_socket_but_is_no_host_client)
{
	struct stat st;

	if (!is_root() && test_skips("socket user test", "needs root to "
	    "give the socket to another user"))
		return;
	ck_assert_int_eq(chmod(scratch_dir(), 0711), 0);
	ck_assert_int_eq(chmod(w.dir, 0711), 0);
	daemon_start("--socket-user", "65534", "--socket-group", "65533",
	    "--socket-mode", "0660", NULL);
	ck_assert_int_eq(lstat(w.sock, &st), 0);
	ck_assert_uint_eq(st.st_uid, 65534);
	ck_assert_uint_eq(st.st_gid, 65533);
	ck_assert_uint_eq(st.st_mode & 07777, 0660);
	peer_closed(65534, 65534, NULL, "reply on\nvm detach 046d:c52b\n");
	expect_calls("");
}
END_TEST

/* "user:group mode", as the daemon names a socket file's. */
static const char *
owner_text(char *buf, size_t size, uid_t uid, gid_t gid, mode_t mode)
{
	struct passwd *pw = getpwuid(uid);
	struct group *gr = getgrgid(gid);
	char un[32], gn[32];

	snprintf(un, sizeof(un), "%lu", (unsigned long)uid);
	snprintf(gn, sizeof(gn), "%lu", (unsigned long)gid);
	snprintf(buf, size, "%s:%s %04o", pw != NULL ? pw->pw_name : un,
	    gr != NULL ? gr->gr_name : gn, (unsigned)mode);
	return buf;
}

/* Changes path's mode (and, as root, its owner) as libvirt's relabelling
 * does, and back: each is logged, the first as a warning. */
static void
expect_socket_change_noted(const char *path)
{
	char want[LINE], line[LINE], was[96], now[96];
	struct stat st;

	ck_assert_int_eq(lstat(path, &st), 0);
	owner_text(was, sizeof(was), st.st_uid, st.st_gid, st.st_mode & 07777);
	if (is_root()) {
		ck_assert_int_eq(lchown(path, 64055, 64055), 0);
		owner_text(now, sizeof(now), 64055, 64055, st.st_mode & 07777);
	} else {
		ck_assert_int_eq(chmod(path, 0604), 0);
		owner_text(now, sizeof(now), st.st_uid, st.st_gid, 0604);
	}
	snprintf(want, sizeof(want), "[VMusb] our socket %s is now %s, not %s: ",
	    path, now, was);
	ck_assert_msg(log_wait(want, line, sizeof(line)), "no '%s'", want);
	ck_assert_ptr_nonnull(strstr(line, "relabel='no'"));
	ck_assert_int_eq(lchown(path, st.st_uid, st.st_gid), 0);
	ck_assert_int_eq(chmod(path, st.st_mode & 07777), 0);
	snprintf(want, sizeof(want), "[VMusb] our socket %s is %s again", path,
	    was);
	expect_log(want);
}

/* libvirt re-owns a guest's chardev socket unless told not to: the
 * daemon says so when its socket's owner or mode changes, and again when
 * they are back, for its own socket and for systemd's. */
START_TEST(test_socket_owner_or_mode_changed_is_logged)
{
	char want[LINE];
	struct client c;

	daemon_start(NULL);
	expect_socket_change_noted(w.sock);
	/* Nothing else changed: it still serves. */
	client_open(&c);
	client_send(&c, "reply on\nwin10 detach 046d:c52b\n");
	expect_reply(&c, "ok win10 detach 046d:c52b");
	client_close(&c);
	ck_assert_int_eq(daemon_stop(), 0);

	w.listen_fd = listening_socket();
	snprintf(want, sizeof(want), "[VMusb] listening on %s (from systemd)",
	    w.sock);
	w.ready = want;
	daemon_start(NULL);
	expect_socket_change_noted(w.sock);
	ck_assert_int_eq(daemon_stop(), 0);
	close(w.listen_fd);
}
END_TEST

START_TEST(test_socket_mode_open_to_everyone_is_refused)
{
	static const char *bad[] = { "0666", "0622", "777", "0800", "rw", "" };
	char out[LINE];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = { (char *)USBSERVER_BIN, (char *)"--socket",
		    w.sock, (char *)"--socket-mode", (char *)bad[i], NULL };

		ck_assert_int_eq(WEXITSTATUS(run(argv, NULL, out, sizeof(out))), 2);
		ck_assert_ptr_nonnull(strstr(out, "--socket-mode"));
	}
	{
		char *argv[] = { (char *)USBSERVER_BIN, (char *)"--socket",
		    w.sock, (char *)"--socket-group", (char *)"no-such-group-x",
		    NULL };

		ck_assert_int_eq(WEXITSTATUS(run(argv, NULL, out, sizeof(out))), 2);
		ck_assert_ptr_nonnull(strstr(out, "no such group"));
	}
	ck_assert_int_eq(access(w.sock, F_OK), -1);
}
END_TEST


/* ------------------------------------------------------------------ */
/* systemd: readiness and socket activation, without systemd           */

/* A datagram socket of the test's, at path or (starting with '@') in the
 * abstract namespace, as systemd's NOTIFY_SOCKET. */
static int
notify_socket(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    strlen(name));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ne(fd, -1);
	memcpy(sa.sun_path, name, strlen(name));
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, len), 0);
	return fd;
}

/* The next notification holds want. */
static void
expect_notify(int fd, const char *want)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char msg[256];
	ssize_t n;

	ck_assert_msg(poll(&p, 1, WAIT_MS) == 1, "no '%s' within %d ms", want,
	    WAIT_MS);
	ck_assert_int_gt(n = recv(fd, msg, sizeof(msg) - 1, 0), 0);
	msg[n] = '\0';
	ck_assert_msg(strstr(msg, want) != NULL, "'%s', not '%s'", msg, want);
}

static void
expect_ready_and_stopping(const char *name)
{
	char env[160];
	int fd = notify_socket(name);

	snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", name);
	w.env[0] = env;
	daemon_start(NULL);
	expect_notify(fd, "READY=1");
	ck_assert_int_eq(daemon_stop(), 0);
	expect_notify(fd, "STOPPING=1");
	close(fd);
}

START_TEST(test_ready_and_stopping_go_to_the_notify_socket)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/notify", w.dir);
	expect_ready_and_stopping(path);
}
END_TEST

/* A NOTIFY_SOCKET whose receiver never reads, its queue full: the
 * daemon says it cannot tell systemd, and serves all the same. */
START_TEST(test_a_notify_socket_that_never_reads_does_not_hold_the_start)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[sizeof(sa.sun_path)], env[160];
	int rfd, senders[64], ns = 0, sent;
	struct client c;

	snprintf(path, sizeof(path), "%s/notify", w.dir);
	rfd = notify_socket(path);
	memcpy(sa.sun_path, path, sizeof(path));
	/* Fresh senders until one cannot send even once: the receiver's
	 * queue, not a sender's buffer, is what is full. */
	do {
		ck_assert_int_lt(ns, 64);
		senders[ns] = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		ck_assert_int_ne(senders[ns], -1);
		for (sent = 0; sendto(senders[ns], "x", 1, MSG_DONTWAIT,
		    (struct sockaddr *)&sa, sizeof(sa)) == 1; sent++)
			;
		ck_assert_int_eq(errno, EAGAIN);
		ns++;
	} while (sent > 0);
	snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", path);
	w.env[0] = env;
	daemon_start(NULL);
	client_open(&c);
	client_send(&c, "reply on\nwin10 attach 046d:c52b\n");
	expect_reply(&c, "ok win10 attach 046d:c52b");
	ck_assert(log_wait("[VMusb] cannot notify systemd: ", NULL, 0));
	client_close(&c);
	ck_assert_int_eq(daemon_stop(), 0);
	while (ns > 0)
		close(senders[--ns]);
	close(rfd);
}
END_TEST

START_TEST(test_abstract_notify_socket_works_too)
{
	char name[64];

	snprintf(name, sizeof(name), "@usbserver-test-%ld", (long)getpid());
	expect_ready_and_stopping(name);
}
END_TEST

/* A listening socket of the test's, at the world's path. */
static int
listening_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w.sock);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 16), 0);
	return fd;
}

/* A passed socket is used, never removed, and holds the clients that
 * connect while no daemon runs: the next daemon serves them. */
START_TEST(test_passed_socket_outlives_the_daemon_and_keeps_its_clients)
{
	char want[LINE];
	struct client c;
	struct stat before, after;

	w.listen_fd = listening_socket();
	ck_assert_int_eq(lstat(w.sock, &before), 0);
	snprintf(want, sizeof(want), "[VMusb] listening on %s (from systemd)",
	    w.sock);
	w.ready = want;
	daemon_start(NULL);
	client_open(&c);
	client_send(&c, "reply on\nwin10 attach 046d:c52b\n");
	expect_reply(&c, "ok win10 attach 046d:c52b");
	ck_assert_int_eq(daemon_stop(), 0);

	ck_assert_int_eq(lstat(w.sock, &after), 0);	/* still there */
	ck_assert_uint_eq(after.st_ino, before.st_ino);
	/* Connected while nobody serves: waits in the backlog. */
	client_close(&c);
	client_open(&c);
	client_send(&c, "reply on\nwin10 detach 046d:c52b\n");
	daemon_start(NULL);
	expect_reply(&c, "ok win10 detach 046d:c52b");
	client_close(&c);
	close(w.listen_fd);
}
END_TEST

START_TEST(test_systemd_socket_activate_starts_it_on_the_first_client)
{
	/* It passes on only the environment it is told to (check-valgrind's
	 * wrapper needs these two). */
	static const char *prefix[] = { "systemd-socket-activate",
	    "-E", "VALGRIND_LOGS", "-E", "VALGRIND_DAEMON", "-l", NULL, NULL };
	char listen[128];
	struct client c;

	if (access("/usr/bin/systemd-socket-activate", X_OK) == -1 &&
	    test_skips("socket activation test", "no systemd-socket-activate: "
	    "apt-get install systemd"))
		return;
	snprintf(listen, sizeof(listen), "%s", w.sock);
	memcpy(w.prefix, prefix, sizeof(prefix));
	w.prefix[6] = listen;
	w.ready = "Listening on";		/* systemd-socket-activate's */
	daemon_start(NULL);
	client_open(&c);
	client_send(&c, "reply on\nwin10 attach 046d:c52b\n");
	expect_reply(&c, "ok win10 attach 046d:c52b");
	ck_assert(log_wait("(from systemd)", NULL, 0));
	client_close(&c);
	ck_assert_int_eq(daemon_stop(), 0);
}
END_TEST

/* A client that connects as uid:gid (and groups), writes line and exits
 * at once, without waiting for anything; reaped before this returns. A
 * peer that may do nothing may be closed before its line is sent: the
 * log says what the daemon made of it. */
static void
gone_client(uid_t uid, gid_t gid, gid_t group, const char *line)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int status, fd;
	pid_t pid;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w.sock);
	if ((pid = fork()) == 0) {
		if (uid != 0 && (setgroups(1, &group) == -1 ||
		    setgid(gid) == -1 || setuid(uid) == -1))
			_exit(2);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
		    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
			_exit(1);
		if (send(fd, line, strlen(line), MSG_NOSIGNAL) !=
		    (ssize_t)strlen(line))
			_exit(errno == EPIPE || errno == ECONNRESET ? 0 : 1);
		_exit(0);
	}
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "a client as uid %lu group %lu could not connect or send (%d)",
	    (unsigned long)uid, (unsigned long)group, status);
}

/*
 * With a socket from systemd, its file's group (SocketGroup=) makes its
 * members host clients, so that the socket unit alone says who they are;
 * --socket-group, when given, says otherwise.
 */
START_TEST(test_passed_sockets_group_makes_host_clients)
{
	char want[LINE], line[LINE];
	struct group *gr;

	if (!is_root() && test_skips("passed socket group test", "needs root "
	    "to run peers as other users"))
		return;
	ck_assert_int_eq(chmod(scratch_dir(), 0711), 0);
	ck_assert_int_eq(chmod(w.dir, 0711), 0);
	w.listen_fd = listening_socket();
	ck_assert_int_eq(lchown(w.sock, (uid_t)-1, 65533), 0);
	ck_assert_int_eq(chmod(w.sock, 0666), 0);  /* the test's own peers */
	gr = getgrgid(65533);
	snprintf(want, sizeof(want), "[VMusb] listening on %s (from systemd); "
	    "host clients: root, and members of group %s", w.sock,
	    gr != NULL ? gr->gr_name : "65533");
	w.ready = want;
	daemon_start(NULL);
	gone_client(65534, 65534, 65533, "member detach 046d:c52b\n");
	expect_log("[VMusb] member detached device 046d:c52b");
	gone_client(65534, 65534, 65534, "other detach 046d:c52b\n");
	expect_log_part("connections of uid 65534 are closed at once: it may "
	    "do nothing");
	ck_assert_int_eq(daemon_stop(), 0);

	/* Told another group, the file's is no longer the host's. */
	snprintf(want, sizeof(want), "[VMusb] listening on %s (from systemd)",
	    w.sock);
	daemon_start("--socket-group", "65532", NULL);
	gone_client(65534, 65534, 65533, "member detach 046d:c52b\n");
	ck_assert(log_wait("connections of uid 65534 are closed at once: it "
	    "may do nothing", line, sizeof(line)));
	ck_assert_int_eq(daemon_stop(), 0);
	close(w.listen_fd);
}
END_TEST

/*
 * A peer gone before the daemon looked may have been a QEMU that wrote its
 * lines and exited at once. If QEMU has run as its user since the daemon
 * started, its credentials make it no host client: not a member of the
 * socket's group, and not root either when QEMU runs as root.
 */
START_TEST(test_a_gone_peer_of_a_user_qemu_ran_as_is_no_host_client)
{
	char run_dir[160], path[256], out[LINE];
	pid_t qemu;
	FILE *f;

	if (!is_root() && test_skips("gone QEMU test", "needs root to run "
	    "peers as other users"))
		return;
	ck_assert_int_eq(chmod(scratch_dir(), 0711), 0);
	ck_assert_int_eq(chmod(w.dir, 0711), 0);
	snprintf(run_dir, sizeof(run_dir), "%s/qemu-run", w.dir);
	qemu = fake_qemu(run_dir, "vmQ");	/* uid 65534, seen at start */
	daemon_start("--socket-group", "65533", "--socket-mode", "0660",
	    "--qemu-run-dir", run_dir, NULL);
	ck_assert_int_eq(kill(qemu, SIGKILL), 0);
	ck_assert_int_eq(waitpid(qemu, NULL, 0), qemu);
	snprintf(path, sizeof(path), "%s/vmQ.pid", run_dir);
	ck_assert_int_eq(unlink(path), 0);

	/* Stopped, the daemon looks only once the client is gone. */
	ck_assert_int_eq(kill(w.daemon, SIGSTOP), 0);
	gone_client(65534, 65534, 65533, "member detach 046d:c52b\n");
	ck_assert_int_eq(kill(w.daemon, SIGCONT), 0);
	ck_assert(log_wait("gone before we looked, and QEMU runs as its user",
	    NULL, 0));
	expect_log_part("connections of uid 65534 are closed at once: it may "
	    "do nothing");

	/* QEMU as root (this process, named by a pid file), seen when a
	 * live client comes; gone root clients are still served: a QEMU of
	 * root's could keep a child alive, root's client all the same. */
	snprintf(path, sizeof(path), "%s/vmR.pid", run_dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fprintf(f, "%ld\n", (long)getpid());
	ck_assert_int_eq(fclose(f), 0);
	peer_as(0, 0, NULL, NULL, "reply on\nlive detach 046d:c52b\n", out,
	    sizeof(out));
	ck_assert_str_eq(out, "ok live detach 046d:c52b\n");
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(kill(w.daemon, SIGSTOP), 0);
	gone_client(0, 0, 0, "root detach 046d:c52b\n");
	ck_assert_int_eq(kill(w.daemon, SIGCONT), 0);
	expect_log_part("[VMusb] root detached device 046d:c52b");
	expect_calls("live detach-device;root detach-device;");
}
END_TEST

/*
 * A socket from systemd that libvirt relabelled before the daemon started
 * (a domain without relabel='no' was the first to connect) has a running
 * QEMU's group: its members are no host clients, and the daemon says so.
 */
START_TEST(test_passed_socket_with_a_qemus_group_gives_it_no_clients)
{
	char run_dir[160], warn[LINE], line[LINE];
	pid_t qemu;

	if (!is_root() && test_skips("relabelled socket test", "needs root "
	    "to run peers as other users"))
		return;
	ck_assert_int_eq(chmod(scratch_dir(), 0711), 0);
	ck_assert_int_eq(chmod(w.dir, 0711), 0);
	snprintf(run_dir, sizeof(run_dir), "%s/qemu-run", w.dir);
	qemu = fake_qemu(run_dir, "vmQ");	/* gid 65534 */
	w.listen_fd = listening_socket();
	ck_assert_int_eq(lchown(w.sock, 65532, 65534), 0);
	ck_assert_int_eq(chmod(w.sock, 0666), 0);  /* the test's own peers */
	snprintf(warn, sizeof(warn), "[VMusb] our socket %s is ", w.sock);
	w.ready = warn;
	daemon_start("--qemu-run-dir", run_dir, NULL);
	ck_assert(log_wait("(from systemd); host clients: root, and nobody "
	    "else", line, sizeof(line)));
	gone_client(65533, 65533, 65534, "member detach 046d:c52b\n");
	expect_log_part("connections of uid 65533 are closed at once: it may "
	    "do nothing");
	ck_assert_int_eq(kill(qemu, SIGKILL), 0);
	ck_assert_int_eq(waitpid(qemu, NULL, 0), qemu);
	ck_assert_int_eq(daemon_stop(), 0);
	close(w.listen_fd);
}
END_TEST

#define GONE_CLIENTS	8

/*
 * Clients that write a line and leave at once are gone before the daemon
 * looks at them: on systemd's first activation, before it even runs (here
 * too: they queue on a socket passed to it). SO_PEERCRED still holds what
 * they were at connect(): root and members of the socket's group are
 * served, whether or not they still exist; another user is not.
 */
START_TEST(test_clients_gone_before_they_were_looked_at_are_judged_by_credentials)
{
	char want[LINE], line[LINE];
	int served = 0, member = 0, refused = 0;

	w.listen_fd = listening_socket();
	ck_assert_int_eq(chmod(w.sock, 0777), 0);	/* the test's own */
	for (int i = 0; i < GONE_CLIENTS; i++)
		gone_client(0, 0, 0, "win10 detach 046d:c52b\n");
	if (is_root()) {
		ck_assert_int_eq(chmod(scratch_dir(), 0711), 0);
		ck_assert_int_eq(chmod(w.dir, 0711), 0);
		gone_client(65534, 65534, 65533, "member detach 046d:c52b\n");
		gone_client(65534, 65534, 65534, "other detach 046d:c52b\n");
	} else
		(void)test_skips("gone clients of other users", "needs root");
	snprintf(want, sizeof(want), "[VMusb] listening on %s (from systemd)",
	    w.sock);
	w.ready = want;
	daemon_start("--socket-group", "65533", NULL);

	while (served < GONE_CLIENTS || (is_root() && (member < 1 ||
	    refused < 1))) {
		ck_assert_msg(log_wait("[VMusb] ", line, sizeof(line)),
		    "served %d of %d, %d member, %d refused", served,
		    GONE_CLIENTS, member, refused);
		if (log_peer(line, "[VMusb] win10 detached device 046d:c52b") > 0)
			served++;
		else if (log_peer(line, "[VMusb] member detached device "
		    "046d:c52b") > 0)
			member++;
		else if (strcmp(line, "[VMusb] connections of uid 65534 are "
		    "closed at once: it may do nothing") == 0)
			refused++;
		else
			ck_assert_msg(strstr(line, "device 046d:c52b") == NULL,
			    "unexpected: %s", line);
	}
	ck_assert_int_eq(daemon_stop(), 0);
	close(w.listen_fd);
}
END_TEST

START_TEST(test_wrong_listen_fds_is_refused)
{
	char out[LINE];
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)"LISTEN_PID=$$ "
	    "LISTEN_FDS=2 exec \"$0\" --socket \"$1\"", (char *)USBSERVER_BIN,
	    w.sock, NULL };

	ck_assert_int_eq(WEXITSTATUS(run(argv, NULL, out, sizeof(out))), 1);
	ck_assert_ptr_nonnull(strstr(out, "LISTEN_FDS=2: expected exactly one "
	    "socket"));
}
END_TEST

/* ------------------------------------------------------------------ */
/* Real programs: virsh's test driver, and syslog                      */

/* systemd's rating of contrib/UNIT's sandbox: its exposure, 0 to 10. */
static double
unit_exposure(const char *unit)
{
	static char out[65536];
	char path[PATH_MAX], want[128], level[16];
	char *argv[] = { (char *)"systemd-analyze", (char *)"security",
	    (char *)"--offline=yes", path, NULL };
	const char *at;
	double exposure;

	snprintf(path, sizeof(path), "%s/contrib/%s", SRC_DIR, unit);
	ck_assert_int_eq(run(argv, NULL, out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "Overall exposure level for %s: ", unit);
	ck_assert_msg((at = strstr(out, want)) != NULL, "%s", out);
	ck_assert_int_eq(sscanf(at + strlen(want), "%lf %15s", &exposure,
	    level), 2);
	fprintf(stderr, "unit: systemd-analyze security %s: %.1f %s\n", unit,
	    exposure, level);
	return exposure;
}

/* The unprivileged service no worse than 0.6 SAFE, its rating when the
 * install path was proven; the root fallback OK (up to 3.0); usbctl
 * watch's no worse than 0.6 SAFE. */
START_TEST(test_units_are_rated_safe_and_ok_by_systemd_analyze)
{
	if (access("/usr/bin/systemd-analyze", X_OK) == -1 &&
	    test_skips("unit test", "no systemd-analyze: apt-get install systemd"))
		return;
	ck_assert_double_le(unit_exposure("usbserver.service"), 0.6);
	ck_assert_double_le(unit_exposure("usbserver-root.service"), 3.0);
	ck_assert_double_le(unit_exposure("usbctl-watch.service"), 0.6);
}
END_TEST

/* A daemon that is not root would have virsh use qemu:///session, where
 * no guest lives: the units name the system's libvirt. */
START_TEST(test_units_name_the_systems_libvirt)
{
	static const char *const units[] = { "usbserver.service",
	    "usbserver-root.service" };
	char path[PATH_MAX], text[8192];

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		snprintf(path, sizeof(path), "%s/contrib/%s", SRC_DIR, units[i]);
		ck_assert_int_gt(slurp(path, text, sizeof(text)), 0);
		ck_assert_msg(strstr(text, "\nEnvironment=LIBVIRT_DEFAULT_URI="
		    "qemu:///system\n") != NULL, "%s", units[i]);
	}
}
END_TEST

/*
 * The service runs as a user that systemd-sysusers makes from the file
 * make install ships, a real member of group libvirt: Debian's polkit rule
 * for libvirt looks the group up in the user database, where a
 * DynamicUser= is in none. The socket unit's group is the host clients',
 * and no option of the service names it again.
 */
START_TEST(test_units_user_is_a_real_member_of_libvirt)
{
	char root[160], path[300], text[8192], out[4096], arg[200];
	char *argv[] = { (char *)"systemd-sysusers", arg, (char *)SRC_DIR
	    "/contrib/usbserver.sysusers", NULL };
	const char *at;
	unsigned long uid;

	if (access("/usr/bin/systemd-sysusers", X_OK) == -1 &&
	    test_skips("sysusers test", "no systemd-sysusers: apt-get install "
	    "systemd"))
		return;
	if (!is_root() && test_skips("sysusers test", "needs root"))
		return;
	snprintf(root, sizeof(root), "%s/root", w.dir);
	snprintf(path, sizeof(path), "%s/etc", root);
	ck_assert_int_eq(mkdir(root, 0755), 0);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/etc/passwd", root);
	write_file(path, "root:x:0:0:root:/root:/bin/sh\n", 0644);
	snprintf(path, sizeof(path), "%s/etc/group", root);
	write_file(path, "root:x:0:\nlibvirt:x:107:\n", 0644);
	snprintf(arg, sizeof(arg), "--root=%s", root);
	ck_assert_msg(run(argv, NULL, out, sizeof(out)) == 0, "%s", out);

	ck_assert_int_gt(slurp(path, text, sizeof(text)), 0);
	ck_assert_msg(strstr(text, "\nlibvirt:x:107:usbserver\n") != NULL,
	    "%s", text);
	snprintf(path, sizeof(path), "%s/etc/passwd", root);
	ck_assert_int_gt(slurp(path, text, sizeof(text)), 0);
	ck_assert_msg((at = strstr(text, "\nusbserver:x:")) != NULL, "%s", text);
	ck_assert_int_eq(sscanf(at + 13, "%lu", &uid), 1);
	ck_assert_uint_gt(uid, 0);
	ck_assert_uint_lt(uid, 1000);		/* a system user */

	snprintf(path, sizeof(path), "%s/contrib/usbserver.service", SRC_DIR);
	ck_assert_int_gt(slurp(path, text, sizeof(text)), 0);
	ck_assert_ptr_nonnull(strstr(text, "\nUser=usbserver\n"));
	ck_assert_ptr_null(strstr(text, "\nDynamicUser="));
	ck_assert_ptr_nonnull(strstr(text, "\nExecStart=/usr/local/bin/usbserver\n"));
	snprintf(path, sizeof(path), "%s/contrib/usbserver.socket", SRC_DIR);
	ck_assert_int_gt(slurp(path, text, sizeof(text)), 0);
	ck_assert_ptr_nonnull(strstr(text, "\nSocketGroup=libvirt\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nSocketMode=0660\n"));
}
END_TEST

/* make install into a DESTDIR: the tree, units naming the installed
 * binary; make uninstall takes it all away again. */
START_TEST(test_make_install_and_uninstall)
{
	char root[160], dest[200], out[4096], path[300], unit[4096], files[4096];
	char *argv[] = { (char *)"env", (char *)"-u", (char *)"MAKEFLAGS",
	    (char *)"-u", (char *)"MFLAGS", (char *)"-u", (char *)"MAKELEVEL",
	    (char *)"make", (char *)"-s", (char *)"-C", (char *)SRC_DIR,
	    (char *)"O=" BUILD_DIR, dest, (char *)"PREFIX=/opt/usbs",
	    (char *)"SYSTEMDUNITDIR=/lib/systemd/system", (char *)"install",
	    NULL };
	static const char *const want[] = { "/opt/usbs/bin/usbserver",
	    "/opt/usbs/bin/usbctl", "/lib/systemd/system/usbserver.service",
	    "/lib/systemd/system/usbserver.socket",
	    "/opt/usbs/share/doc/usbserver/usbserver-root.service",
	    "/opt/usbs/share/doc/usbserver/detach.ps1",
	    "/opt/usbs/share/doc/usbserver/README.md",
	    "/opt/usbs/share/man/man8/usbserver.8",
	    "/opt/usbs/share/man/man1/usbctl.1",
	    "/opt/usbs/share/bash-completion/completions/usbctl",
	    "/etc/sysusers.d/usbserver.conf",
	    "/lib/systemd/system/usbctl-watch.service",
	    "/opt/usbs/libexec/usbserver/ddc-input", NULL };

	snprintf(root, sizeof(root), "%s/root", w.dir);
	snprintf(dest, sizeof(dest), "DESTDIR=%s", root);
	ck_assert_msg(run(argv, NULL, out, sizeof(out)) == 0, "%s", out);
	for (int i = 0; want[i] != NULL; i++) {
		snprintf(path, sizeof(path), "%s%s", root, want[i]);
		ck_assert_msg(access(path, F_OK) == 0, "not installed: %s",
		    want[i]);
	}
	snprintf(path, sizeof(path), "%s/opt/usbs/bin/usbserver", root);
	ck_assert_int_eq(access(path, X_OK), 0);
	snprintf(path, sizeof(path), "%s/lib/systemd/system/usbserver.service",
	    root);
	ck_assert_int_gt(slurp(path, unit, sizeof(unit)), 0);
	ck_assert_ptr_nonnull(strstr(unit, "\nExecStart=/opt/usbs/bin/usbserver\n"));
	snprintf(path, sizeof(path), "%s/opt/usbs/share/doc/usbserver/"
	    "usbserver-root.service", root);
	ck_assert_int_gt(slurp(path, unit, sizeof(unit)), 0);
	ck_assert_ptr_nonnull(strstr(unit, "\nExecStart=/opt/usbs/bin/usbserver "));
	snprintf(path, sizeof(path), "%s/lib/systemd/system/usbctl-watch.service",
	    root);
	ck_assert_int_gt(slurp(path, unit, sizeof(unit)), 0);
	ck_assert_ptr_nonnull(strstr(unit, "\nExecStart=/opt/usbs/bin/usbctl watch\n"));
	snprintf(path, sizeof(path), "%s/opt/usbs/libexec/usbserver/ddc-input",
	    root);
	ck_assert_int_eq(access(path, X_OK), 0);

	argv[15] = (char *)"uninstall";
	ck_assert_msg(run(argv, NULL, out, sizeof(out)) == 0, "%s", out);
	snprintf(path, sizeof(path), "%s/opt/usbs/bin", root);
	dir_list(path, files, sizeof(files));
	ck_assert_str_eq(files, "");
	snprintf(path, sizeof(path), "%s/lib/systemd/system", root);
	dir_list(path, files, sizeof(files));
	ck_assert_str_eq(files, "");
	snprintf(path, sizeof(path), "%s/opt/usbs/share/doc/usbserver", root);
	ck_assert_int_eq(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/opt/usbs/libexec/usbserver", root);
	ck_assert_int_eq(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/opt/usbs/share/man/man8", root);
	dir_list(path, files, sizeof(files));
	ck_assert_str_eq(files, "");
	snprintf(path, sizeof(path), "%s/etc/sysusers.d", root);
	dir_list(path, files, sizeof(files));
	ck_assert_str_eq(files, "");
}
END_TEST

/* The man pages: clean under mandoc's linter (warnings and worse; its
 * style notes depend on which other pages this machine has), and every
 * long option that --help shows is documented. */
static void
expect_man_page(const char *page, const char *program)
{
	static char help[8192], text[65536];
	char path[PATH_MAX], out[4096], opt[64], want[80];
	char *lint[] = { (char *)"mandoc", (char *)"-Tlint", (char *)"-W",
	    (char *)"warning", path, NULL };
	char *argv[] = { (char *)program, (char *)"--help", NULL };
	const char *at;

	snprintf(path, sizeof(path), "%s/%s", SRC_DIR, page);
	ck_assert_msg(run(lint, NULL, out, sizeof(out)) == 0, "%s", out);
	ck_assert_str_eq(out, "");
	ck_assert_int_gt(slurp(path, text, sizeof(text)), 0);
	ck_assert_int_eq(run(argv, NULL, help, sizeof(help)), 0);
	for (at = help; (at = strstr(at, " --")) != NULL; at += 3) {
		if (sscanf(at + 3, "%63[a-z-]", opt) != 1)
			continue;
		snprintf(want, sizeof(want), "Fl Fl %s", opt);
		ck_assert_msg(strstr(text, want) != NULL, "%s does not document "
		    "--%s", page, opt);
	}
}

START_TEST(test_man_pages_are_lint_clean_and_document_every_option)
{
	if (access("/usr/bin/mandoc", X_OK) == -1 &&
	    test_skips("man page test", "no mandoc: apt-get install mandoc"))
		return;
	expect_man_page("usbserver.8", USBSERVER_BIN);
	expect_man_page("usbctl.1", USBCTL_BIN);
}
END_TEST

/* Names that virsh reads as another domain's number or UUID, shown with
 * the real virsh and libvirt's test driver, whose one domain "test" is
 * number 1: each of them reaches it, and none passes as a name here. */
START_TEST(test_names_virsh_reads_as_a_number_or_uuid_are_refused)
{
	static const char *const forms[] = { "1", "+1", "+01",
	    "6695eb01-f6a4-8304-79aa-97f2502e193f",
	    "6695eb01f6a48304-79aa-97f2-502e-193f",
	    "6695eb01f6a4-830479aa-97f2502e-19-3f" };
	char out[LINE], line[LINE];
	struct request req;
	const char *why;

	if (access("/usr/bin/virsh", X_OK) == -1 &&
	    test_skips("virsh name test", "no virsh: apt-get install "
	    "libvirt-clients"))
		return;
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		char *argv[] = { (char *)"virsh", (char *)"-c",
		    (char *)"test:///default", (char *)"domname",
		    (char *)forms[i], NULL };

		ck_assert_msg(run(argv, NULL, out, sizeof(out)) == 0 &&
		    strncmp(out, "test\n", 5) == 0, "virsh domname %s: %s",
		    forms[i], out);
		snprintf(line, sizeof(line), "%s detach 046d:c52b", forms[i]);
		ck_assert_msg(parse_line(line, strlen(line), &req, &why) ==
		    PARSE_ERROR, "'%s' passed as a name", forms[i]);
	}
}
END_TEST

START_TEST(test_real_virsh_error_is_replied)
{
	struct client c;

	/* libvirt's test driver has a running domain "test" and refuses
	 * attach-device with its own error, after virsh parsed our file. */
	daemon_start("--virsh", "/usr/bin/virsh", "--connect", "test:///default",
	    NULL);
	client_open(&c);
	client_send(&c, "reply on\ntest attach 046d:c52b\nnosuch detach 046d:c52b\n");
	expect_reply(&c, "error test attach 046d:c52b: this function is not "
	    "supported by the connection driver: virDomainAttachDevice");
	expect_reply(&c, "error nosuch detach 046d:c52b: failed to get domain "
	    "'nosuch'");
	expect_log("[VMusb] test attaching device 046d:c52b failed: this "
	    "function is not supported by the connection driver: "
	    "virDomainAttachDevice");
}
END_TEST

/*
 * syslog: the daemon without --debug, in a mount namespace of its own
 * where /dev/log is a datagram socket of this test. Needs root.
 */
START_TEST(test_syslog_messages_have_the_guides_format)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dev[80], path[100], msg[LINE], want[LINE];
	struct client c;
	pid_t pid;
	int fd;

	if (!is_root() && test_skips("syslog test", "needs root for a mount "
	    "namespace"))
		return;
	snprintf(dev, sizeof(dev), "%s/dev", w.dir);
	ck_assert_int_eq(mkdir(dev, 0755), 0);
	snprintf(path, sizeof(path), "%s/null", dev);
	ck_assert_int_eq(close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0666)), 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/log", dev);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);

	if ((pid = fork()) == 0) {
		char *argv[] = { (char *)USBSERVER_BIN, (char *)"--socket",
		    w.sock, (char *)"--xml-dir", w.xmldir, (char *)"--virsh",
		    w.virsh, (char *)"--config", w.config, (char *)"--ledger",
		    w.ledger, NULL };
		if (unshare(CLONE_NEWNS) == -1 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1 ||
		    mount("/dev/null", path, NULL, MS_BIND, NULL) == -1 ||
		    mount(dev, "/dev", NULL, MS_BIND | MS_REC, NULL) == -1) {
			perror("namespace");
			_exit(99);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	ck_assert_int_gt(pid, 0);
	w.daemon = pid;

	/* Datagrams keep their bounds: one message a read. */
	ck_assert_int_gt(recv(fd, msg, sizeof(msg) - 1, 0), 0);
	snprintf(want, sizeof(want), "usbserver[%d]: [VMusb] listening on %s",
	    (int)pid, w.sock);
	ck_assert_ptr_nonnull(strstr(msg, want));
	ck_assert_int_eq(strncmp(msg, "<30>", 4), 0);	/* daemon.info */
	memset(msg, 0, sizeof(msg));
	ck_assert_int_gt(recv(fd, msg, sizeof(msg) - 1, 0), 0);
	ck_assert_int_eq(strncmp(msg, "<28>", 4), 0);	/* daemon.warning */
	ck_assert_ptr_nonnull(strstr(msg, "[VMusb] no allow list: every host "
	    "USB device may be moved"));

	/* Nothing of --debug's connection lines reaches syslog. */
	client_open(&c);
	client_send(&c, "win10 attach 046d:c52b\nfailvm detach 046d:c52b\n");
	memset(msg, 0, sizeof(msg));
	ck_assert_int_gt(recv(fd, msg, sizeof(msg) - 1, 0), 0);
	snprintf(want, sizeof(want), "usbserver[%d]: [VMusb] win10 attached "
	    "device 046d:c52b (peer pid %ld uid %lu)", (int)pid, (long)getpid(),
	    (unsigned long)geteuid());
	ck_assert_int_eq(strncmp(msg, "<30>", 4), 0);
	ck_assert_str_eq(strstr(msg, "usbserver["), want);
	/* Its first device: the domain switched. */
	memset(msg, 0, sizeof(msg));
	ck_assert_int_gt(recv(fd, msg, sizeof(msg) - 1, 0), 0);
	snprintf(want, sizeof(want), "usbserver[%d]: [VMusb] win10 switched to "
	    "the guest (client)", (int)pid);
	ck_assert_int_eq(strncmp(msg, "<30>", 4), 0);
	ck_assert_str_eq(strstr(msg, "usbserver["), want);
	memset(msg, 0, sizeof(msg));
	ck_assert_int_gt(recv(fd, msg, sizeof(msg) - 1, 0), 0);
	snprintf(want, sizeof(want), "usbserver[%d]: [VMusb] failvm detaching "
	    "device 046d:c52b failed: Requested operation is not valid: fake "
	    "refusal (peer pid %ld uid %lu)", (int)pid, (long)getpid(),
	    (unsigned long)geteuid());
	ck_assert_int_eq(strncmp(msg, "<28>", 4), 0);	/* daemon.warning */
	ck_assert_str_eq(strstr(msg, "usbserver["), want);
	close(fd);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Giving back: the ledger and libvirt's events                        */

/* Writes line (with its '\n') to the fake virsh's event stream. */
static void
libvirt_says(const char *line)
{
	ck_assert_int_eq(write(w.libvirt, line, strlen(line)),
	    (ssize_t)strlen(line));
}

/* The ledger's file, less its header and the times: "VM DEVICE AT BUS
 * DEV;" for each entry, in the file's order. */
static void
ledger_text(char *out, size_t size)
{
	char buf[8192], *line, *save = NULL;
	size_t len = 0;

	out[0] = '\0';
	if (slurp(w.ledger, buf, sizeof(buf)) < 0)
		return;
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *last = strrchr(line, ' ');

		if (line[0] == '#' || last == NULL)
			continue;
		*last = '\0';
		len += (size_t)snprintf(out + len, size - len, "%s;", line);
		ck_assert_uint_lt(len, size);
	}
}

/* The ledger's file is want (as ledger_text gives it). */
static void
expect_ledger(const char *want)
{
	char text[LINE];

	ledger_text(text, sizeof(text));
	ck_assert_str_eq(text, want);
}

/* Each of the log lines, in whatever order (they come from threads of
 * their own), each once. */
static void
expect_logs_in_any_order(const char *const *want)
{
	char line[LINE];
	bool seen[16] = { false };
	size_t n = 0, left;

	while (want[n] != NULL)
		n++;
	ck_assert_uint_le(n, 16);
	for (left = n; left > 0; ) {
		ck_assert_msg(log_wait("[VMusb] ", line, sizeof(line)),
		    "%zu log lines never came, such as '%s'", left, want[0]);
		for (size_t i = 0; i < n; i++)
			if (!seen[i] && log_peer(line, want[i]) >= 0) {
				seen[i] = true;
				left--;
				break;
			}
	}
}

/* Attaches each of the devices to vm, as a host client. */
static void
attach_all(const char *vm, const char *const *devices)
{
	char line[LINE], want[LINE];
	struct client c;

	client_open(&c);
	client_send(&c, "reply on\n");
	for (; *devices != NULL; devices++) {
		snprintf(line, sizeof(line), "%s attach %s\n", vm, *devices);
		client_send(&c, line);
		snprintf(want, sizeof(want), "ok %s attach %s", vm, *devices);
		expect_reply(&c, want);
	}
	client_close(&c);
}

/*
 * A domain that crashes gets back from us every device we attached to
 * it, each detached at the address where it sat, and logged; another
 * domain's stay. The ledger, on disk, says what is left.
 */
START_TEST(test_a_crash_gives_back_every_device_of_that_domain)
{
	static const char *const two[] = { "046d:c52b", "1050:0407@1-3", NULL };
	static const char *const one[] = { "046d:c52b", NULL };
	char sys[300], xml[LINE], id[32];

	snprintf(sys, sizeof(sys), "%s/sys", w.dir);
	sysfs_device(sys, "1-2", "046d", "c52b", 1, 5);
	sysfs_device(sys, "1-3", "1050", "0407", 1, 7);
	daemon_start("--sysfs", sys, NULL);
	attach_all("vmA", two);
	attach_all("vmB", one);
	expect_calls("vmA attach-device;vmA attach-device;vmB attach-device;");
	expect_ledger("vmA 046d:c52b 1-2 1 5;vmA 1050:0407@1-3 1-3 1 "
	    "7;vmB 046d:c52b 1-2 1 5;");

	libvirt_says("event 'lifecycle' for domain 'vmA': Suspended Paused\n"
	    "event 'lifecycle' for domain 'vmA': Crashed Panicked\n");
	expect_log("[VMusb] vmA paused: gave back device 046d:c52b");
	expect_log("[VMusb] vmA paused: gave back device 1050:0407@1-3");
	/* Named by its ids, it goes back at the address the ledger saw. */
	event_wait("end", "vmA", id, sizeof(id));
	ck_assert_int_gt(call_file(id, "xml", xml, sizeof(xml)), 0);
	ck_assert_ptr_nonnull(strstr(xml, "<address bus='1' device='5'/>"));
	expect_ledger("vmB 046d:c52b 1-2 1 5;");
	/* The crash right after the pause finds nothing more to give. */
	ck_assert_int_eq(daemon_stop(), 0);
	expect_calls("vmA detach-device;");
	ck_assert(!log_wait("crashed: gave back", NULL, 0));
}
END_TEST

/* Suspended to memory: given back. Stopped: QEMU let the devices go, so
 * they are struck out with no virsh run. Lines that are no lifecycle
 * event of a domain we know, or no text at all, change nothing. */
START_TEST(test_sleep_gives_back_and_a_stop_forgets)
{
	static const char *const one[] = { "046d:c52b", NULL };

	daemon_start(NULL);
	attach_all("vmA", one);
	attach_all("vmB", one);
	libvirt_says("event 'reboot' for domain 'vmA'\n"
	    "event 'lifecycle' for domain 'vmA': Resumed Unpaused\n"
	    "event 'lifecycle' for domain 'vmA': Started Booted\n"
	    "event 'lifecycle' for domain 'vm A': Crashed Panicked\n"
	    "event 'lifecycle' for domain '1': Crashed Panicked\n"
	    "event 'lifecycle' for domain 'vmA\x01': Crashed Panicked\n"
	    "event 'lifecycle' for domain 'vmA' Crashed Panicked\n"
	    "event 'lifecycle' for domain 'vmA': Crashed\x7f Panicked\n"
	    "\n\n\x80\xff garbage\n"
	    "event 'lifecycle' for domain 'vmA': PMSuspended Memory\n");
	expect_log("[VMusb] vmA suspended: gave back device 046d:c52b");
	libvirt_says("event 'lifecycle' for domain 'vmB': Stopped Destroyed\n");
	expect_log("[VMusb] vmB stopped: device 046d:c52b is the host's again");
	expect_ledger("");
	ck_assert_int_eq(daemon_stop(), 0);
	expect_calls("vmA attach-device;vmB attach-device;vmA detach-device;");
}
END_TEST

/* A detach, by the client or the guest, strikes the entry out whatever
 * the form it names the device by; a failed attach writes nothing. */
START_TEST(test_the_ledger_follows_attach_and_detach)
{
	static const char *const three[] = { "046d:c52b", "1050:0407@1-3",
	    "0781:5581", NULL };
	char sys[300];
	struct client c;

	snprintf(sys, sizeof(sys), "%s/sys", w.dir);
	sysfs_device(sys, "1-2", "046d", "c52b", 1, 5);
	sysfs_device(sys, "1-3", "1050", "0407", 1, 7);
	daemon_start("--sysfs", sys, NULL);
	attach_all("vmA", three);
	/* 0781:5581 is at no port of ours: where it sat is not known. */
	expect_ledger("vmA 046d:c52b 1-2 1 5;vmA 1050:0407@1-3 1-3 1 "
	    "7;vmA 0781:5581 - 0 0;");
	client_open(&c);
	client_send(&c, "reply on\nvmA detach 046d:c52b@1-2\n"
	    "failvm attach 046d:c52b\nvmA detach 1050:0407\n");
	expect_reply(&c, "ok vmA detach 046d:c52b@1-2");
	expect_reply(&c, "error failvm attach 046d:c52b: Requested operation is "
	    "not valid: fake refusal");
	expect_reply(&c, "ok vmA detach 1050:0407");
	client_close(&c);
	expect_ledger("vmA 0781:5581 - 0 0;");
}
END_TEST

/* A restart forgets nothing: the ledger is read back, and a crash then
 * gives back what the daemon before attached. */
START_TEST(test_the_ledger_outlives_a_restart)
{
	static const char *const one[] = { "046d:c52b", NULL };
	struct stat st;

	daemon_start(NULL);
	attach_all("vmA", one);
	ck_assert_int_eq(daemon_stop(), 0);
	ck_assert_int_eq(stat(w.ledger, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_uint_eq(st.st_uid, geteuid());
	w.ready = "1 device attached before we started";
	daemon_start(NULL);
	libvirt_says("event 'lifecycle' for domain 'vmA': Crashed Panicked\n");
	expect_log("[VMusb] vmA crashed: gave back device 046d:c52b");
	ck_assert_int_eq(daemon_stop(), 0);
	expect_calls("vmA attach-device;vmA detach-device;");
}
END_TEST

/*
 * The ledger decides what we detach: lines that are not entries (a file
 * cut short, hostile text) are skipped and counted, and a file others
 * may write is not read at all.
 */
START_TEST(test_a_torn_or_hostile_ledger_is_not_believed)
{
	char dir[200], line[LINE];

	snprintf(dir, sizeof(dir), "%s/run", w.dir);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	write_file(w.ledger, "# usbserver ledger 1\n"
	    "vmA 046d:c52b 1-2 1 5 1700000000\n"
	    "vmA 046d:c52b 1-2 1 5\n"
	    "../x 046d:c52b - 0 0 1\n"
	    "vmB 046d:c52b - 1 0 1\n"
	    "vmB 046d:c52b 1-2 1 5 01\n"
	    "vmB 046d:c52b 1-2 1 256 1\n"
	    "vmB 046d:c52b;rm - 0 0 1\n"
	    "vmB\t046d:c52b - 0 0 1\x1b\n"
	    "vmC 1050:0407 - 0 0 1700000000", 0600);
	snprintf(line, sizeof(line), "%s/state.vmA", w.dir);
	write_file(line, "046d c52b 1 5\n", 0600);
	snprintf(line, sizeof(line), "[VMusb] ledger %s: 8 lines skipped, the "
	    "first line 3: not an entry, or too many", w.ledger);
	w.ready = line;
	daemon_start(NULL);
	expect_log_part("1 device attached before we started");
	libvirt_says("event 'lifecycle' for domain 'vmB': Crashed Panicked\n"
	    "event 'lifecycle' for domain 'vmC': Crashed Panicked\n"
	    "event 'lifecycle' for domain 'vmA': Crashed Panicked\n");
	expect_log("[VMusb] vmA crashed: gave back device 046d:c52b");
	ck_assert_int_eq(daemon_stop(), 0);
	expect_calls("vmA detach-device;");

	ck_assert_int_eq(chmod(w.ledger, 0620), 0);
	w.ready = "is not ours alone: ignored";
	daemon_start(NULL);
	ck_assert_int_eq(daemon_stop(), 0);
}
END_TEST

/*
 * What was missed is made up for: at start, each domain in the ledger
 * is asked for its state; one paused gets its devices back, one gone or
 * shut off has them struck out, and so has one whose XML no longer holds
 * them (it was restarted, or they were detached by hand).
 */
START_TEST(test_at_start_the_ledger_is_checked_against_libvirt)
{
	static const char *const made_up[] = {
		"[VMusb] vmGone is gone: device 046d:c52b is the host's again",
		"[VMusb] vmOff stopped: device 1050:0407 is the host's again",
		"[VMusb] vmRun holds it no more: device 046d:c52b is the host's "
		    "again",
		"[VMusb] vmRun holds it no more: device 1050:0407 is the host's "
		    "again",
		"[VMusb] vmA paused: gave back device 046d:c52b",
		NULL,
	};
	char dir[200], path[300];

	snprintf(dir, sizeof(dir), "%s/run", w.dir);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	write_file(w.ledger, "# usbserver ledger 1\n"
	    "vmA 046d:c52b 1-2 1 5 1700000000\n"
	    "vmGone 046d:c52b - 0 0 1700000000\n"
	    "vmOff 1050:0407 - 0 0 1700000000\n"
	    "vmRun 0781:5581 - 0 0 1700000000\n"
	    "vmRun 046d:c52b 1-2 1 5 1700000000\n"
	    "vmRun 1050:0407 1-3 1 7 1700000000\n", 0600);
	/* vmRun's XML has one of its three; 046d:c52b at another address */
	snprintf(path, sizeof(path), "%s/state.vmRun", w.dir);
	write_file(path, "0781 5581 1 9\n046d c52b 1 6\n", 0600);
	snprintf(path, sizeof(path), "%s/state.vmA", w.dir);
	write_file(path, "046d c52b 1 5\n", 0600);
	snprintf(path, sizeof(path), "%s/domstate.vmA", w.dir);
	write_file(path, "paused\n\n", 0600);
	snprintf(path, sizeof(path), "%s/domstate.vmOff", w.dir);
	write_file(path, "shut off\n", 0600);
	snprintf(path, sizeof(path), "%s/gone.vmGone", w.dir);
	write_file(path, "", 0600);
	daemon_start(NULL);
	expect_log("[VMusb] watching libvirt's events");
	expect_logs_in_any_order(made_up);
	ck_assert_int_eq(daemon_stop(), 0);
	expect_ledger("vmRun 0781:5581 - 0 0;");
	expect_calls("vmA detach-device;");
}
END_TEST

/*
 * The event stream ends (libvirtd stopped): that is logged, virsh event
 * is started again with a backoff while it fails at once, and when it is
 * back, what happened meanwhile is made up for: a domain that crashed
 * while we could not hear it gets its devices back.
 */
START_TEST(test_events_lost_and_back_are_made_up_for)
{
	static const char *const one[] = { "046d:c52b", NULL };
	char down[300], path[300], args[LINE];

	snprintf(down, sizeof(down), "%s/libvirtd-down", w.dir);
	daemon_start("--connect", "test:///x", NULL);
	expect_log("[VMusb] watching libvirt's events");
	snprintf(path, sizeof(path), "%s/event.args", w.dir);
	ck_assert_int_gt(slurp(path, args, sizeof(args)), 0);
	ck_assert_str_eq(args, "-c\ntest:///x\nevent\n--event\nlifecycle\n"
	    "--loop\n");
	attach_all("vmA", one);

	write_file(down, "", 0600);
	ck_assert_int_eq(close(w.libvirt), 0);
	w.libvirt = -1;
	expect_log("[VMusb] lost libvirt's events: virsh event exited with "
	    "status 0; trying again, every 5 s at most");
	snprintf(path, sizeof(path), "%s/domstate.vmA", w.dir);
	write_file(path, "crashed\n", 0600);
	/* Its tries fail, unlogged, until libvirtd is back. */
	ck_assert_int_eq(unlink(path), 0);
	write_file(path, "crashed\n", 0600);
	snprintf(path, sizeof(path), "%s/libvirt-events", w.dir);
	w.libvirt = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ne(w.libvirt, -1);
	ck_assert_int_eq(unlink(down), 0);
	expect_log("[VMusb] back to watching libvirt's events");
	expect_log("[VMusb] vmA crashed: gave back device 046d:c52b");
	ck_assert_int_eq(daemon_stop(), 0);
	expect_calls("vmA attach-device;vmA detach-device;");
}
END_TEST

/* virsh's words on why it cannot watch reach the log escaped, as every
 * other reason does. */
START_TEST(test_why_libvirts_events_are_lost_is_logged_escaped)
{
	char down[300];

	snprintf(down, sizeof(down), "%s/libvirtd-down", w.dir);
	write_file(down, "no\x1b[2Jlib\rvirtd", 0600);
	/* daemon_start waits for this very line */
	w.ready = "[VMusb] cannot watch libvirt's events: no\\x1b[2Jlib\\x0dvirtd; "
	    "trying again, every 5 s at most";
	daemon_start(NULL);
	ck_assert_int_eq(daemon_stop(), 0);
}
END_TEST

/*
 * The host's escape: "VM release" gives back every device the ledger
 * has for that domain, "release" those of every domain, each logged and
 * struck out, and the answer says how many. A guest may not: it has
 * "detach" for its own devices.
 */
START_TEST(test_release_gives_back_a_domains_devices_or_all)
{
	static const char *const two[] = { "046d:c52b", "1050:0407", NULL };
	static const char *const one[] = { "046d:c52b", NULL };
	char out[LINE];
	struct client c;

	daemon_start(NULL);
	attach_all("vmA", two);
	attach_all("vmB", one);
	client_open(&c);
	client_send(&c, "reply on\nvmA release\n");
	expect_reply(&c, "ok vmA release");
	expect_log("[VMusb] vmA released: gave back device 046d:c52b");
	expect_log("[VMusb] vmA released: gave back device 1050:0407");
	expect_log_part("[VMusb] release of vmA: gave back 2 devices (peer pid");
	expect_ledger("vmB 046d:c52b - 0 0;");

	/* The guest of vmB may not, neither its own nor all. */
	guest_as(0, 0, "vmB", "reply on\nvmB release\nrelease\n", out,
	    sizeof(out));
	ck_assert_str_eq(out, "error vmB release: not allowed\n"
	    "error release: not allowed\n");
	expect_log_part("[VMusb] vmB release denied: a guest may not release");

	client_send(&c, "release\n");
	expect_reply(&c, "ok release");
	expect_log("[VMusb] vmB released: gave back device 046d:c52b");
	expect_log_part("[VMusb] release of every domain: gave back 1 device "
	    "(peer pid");
	client_send(&c, "vmA release\n");
	expect_reply(&c, "ok vmA release");
	expect_log_part("[VMusb] release of vmA: gave back 0 devices");
	client_close(&c);
	expect_ledger("");
	ck_assert_int_eq(daemon_stop(), 0);
	expect_calls("vmA attach-device;vmA attach-device;vmB attach-device;"
	    "vmA detach-device;vmA detach-device;vmB detach-device;");
}
END_TEST

/*
 * A guest that takes a lease and then says nothing (it hung) gets its
 * devices given back when the lease lapses, and that is logged. A guest
 * may take a lease for its own domain only, of 0 to 3600 s.
 */
START_TEST(test_a_lapsed_lease_gives_back_the_devices)
{
	static const char *const one[] = { "046d:c52b", NULL };
	char out[LINE];

	daemon_start(NULL);
	attach_all("vmA", one);
	attach_all("vmB", one);
	guest_as(0, 0, "vmA", "reply on\nvmB alive 1\nvmA alive 3601\n"
	    "vmA alive 1\n", out, sizeof(out));
	ck_assert_str_eq(out, "error vmB alive 1: not allowed\n"
	    "error: invalid lease (expected seconds, 0 to 3600)\n"
	    "ok vmA alive 1\n");
	expect_log_part("[VMusb] lease of vmA: 1 s: its devices are given back "
	    "if its guest says nothing for that long (peer pid");
	expect_log("[VMusb] the guest of vmA said nothing for 1 s: its lease "
	    "lapsed");
	expect_log("[VMusb] vmA lease lapsed: gave back device 046d:c52b");
	expect_ledger("vmB 046d:c52b - 0 0;");
	ck_assert_int_eq(daemon_stop(), 0);
	expect_calls("vmA attach-device;vmB attach-device;vmA detach-device;");
}
END_TEST

/*
 * "status" tells a host client the ledger and the leases, a line each,
 * then "ok status"; "alive 0" ends a lease, and a domain's stop too. A
 * guest may not ask: the ledger names the host's ports and the other
 * domains.
 */
START_TEST(test_status_tells_the_ledger_and_the_leases)
{
	static const char *const one[] = { "046d:c52b", NULL };
	char line[LINE], vm[MAX_VM_NAME + 1];
	struct ledger_entry e;
	unsigned seconds, left;
	struct client c;

	daemon_start(NULL);
	attach_all("vmA", one);
	client_open(&c);
	client_send(&c, "reply on\nvmA alive 600\nvmB alive 3600\nstatus\n");
	expect_reply(&c, "ok vmA alive 600");
	expect_reply(&c, "ok vmB alive 3600");
	client_reply(&c, line, sizeof(line));
	ck_assert_msg(strncmp(line, "ledger ", 7) == 0 &&
	    ledger_parse(line + 7, strlen(line + 7), &e), "%s", line);
	ck_assert_str_eq(e.vm, "vmA");
	ck_assert_uint_eq(e.device.vendor, 0x046d);
	client_reply(&c, line, sizeof(line));
	ck_assert_msg(lease_parse(line + 6, strlen(line + 6), vm, &seconds,
	    &left), "%s", line);
	ck_assert_str_eq(vm, "vmA");
	ck_assert_uint_eq(seconds, 600);
	ck_assert_uint_ge(left, 590);
	client_reply(&c, line, sizeof(line));
	ck_assert_str_eq(line, "lease vmB 3600 3600");
	expect_reply(&c, "ok status");

	client_send(&c, "vmA alive 0\n");
	expect_reply(&c, "ok vmA alive 0");
	expect_log_part("[VMusb] lease of vmA ended (peer pid");
	libvirt_says("event 'lifecycle' for domain 'vmB': Stopped Destroyed\n");
	libvirt_says("event 'lifecycle' for domain 'vmA': Stopped Destroyed\n");
	expect_log("[VMusb] vmA stopped: device 046d:c52b is the host's again");
	expect_host_only(&c, "status");
}
END_TEST

/*
 * A device replugged while attached has another device number on the
 * host, and libvirt detaches only by the address it holds. A detach,
 * by its port or by its ids, goes where the ledger saw the device; one
 * the ledger does not know of is looked up in the domain's XML once
 * libvirt refuses. A device gone from the port named is never detached
 * by its ids alone.
 */
START_TEST(test_a_replugged_device_is_detached_where_the_domain_holds_it)
{
	char sys[300], path[300], text[LINE];
	struct client c;

	snprintf(sys, sizeof(sys), "%s/sys", w.dir);
	sysfs_device(sys, "1-2", "046d", "c52b", 1, 5);
	daemon_start("--sysfs", sys, NULL);
	client_open(&c);
	client_send(&c, "reply on\nkept1 attach 046d:c52b@1-2\n"
	    "kept2 attach 046d:c52b@1-2\n");
	expect_reply(&c, "ok kept1 attach 046d:c52b@1-2");
	expect_reply(&c, "ok kept2 attach 046d:c52b@1-2");
	/* replugged: device 9 now */
	sysfs_device(sys, "1-2", "046d", "c52b", 1, 9);
	client_send(&c, "kept1 detach 046d:c52b@1-2\nkept2 detach 046d:c52b\n");
	expect_reply(&c, "ok kept1 detach 046d:c52b@1-2");
	expect_reply(&c, "ok kept2 detach 046d:c52b");
	expect_ledger("");

	/* attached by someone else, at device 5; replugged since */
	snprintf(path, sizeof(path), "%s/state.kept3", w.dir);
	write_file(path, "046d c52b 1 5\n0627 0001 1 6\n", 0600);
	client_send(&c, "kept3 detach 046d:c52b@1-2\n");
	expect_reply(&c, "ok kept3 detach 046d:c52b@1-2");
	ck_assert_int_gt(slurp(path, text, sizeof(text)), 0);
	ck_assert_str_eq(text, "0627 0001 1 6\n");
	/* gone from its port, and no domain's hostdev alone has its ids */
	write_file(path, "046d c52b 1 5\n046d c52b 1 7\n", 0600);
	sysfs_device(sys, "1-2", "0627", "0001", 1, 9);
	client_send(&c, "kept3 detach 046d:c52b@1-2\n");
	expect_reply(&c, "error kept3 detach 046d:c52b@1-2: no 046d:c52b at "
	    "port 1-2");
	client_close(&c);
	ck_assert_int_gt(slurp(path, text, sizeof(text)), 0);
	ck_assert_str_eq(text, "046d c52b 1 5\n046d c52b 1 7\n");
}
END_TEST

/* Starts the daemon with the sysfs tree sys, and --uevents on the
 * socket uevent_send() writes to. */
static void
daemon_follows(const char *sys)
{
	char uevents[300];

	snprintf(uevents, sizeof(uevents), "%s/uevents", w.dir);
	daemon_start("--sysfs", sys, "--uevents", uevents, NULL);
}

/* A uevent of a USB device, as the kernel words one, sent to the
 * daemon's --uevents socket. */
static void
uevent_send(const char *action, const char *port, const char *product,
    int bus, int dev)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char msg[1024], devpath[128];
	size_t len = 0;
	int fd, n;

	snprintf(devpath, sizeof(devpath), "/devices/pci0000:00/0000:00:04.0/"
	    "usb%d/%s", bus, port);
	n = snprintf(msg, sizeof(msg), "%s@%s%cACTION=%s%cDEVPATH=%s%c"
	    "SUBSYSTEM=usb%cDEVTYPE=usb_device%cPRODUCT=%s%cBUSNUM=%03d%c"
	    "DEVNUM=%03d%cSEQNUM=1%c", action, devpath, 0, action, 0, devpath,
	    0, 0, 0, product, 0, bus, 0, dev, 0, 0);
	ck_assert_int_gt(n, 0);
	len = (size_t)n;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/uevents", w.dir);
	ck_assert_int_ne(fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), -1);
	ck_assert_int_eq(sendto(fd, msg, len, 0, (struct sockaddr *)&sa,
	    sizeof(sa)), (ssize_t)len);
	close(fd);
}

/* The device vid:pid comes at port of the sysfs tree sys, as bus:dev,
 * and the kernel says so; or it leaves, and the kernel says so. */
static void
plug_event(const char *action, const char *sys, const char *port,
    const char *vid, const char *pid, int bus, int dev)
{
	char product[32], path[300];

	snprintf(product, sizeof(product), "%lx/%lx/1200", strtoul(vid, NULL,
	    16), strtoul(pid, NULL, 16));
	if (strcmp(action, "add") == 0)
		sysfs_device(sys, port, vid, pid, bus, dev);
	else {
		snprintf(path, sizeof(path), "%s/%s", sys, port);
		remove_tree(path);
	}
	uevent_send(action, port, product, bus, dev);
}

static void
plug(const char *sys, const char *port, const char *vid, const char *pid,
    int bus, int dev)
{
	plug_event("add", sys, port, vid, pid, bus, dev);
}

static void
unplug(const char *sys, const char *port, const char *vid, const char *pid,
    int bus, int dev)
{
	plug_event("remove", sys, port, vid, pid, bus, dev);
}

/*
 * A device in the ledger that leaves the host and comes back, at any
 * port, or at its own when it was named by one, is detached where
 * libvirt held it and attached again where it is now; then a detach
 * gives it back. One with other ids, one at another port than the one
 * named, one of a domain that stopped meanwhile: left to the host.
 */
START_TEST(test_a_replugged_device_is_attached_again_where_it_is)
{
	char sys[256], path[300], text[LINE], line[LINE];
	struct client c;

	snprintf(sys, sizeof(sys), "%s/sys", w.dir);
	sysfs_device(sys, "1-2", "046d", "c52b", 1, 5);
	sysfs_device(sys, "2-1", "046d", "c077", 2, 3);
	daemon_follows(sys);
	client_open(&c);
	client_send(&c, "reply on\nkept1 attach 046d:c52b\n"
	    "kept2 attach 046d:c077@2-1\n");
	expect_reply(&c, "ok kept1 attach 046d:c52b");
	expect_reply(&c, "ok kept2 attach 046d:c077@2-1");

	/* Out, and in again at another port with another number. */
	unplug(sys, "1-2", "046d", "c52b", 1, 5);
	expect_log("[VMusb] kept1: device 046d:c52b left the host (port 1-2): "
	    "waiting for it to come back");
	uevent_send("add", "1-4", "46d/c077/1200", 1, 6);	/* not it */
	plug(sys, "1-3", "046d", "c52b", 1, 9);
	expect_log("[VMusb] kept1: device 046d:c52b was replugged: detached it "
	    "where libvirt held it");
	expect_log("[VMusb] kept1: device 046d:c52b@1-3 is back: attached it "
	    "again");
	snprintf(path, sizeof(path), "%s/state.kept1", w.dir);
	ck_assert_int_gt(slurp(path, text, sizeof(text)), 0);
	ck_assert_str_eq(text, "046d c52b 1 9\n");
	/* Kept under the name it was attached by: followed again, to
	 * another port still. */
	expect_ledger("kept2 046d:c077@2-1 2-1 2 3;kept1 046d:c52b 1-3 1 9;");
	unplug(sys, "1-3", "046d", "c52b", 1, 9);
	expect_log("[VMusb] kept1: device 046d:c52b left the host (port 1-3): "
	    "waiting for it to come back");
	plug(sys, "1-5", "046d", "c52b", 1, 11);
	expect_log("[VMusb] kept1: device 046d:c52b was replugged: detached it "
	    "where libvirt held it");
	expect_log("[VMusb] kept1: device 046d:c52b@1-5 is back: attached it "
	    "again");
	snprintf(path, sizeof(path), "%s/state.kept1", w.dir);
	ck_assert_int_gt(slurp(path, text, sizeof(text)), 0);
	ck_assert_str_eq(text, "046d c52b 1 11\n");

	/* Named by its port: only there is it the same device. */
	unplug(sys, "2-1", "046d", "c077", 2, 3);
	expect_log("[VMusb] kept2: device 046d:c077@2-1 left the host (port "
	    "2-1): waiting for it to come back");
	plug(sys, "2-2", "046d", "c077", 2, 4);
	plug(sys, "2-1", "046d", "c077", 2, 5);
	ck_assert(log_wait("[VMusb] kept2: ", line, sizeof(line)));
	ck_assert_msg(log_peer(line, "[VMusb] kept2: device 046d:c077@2-1 was "
	    "replugged: detached it where libvirt held it") >= 0, "%s", line);
	expect_log("[VMusb] kept2: device 046d:c077@2-1 is back: attached it "
	    "again");

	/* A domain that stopped meanwhile gets nothing back. */
	unplug(sys, "2-1", "046d", "c077", 2, 5);
	expect_log_part("kept2: device 046d:c077@2-1 left the host");
	libvirt_says("event 'lifecycle' for domain 'kept2': Stopped Destroyed\n");
	expect_log("[VMusb] kept2 stopped: device 046d:c077@2-1 is the host's "
	    "again");
	plug(sys, "2-1", "046d", "c077", 2, 6);
	/* Heard after it, in order: kept1's device goes once more. Whatever
	 * that add set going is then under way, and ends before we do. */
	unplug(sys, "1-5", "046d", "c52b", 1, 11);
	expect_log("[VMusb] kept1: device 046d:c52b left the host (port 1-5): "
	    "waiting for it to come back");
	plug(sys, "1-5", "046d", "c52b", 1, 12);
	expect_log("[VMusb] kept1: device 046d:c52b@1-5 is back: attached it "
	    "again");

	/* What came back is detached as any other. */
	client_send(&c, "kept1 detach 046d:c52b\n");
	expect_reply(&c, "ok kept1 detach 046d:c52b");
	snprintf(path, sizeof(path), "%s/state.kept1", w.dir);
	ck_assert_int_eq(slurp(path, text, sizeof(text)), 0);
	expect_ledger("");
	client_close(&c);
	ck_assert_int_eq(daemon_stop(), 0);
	ck_assert(!log_wait("kept2: device 046d:c077@2-1 is back", line,
	    sizeof(line)));
}
END_TEST

/* What waited before is forgotten: a device attached since, in the
 * slot of one that left, is not taken for it when a twin comes. And one
 * that comes back to a domain that no longer runs stays with the host. */
START_TEST(test_a_follow_takes_nothing_stale_nor_a_domain_that_does_not_run)
{
	char sys[256], path[300], line[LINE];
	struct client c;

	snprintf(sys, sizeof(sys), "%s/sys", w.dir);
	sysfs_device(sys, "1-2", "046d", "c52b", 1, 5);
	daemon_follows(sys);
	client_open(&c);
	client_send(&c, "reply on\nkept1 attach 046d:c52b\n");
	expect_reply(&c, "ok kept1 attach 046d:c52b");
	unplug(sys, "1-2", "046d", "c52b", 1, 5);
	expect_log_part("kept1: device 046d:c52b left the host");
	libvirt_says("event 'lifecycle' for domain 'kept1': Stopped Destroyed\n");
	expect_log("[VMusb] kept1 stopped: device 046d:c52b is the host's again");

	/* It comes back to the host; kept2 takes it. */
	plug(sys, "1-3", "046d", "c52b", 1, 6);
	client_send(&c, "kept2 attach 046d:c52b\n");
	expect_reply(&c, "ok kept2 attach 046d:c52b");
	/* A twin comes: kept2's waits for nothing. Then kept2's leaves. */
	plug(sys, "1-4", "046d", "c52b", 1, 7);
	unplug(sys, "1-3", "046d", "c52b", 1, 6);
	ck_assert(log_wait("[VMusb] kept2: ", line, sizeof(line)));
	ck_assert_msg(log_peer(line, "[VMusb] kept2: device 046d:c52b left the "
	    "host (port 1-3): waiting for it to come back") >= 0, "%s", line);
	/* Nothing was moved for the twin: an absence needs a window, and
	 * half a second is plenty for a fake virsh. */
	ck_assert_int_eq(reader_line(&w.log, line, sizeof(line), 500), -1);

	/* It comes back while kept2 is paused, before libvirt says so. */
	snprintf(path, sizeof(path), "%s/domstate.kept2", w.dir);
	write_file(path, "paused\n", 0644);
	plug(sys, "1-3", "046d", "c52b", 1, 8);
	expect_log("[VMusb] kept2: device 046d:c52b was replugged: detached it "
	    "where libvirt held it");
	expect_log("[VMusb] kept2: device 046d:c52b is back, but the domain does "
	    "not run: it stays with the host");
	expect_ledger("");
	client_close(&c);
}
END_TEST

/* One device that comes back is one entry's: two twins waiting, one
 * named by the port it comes at, take one replug each. */
START_TEST(test_a_device_that_comes_back_is_followed_once)
{
	char sys[256];
	struct client c;

	snprintf(sys, sizeof(sys), "%s/sys", w.dir);
	sysfs_device(sys, "1-2", "046d", "c52b", 1, 5);
	daemon_follows(sys);
	client_open(&c);
	client_send(&c, "reply on\nkept1 attach 046d:c52b\n");
	expect_reply(&c, "ok kept1 attach 046d:c52b");
	plug(sys, "1-3", "046d", "c52b", 1, 6);
	client_send(&c, "kept2 attach 046d:c52b@1-3\n");
	expect_reply(&c, "ok kept2 attach 046d:c52b@1-3");
	unplug(sys, "1-2", "046d", "c52b", 1, 5);
	expect_log_part("[VMusb] kept1: device 046d:c52b left the host");
	unplug(sys, "1-3", "046d", "c52b", 1, 6);
	expect_log_part("[VMusb] kept2: device 046d:c52b@1-3 left the host");

	/* At kept2's port: kept2's alone. Then anywhere: kept1's. */
	plug(sys, "1-3", "046d", "c52b", 1, 7);
	expect_log("[VMusb] kept2: device 046d:c52b@1-3 is back: attached it "
	    "again");
	plug(sys, "1-4", "046d", "c52b", 1, 8);
	expect_log("[VMusb] kept1: device 046d:c52b@1-4 is back: attached it "
	    "again");
	expect_ledger("kept2 046d:c52b@1-3 1-3 1 7;kept1 046d:c52b 1-4 1 8;");
	client_close(&c);
}
END_TEST

/* Twins, one vendor and product, are told apart by their serial
 * numbers: a twin that comes is not the device that left, and the one
 * that comes back is; the ledger keeps the serial's hash. */
START_TEST(test_a_twin_that_comes_is_not_the_device_that_left)
{
	char sys[256], path[300], text[LINE], line[LINE],
	    want[64];
	struct client c;

	snprintf(sys, sizeof(sys), "%s/sys", w.dir);
	sysfs_device(sys, "1-2", "046d", "c52b", 1, 5);
	snprintf(path, sizeof(path), "%s/1-2/serial", sys);
	write_file(path, "AAA\n", 0644);
	daemon_follows(sys);
	client_open(&c);
	client_send(&c, "reply on\nkept1 attach 046d:c52b\n");
	expect_reply(&c, "ok kept1 attach 046d:c52b");
	client_close(&c);
	ck_assert_int_gt(slurp(w.ledger, text, sizeof(text)), 0);
	snprintf(want, sizeof(want), " %016llx\n", serial_hash("AAA", 3));
	ck_assert_msg(strstr(text, want) != NULL, "%s", text);

	unplug(sys, "1-2", "046d", "c52b", 1, 5);
	expect_log_part("kept1: device 046d:c52b left the host");
	sysfs_device(sys, "1-3", "046d", "c52b", 1, 6);
	snprintf(path, sizeof(path), "%s/1-3/serial", sys);
	write_file(path, "BBB\n", 0644);
	uevent_send("add", "1-3", "46d/c52b/1200", 1, 6);
	sysfs_device(sys, "1-4", "046d", "c52b", 1, 7);
	snprintf(path, sizeof(path), "%s/1-4/serial", sys);
	write_file(path, "AAA\n", 0644);
	uevent_send("add", "1-4", "46d/c52b/1200", 1, 7);
	ck_assert(log_wait("[VMusb] kept1: ", line, sizeof(line)));
	ck_assert_msg(log_peer(line, "[VMusb] kept1: device 046d:c52b was "
	    "replugged: detached it where libvirt held it") >= 0, "%s", line);
	expect_log("[VMusb] kept1: device 046d:c52b@1-4 is back: attached it "
	    "again");
	snprintf(path, sizeof(path), "%s/state.kept1", w.dir);
	ck_assert_int_gt(slurp(path, text, sizeof(text)), 0);
	ck_assert_str_eq(text, "046d c52b 1 7\n");
}
END_TEST

/*
 * "assign VM DEVICE" in the configuration file: the device goes to VM
 * when VM starts, and when it comes while VM runs (at the port named,
 * when one is); not to a domain that does not run, nor a second time to
 * one that has it.
 */
START_TEST(test_an_assigned_device_follows_its_domain)
{
	char sys[256], path[300], text[LINE], line[LINE];

	snprintf(sys, sizeof(sys), "%s/sys", w.dir);
	sysfs_device(sys, "1-2", "046d", "c52b", 1, 5);
	write_file(w.config, "assign kept1 046d:c52b\n"
	    "assign kept2 046d:c077@2-1   # the mouse, at its port\n", 0600);
	daemon_follows(sys);

	libvirt_says("event 'lifecycle' for domain 'kept1': Started Booted\n");
	expect_log("[VMusb] kept1: attached its assigned device 046d:c52b, as "
	    "it started");
	snprintf(path, sizeof(path), "%s/state.kept1", w.dir);
	ck_assert_int_gt(slurp(path, text, sizeof(text)), 0);
	ck_assert_msg(strncmp(text, "046d c52b ", 10) == 0, "%s", text);

	/* kept1's twin comes: kept1 has one. kept2's device comes at
	 * another port, then at its own. */
	plug(sys, "1-3", "046d", "c52b", 1, 6);
	plug(sys, "2-2", "046d", "c077", 2, 3);
	plug(sys, "2-1", "046d", "c077", 2, 4);
	ck_assert(log_wait("assigned device", line, sizeof(line)));
	ck_assert_msg(log_peer(line, "[VMusb] kept2: attached its assigned "
	    "device 046d:c077@2-1, as the device came") >= 0, "%s", line);

	/* kept2 stops: its device, back on the host, comes again. */
	libvirt_says("event 'lifecycle' for domain 'kept2': Stopped Destroyed\n");
	expect_log("[VMusb] kept2 stopped: device 046d:c077@2-1 is the host's "
	    "again");
	snprintf(path, sizeof(path), "%s/domstate.kept2", w.dir);
	write_file(path, "shut off\n", 0644);
	uevent_send("remove", "2-1", "46d/c077/1200", 2, 4);
	uevent_send("add", "2-1", "46d/c077/1200", 2, 4);
	libvirt_says("event 'lifecycle' for domain 'kept2': Started Booted\n");
	ck_assert(log_wait("assigned device", line, sizeof(line)));
	ck_assert_msg(log_peer(line, "[VMusb] kept2: attached its assigned "
	    "device 046d:c077@2-1, as it started") >= 0, "%s", line);
	expect_ledger("kept1 046d:c52b 1-2 1 5;kept2 046d:c077@2-1 2-1 2 4;");
}
END_TEST

/*
 * Give-backs whose virsh hangs (four of them run at once, a fifth
 * waits) do not keep the watcher from libvirt's next events: another
 * domain's crash ends its lease at once, as the log says. Then the
 * hung ones are let go, and all five end.
 */
START_TEST(test_hung_give_backs_do_not_hold_up_the_watcher)
{
	static const char *const given[] = {
		"[VMusb] gate1 crashed: gave back device 046d:c52b",
		"[VMusb] gate2 crashed: gave back device 046d:c52b",
		"[VMusb] gate3 crashed: gave back device 046d:c52b",
		"[VMusb] gate4 crashed: gave back device 046d:c52b",
		"[VMusb] gate5 crashed: gave back device 046d:c52b",
		NULL,
	};
	char dir[200], path[300], ledger[LINE] = "# usbserver ledger 1\n";
	struct client c;

	snprintf(dir, sizeof(dir), "%s/run", w.dir);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	for (int i = 1; i <= 5; i++) {
		snprintf(ledger + strlen(ledger), sizeof(ledger) - strlen(ledger),
		    "gate%d 046d:c52b - 0 0 1700000000\n", i);
		snprintf(path, sizeof(path), "%s/state.gate%d", w.dir, i);
		write_file(path, "046d c52b 1 5\n", 0600);
	}
	write_file(w.ledger, ledger, 0600);
	w.ready = "[VMusb] watching libvirt's events";
	daemon_start(NULL);
	client_open(&c);
	client_send(&c, "reply on\nvmL alive 600\n");
	expect_reply(&c, "ok vmL alive 600");
	client_close(&c);
	libvirt_says("event 'lifecycle' for domain 'gate1': Crashed Panicked\n"
	    "event 'lifecycle' for domain 'gate2': Crashed Panicked\n"
	    "event 'lifecycle' for domain 'gate3': Crashed Panicked\n"
	    "event 'lifecycle' for domain 'gate4': Crashed Panicked\n"
	    "event 'lifecycle' for domain 'gate5': Crashed Panicked\n"
	    "event 'lifecycle' for domain 'vmL': Crashed Panicked\n");
	expect_log("[VMusb] lease of vmL ended: it crashed");
	ck_assert_int_eq(write(w.gate, "go\ngo\ngo\ngo\ngo\n", 15), 15);
	expect_logs_in_any_order(given);
}
END_TEST

/* Attack 3: pass as another guest; 5: signals; 6: learn the host's
 * ports; 8: name another domain; 9: stall the start. */
/* ------------------------------------------------------------------ */
/* Switches: the lines a host client that watches is sent              */

/* A guest of a domain on a connection held open: the runner as "peer",
 * its input a pipe of ours and its output one we read. */
struct held {
	pid_t		pid;
	int		in;
	struct reader	out;
};

/* The runner as "peer", with --pidfile PIDFILE and --as AS where not
 * NULL. */
static void
peer_hold(struct held *g, const char *pidfile, const char *as)
{
	char self[PATH_MAX], *argv[10];
	int in[2], out[2];

	peer_argv(argv, self, pidfile, as, NULL);
	ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	g->pid = spawn_fds(argv, in[0], out[1], -1);
	close(in[0]);
	close(out[1]);
	g->in = in[1];
	g->out.fd = out[0];
	g->out.len = 0;
}

static void
guest_hold(struct held *g, const char *vm)
{
	char pidfile[256];

	snprintf(pidfile, sizeof(pidfile), "%s/%s.pid", w.qemu_run, vm);
	peer_hold(g, pidfile, NULL);
}

static void
held_says(struct held *g, const char *text)
{
	ck_assert_int_eq(write(g->in, text, strlen(text)),
	    (ssize_t)strlen(text));
}

static void
held_expect(struct held *g, const char *want)
{
	char line[LINE];

	ck_assert_msg(reader_line(&g->out, line, sizeof(line), WAIT_MS) == 1,
	    "the guest was not answered '%s'", want);
	ck_assert_str_eq(line, want);
}

/* Its last line, answered in order after anything the daemon sent it
 * before; then it goes. */
static void
held_end(struct held *g, const char *last, const char *want)
{
	int status;

	held_says(g, last);
	held_expect(g, want);
	close(g->in);
	ck_assert_int_eq(waitpid(g->pid, &status, 0), g->pid);
	ck_assert_int_eq(status, 0);
	close(g->out.fd);
}

/* A host client's attach, answered. */
static void
host_attach(const char *vm, const char *dev)
{
	const char *const one[] = { dev, NULL };

	attach_all(vm, one);
}

/* A watcher that asked and was told yes. */
static void
watcher_open(struct client *c)
{
	client_open(c);
	client_send(c, "reply on\nwatch on\n");
	expect_reply(c, "ok watch on");
}

/*
 * A host client that watches is sent a line when a domain gets its
 * first device and when it gives back its last, once each, in order,
 * whatever moved them: a host client, the guest, libvirt's events, a
 * release, a lapsed lease, a replug to a domain that no longer runs, an
 * assign line as its domain starts. A
 * replug that goes back to the domain switches nothing. A guest that
 * asks to watch is refused and sent nothing.
 */
START_TEST(test_a_watcher_sees_each_switch_once_in_order)
{
	static const struct { const char *says, *reason; } events[] = {
		{ "Crashed Panicked", "crashed" },
		{ "Suspended Paused", "paused" },
		{ "PMSuspended Memory", "suspended" },
		{ "Stopped Destroyed", "stopped" },
	};
	char sys[256], path[300], line[LINE];
	struct client wc, c;
	struct held g;

	snprintf(sys, sizeof(sys), "%s/sys", w.dir);
	sysfs_device(sys, "1-2", "046d", "c52b", 1, 5);
	write_file(w.config, "assign vmC 046d:c077\n", 0600);
	/* Its first look at the ledger is behind it: the fake virsh's XML
	 * holds no device. */
	w.ready = "[VMusb] watching libvirt's events";
	daemon_follows(sys);
	watcher_open(&wc);
	guest_hold(&g, "vmA");
	held_says(&g, "reply on\nwatch on\n");
	held_expect(&g, "error watch on: not allowed");

	/* Two devices in: one switch. The guest gives both back: one. */
	host_attach("vmA", "046d:c52b");
	host_attach("vmA", "1050:0407");
	expect_reply(&wc, "switched vmA guest client 046d:c52b");
	held_says(&g, "vmA detach 046d:c52b\nvmA detach 1050:0407\n");
	held_expect(&g, "ok vmA detach 046d:c52b");
	held_expect(&g, "ok vmA detach 1050:0407");
	expect_reply(&wc, "switched vmA host guest 1050:0407");

	/* libvirt's events. */
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		host_attach("vmA", "046d:c52b");
		expect_reply(&wc, "switched vmA guest client 046d:c52b");
		snprintf(line, sizeof(line), "event 'lifecycle' for domain "
		    "'vmA': %s\n", events[i].says);
		libvirt_says(line);
		snprintf(line, sizeof(line), "switched vmA host %s 046d:c52b",
		    events[i].reason);
		expect_reply(&wc, line);
	}

	/* A release, and a lease that lapses. */
	host_attach("vmA", "046d:c52b");
	client_open(&c);
	client_send(&c, "reply on\nvmA release\n");
	expect_reply(&c, "ok vmA release");
	client_close(&c);
	expect_reply(&wc, "switched vmA guest client 046d:c52b");
	expect_reply(&wc, "switched vmA host release 046d:c52b");
	host_attach("vmA", "046d:c52b");
	held_says(&g, "vmA alive 1\n");
	held_expect(&g, "ok vmA alive 1");
	expect_reply(&wc, "switched vmA guest client 046d:c52b");
	expect_reply(&wc, "switched vmA host lease 046d:c52b");

	/* Replugged while the domain runs: no switch. Then while it is
	 * paused: the host's. */
	host_attach("vmA", "046d:c52b");
	expect_reply(&wc, "switched vmA guest client 046d:c52b");
	unplug(sys, "1-2", "046d", "c52b", 1, 5);
	plug(sys, "1-3", "046d", "c52b", 1, 6);
	expect_log("[VMusb] vmA: device 046d:c52b@1-3 is back: attached it "
	    "again");
	unplug(sys, "1-3", "046d", "c52b", 1, 6);
	snprintf(path, sizeof(path), "%s/domstate.vmA", w.dir);
	write_file(path, "paused\n", 0644);
	plug(sys, "1-4", "046d", "c52b", 1, 7);
	expect_reply(&wc, "switched vmA host replug 046d:c52b");

	/* An assign line, as its domain starts. */
	libvirt_says("event 'lifecycle' for domain 'vmC': Started Booted\n");
	expect_reply(&wc, "switched vmC guest assign 046d:c077");

	/* Nothing else came between: the next line is the next switch. */
	host_attach("vmB", "046d:c52b");
	expect_reply(&wc, "switched vmB guest client 046d:c52b");
	expect_log("[VMusb] vmB switched to the guest (client)");
	held_end(&g, "hello\n", "error: expected: VM attach|detach VID:PID");
	client_close(&wc);
}
END_TEST

/*
 * A watcher that does not read is dropped once its socket, its outbox
 * and its pipe are full, and told so after every line it was sent, in
 * order; it is sent no switch after that, and the daemon and its other
 * clients go on.
 */
START_TEST(test_a_watcher_that_does_not_read_is_dropped_and_told)
{
	char line[LINE];
	struct client wc, c;
	int pairs = 0, n = 0;
	bool dropped = false;

	daemon_start(NULL);
	watcher_open(&wc);
	client_open(&c);
	client_send(&c, "reply on\n");
	/* Switches, 50 of each way at a time, until the daemon says it gave
	 * up on the watcher (its log read after each batch is answered). */
	while (!dropped) {
		ck_assert_int_lt(pairs, 10000);
		for (int i = 0; i < 50; i++)
			client_send(&c, "vmA attach 046d:c52b\n"
			    "vmA detach 046d:c52b\n");
		for (int i = 0; i < 50; i++, pairs++) {
			expect_reply(&c, "ok vmA attach 046d:c52b");
			expect_reply(&c, "ok vmA detach 046d:c52b");
		}
		while (reader_line(&w.log, line, sizeof(line), 0) == 1)
			dropped |= strstr(line, "does not read them: it watches "
			    "no more") != NULL;
	}
	host_attach("vmA", "046d:c52b");
	for (;; n++) {
		client_reply(&wc, line, sizeof(line));
		if (strncmp(line, "error ", 6) == 0)
			break;
		ck_assert_str_eq(line, n % 2 == 0 ?
		    "switched vmA guest client 046d:c52b" :
		    "switched vmA host client 046d:c52b");
	}
	ck_assert_str_eq(line, "error watch on: switch lines were lost (this "
	    "client did not read them)");
	ck_assert_int_gt(n, 0);
	ck_assert_int_lt(n, 2 * pairs);
	/* The attach after it went to no one: the next line is the answer
	 * to this one. */
	client_send(&wc, "hello\n");
	expect_reply(&wc, "error: expected: VM attach|detach VID:PID");
	fprintf(stderr, "switches: a watcher that did not read was dropped "
	    "after %d lines, of %d switches\n", n, 2 * pairs);
}
END_TEST

/* A user other than root watches on 4 connections at most. */
START_TEST(test_one_user_watches_on_four_connections_at_most)
{
	struct held g[5];
	char run_dir[256];

	if (!socket_for_nobody("per-user watchers", run_dir, sizeof(run_dir)))
		return;
	for (int i = 0; i < 5; i++) {
		peer_hold(&g[i], NULL, "65534:65534");
		held_says(&g[i], "reply on\nwatch on\n");
		held_expect(&g[i], i < 4 ? "ok watch on" :
		    "error watch on: too many clients watch");
	}
	for (int i = 0; i < 5; i++)
		held_end(&g[i], "status\n", "ok status");
}
END_TEST

/* WATCHERS_MAX (8) connections may watch at once; one more is told no,
 * and the connection lives on. One that ends makes room. */
START_TEST(test_watchers_are_bounded)
{
	struct client wc[9];

	daemon_start(NULL);
	for (int i = 0; i < 8; i++)
		watcher_open(&wc[i]);
	client_open(&wc[8]);
	client_send(&wc[8], "reply on\nwatch on\n");
	expect_reply(&wc[8], "error watch on: too many clients watch");
	/* The first connection's end, as the daemon says it. */
	client_close(&wc[0]);
	ck_assert(log_wait("[VMusb] connection 1 closed", NULL, 0));
	client_send(&wc[8], "watch on\n");
	expect_reply(&wc[8], "ok watch on");
	host_attach("vmA", "046d:c52b");
	for (int i = 1; i < 9; i++)
		expect_reply(&wc[i], "switched vmA guest client 046d:c52b");
}
END_TEST

void
daemon_attacks(TCase *tc)
{
	tcase_add_test(tc, test_a_command_line_naming_a_domain_makes_no_guest);
	tcase_add_test(tc, test_without_pidfds_a_guest_is_still_known);
	tcase_add_test(tc, test_sighup_reads_the_allow_list_again);
	tcase_add_test(tc, test_stray_signals_are_ignored);
	tcase_add_test(tc, test_guest_learns_nothing_of_the_hosts_ports);
	tcase_add_test(tc, test_names_virsh_reads_as_a_number_or_uuid_are_refused);
	tcase_add_test(tc, test_a_notify_socket_that_never_reads_does_not_hold_the_start);
}

Suite *
daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *proto = tcase_create("protocol");
	TCase *hostile_tc = tcase_create("hostile input");
	TCase *virsh = tcase_create("virsh");
	TCase *life = tcase_create("life cycle");
	TCase *real = tcase_create("real programs");
	TCase *policy = tcase_create("policy");
	TCase *sd = tcase_create("systemd");
	TCase *give = tcase_create("giving back");
	TCase *shell = tcase_create("shells");
	TCase *sw = tcase_create("switches");
	TCase *all[] = { proto, hostile_tc, virsh, shell, life, policy, sd,
	    give, sw, real };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		tcase_add_checked_fixture(all[i], world_setup, world_teardown);
		tcase_set_timeout(all[i], 60);
		suite_add_tcase(s, all[i]);
	}
	tcase_add_test(proto, test_guide_socat_command_attaches);
	tcase_add_test(proto, test_last_line_without_newline_is_a_command);
	tcase_add_test(proto, test_connect_uri_is_passed_as_dash_c);
	tcase_add_test(proto, test_no_reply_without_reply_on);
	tcase_add_test(proto, test_reply_on_gives_one_reply_per_command_in_order);
	tcase_add_test(proto, test_empty_lines_and_blanks_are_ignored);
	tcase_add_test(proto, test_failure_is_logged_with_virsh_reason);
	tcase_add_test(proto, test_invalid_line_is_logged_escaped);
	tcase_add_test(proto, test_debug_log_follows_each_connection);
	tcase_add_test(proto, test_device_at_a_port_is_named_by_its_address);

	tcase_add_test(hostile_tc, test_hostile_lines_are_refused_and_the_connection_lives);
	tcase_add_test(hostile_tc, test_overlong_line_is_skipped_never_truncated_into_a_command);
	tcase_add_test(hostile_tc, test_line_delivered_one_byte_at_a_time);
	tcase_add_test(hostile_tc, test_peer_that_does_not_read_loses_replies_not_commands);
	tcase_add_test(hostile_tc, test_a_flood_of_junk_does_not_drown_the_log);

	tcase_add_test(virsh, test_missing_virsh_is_logged_and_replied);
	tcase_add_test(virsh, test_hung_virsh_is_killed_at_the_deadline);
	tcase_add_test(virsh, test_other_vms_are_not_held_up);
	tcase_add_test(virsh, test_one_vm_runs_one_command_at_a_time_in_arrival_order);
	tcase_add_test(virsh, test_virsh_gets_a_small_fixed_environment);
	tcase_add_test(virsh, test_virsh_gets_no_descriptor_of_ours);

	tcase_add_test(shell, test_commands_go_to_one_resident_shell);
	tcase_add_test(shell, test_a_shell_that_dies_fails_its_command_and_another_starts);
	tcase_add_test(shell, test_a_hung_command_ends_its_shell_and_holds_up_no_other);
	tcase_add_test(shell, test_shells_that_keep_dying_give_way_to_one_shot_runs);
	tcase_add_test(shell, test_an_argument_a_shell_cannot_take_runs_virsh_once);
	tcase_add_test(shell, test_a_shell_gets_its_three_pipes_and_nothing_else);
	tcase_add_test(shell, test_shells_end_with_the_daemon);
	tcase_add_test(shell, test_what_an_idle_shell_says_fails_no_command);
	tcase_add_test(shell, test_domains_are_what_virsh_lists_for_host_clients_only);

	tcase_add_test(life, test_many_clients_at_once_none_lost);
	tcase_add_test(life, test_sigterm_removes_the_socket_and_exits_zero);
	tcase_add_test(life, test_sigint_removes_the_socket_and_exits_zero);
	tcase_add_test(life, test_sigterm_waits_for_a_running_virsh);
	tcase_add_test(life, test_vanished_client_does_not_kill_it);
	tcase_add_test(life, test_stale_socket_file_is_replaced);
	tcase_add_test(life, test_live_server_is_not_stolen);
	tcase_add_test(life, test_non_socket_at_the_path_is_left_alone);
	tcase_add_test(life, test_unsafe_xml_dir_is_refused);
	tcase_add_test(life, test_options_help_version_and_bad_timeout);
	tcase_add_test(life, test_socket_is_owner_only);
	tcase_add_test(life, test_socket_mode_and_group_are_set_before_anyone_connects);
	tcase_add_test(life, test_socket_mode_open_to_everyone_is_refused);
	tcase_add_test(life, test_socket_user_owns_the_socket_but_is_no_host_client);
	tcase_add_test(life, test_socket_owner_or_mode_changed_is_logged);

	tcase_add_test(policy, test_qemu_peer_acts_only_on_its_own_domain);
	tcase_add_test(policy, test_guest_attach_lets_a_guest_attach_to_itself_only);
	tcase_add_test(policy, test_libvirt_pid_file_names_the_guest_whatever_its_command_line);
	tcase_add_test(policy, test_socket_group_members_are_host_clients_unless_qemu_runs_as_them);
	tcase_add_test(policy, test_with_cap_chown_alone_a_guest_still_detaches);
	tcase_add_test(policy, test_allow_flags_let_only_listed_devices_move);
	tcase_add_test(policy, test_allow_entry_with_a_port_allows_that_port_only);
	tcase_add_test(policy, test_allow_file_lets_only_listed_devices_move);
	tcase_add_test(policy, test_without_allow_list_a_warning_says_everything_may_move);
	tcase_add_test(policy, test_bad_config_files_are_refused_naming_file_and_line);
	tcase_add_test(policy, test_config_of_another_user_is_refused);
	tcase_add_test(policy, test_bad_allow_flag_is_a_usage_error);

	tcase_add_test(sd, test_ready_and_stopping_go_to_the_notify_socket);
	tcase_add_test(sd, test_abstract_notify_socket_works_too);
	tcase_add_test(sd, test_passed_socket_outlives_the_daemon_and_keeps_its_clients);
	tcase_add_test(sd, test_systemd_socket_activate_starts_it_on_the_first_client);
	tcase_add_test(sd, test_wrong_listen_fds_is_refused);
	tcase_add_test(sd, test_clients_gone_before_they_were_looked_at_are_judged_by_credentials);
	tcase_add_test(sd, test_passed_sockets_group_makes_host_clients);
	tcase_add_test(sd, test_passed_socket_with_a_qemus_group_gives_it_no_clients);
	tcase_add_test(sd, test_a_gone_peer_of_a_user_qemu_ran_as_is_no_host_client);

	tcase_add_test(give, test_a_crash_gives_back_every_device_of_that_domain);
	tcase_add_test(give, test_sleep_gives_back_and_a_stop_forgets);
	tcase_add_test(give, test_the_ledger_follows_attach_and_detach);
	tcase_add_test(give, test_the_ledger_outlives_a_restart);
	tcase_add_test(give, test_a_torn_or_hostile_ledger_is_not_believed);
	tcase_add_test(give, test_at_start_the_ledger_is_checked_against_libvirt);
	tcase_add_test(give, test_events_lost_and_back_are_made_up_for);
	tcase_add_test(give, test_why_libvirts_events_are_lost_is_logged_escaped);
	tcase_add_test(give, test_release_gives_back_a_domains_devices_or_all);
	tcase_add_test(give, test_a_lapsed_lease_gives_back_the_devices);
	tcase_add_test(give, test_status_tells_the_ledger_and_the_leases);
	tcase_add_test(give, test_a_replugged_device_is_detached_where_the_domain_holds_it);
	tcase_add_test(give, test_a_replugged_device_is_attached_again_where_it_is);
	tcase_add_test(give, test_a_twin_that_comes_is_not_the_device_that_left);
	tcase_add_test(give, test_a_device_that_comes_back_is_followed_once);
	tcase_add_test(give, test_a_follow_takes_nothing_stale_nor_a_domain_that_does_not_run);
	tcase_add_test(give, test_an_assigned_device_follows_its_domain);
	tcase_add_test(give, test_hung_give_backs_do_not_hold_up_the_watcher);

	tcase_add_test(sw, test_a_watcher_sees_each_switch_once_in_order);
	tcase_add_test(sw, test_watchers_are_bounded);
	tcase_add_test(sw, test_one_user_watches_on_four_connections_at_most);
	tcase_add_test(sw, test_a_watcher_that_does_not_read_is_dropped_and_told);

	tcase_add_test(real, test_real_virsh_error_is_replied);
	tcase_add_test(real, test_syslog_messages_have_the_guides_format);
	tcase_add_test(real, test_units_are_rated_safe_and_ok_by_systemd_analyze);
	tcase_add_test(real, test_units_name_the_systems_libvirt);
	tcase_add_test(real, test_units_user_is_a_real_member_of_libvirt);
	tcase_add_test(real, test_make_install_and_uninstall);
	tcase_add_test(real, test_man_pages_are_lint_clean_and_document_every_option);
	return s;
}
