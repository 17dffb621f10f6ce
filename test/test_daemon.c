/*
 * test_daemon.c: usbserver as a process, over its real socket, with the
 * fake virsh of helpers.c, the real socat, the real virsh where it can
 * serve without libvirtd, and the real syslog protocol.
 */
#define _GNU_SOURCE

#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common.h"
#include "tests.h"

#define LINE	1024

/* Starts the daemon with the fake virsh, and a client with replies on. */
static void
start_with_replies(struct client *c)
{
	daemon_start(NULL);
	client_open(c);
	client_send(c, "reply on\n");
}

static void
expect_reply(struct client *c, const char *want)
{
	char line[LINE];

	client_reply(c, line, sizeof(line));
	ck_assert_str_eq(line, want);
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
	ck_assert_str_eq(line, want);
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

	start_with_replies(&c);
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

	start_with_replies(&c);
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
	char want[LINE];
	struct client c;

	daemon_start(NULL);
	client_open(&c);
	snprintf(want, sizeof(want), "[VMusb] connection 1 opened by pid %ld "
	    "(uid %lu)", (long)getpid(), (unsigned long)geteuid());
	expect_log(want);
	client_send(&c, "win10 attach 046d:c52b\n");
	expect_log("[VMusb] connection 1: win10 attach 046d:c52b");
	expect_log("[VMusb] win10 attached device 046d:c52b");
	client_close(&c);
	expect_log("[VMusb] connection 1 closed");
	client_open(&c);
	ck_assert(log_wait("[VMusb] connection 2 opened by pid", NULL, 0));
	client_close(&c);
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
		if (strcmp(line, "[VMusb] invalid action: junk") == 0)
			logged++;
		else if (strstr(line, "were not logged") != NULL)
			break;
	}
	ck_assert_int_eq(logged, 20);
	snprintf(want, sizeof(want), "[VMusb] %d more invalid lines from this "
	    "client were not logged", N - 20);
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
	/* Nothing else but what the shell adds of its own (PWD). */
	for (p = env; *p != '\0'; p = eol + 1) {
		eol = strchr(p, '\n');
		ck_assert_ptr_nonnull(eol);
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(p, "="), p);
		ck_assert_msg(strcmp(name, "PATH") == 0 ||
		    strcmp(name, "LC_ALL") == 0 || strcmp(name, "HOME") == 0 ||
		    strcmp(name, "LIBVIRT_DEFAULT_URI") == 0 ||
		    strcmp(name, "PWD") == 0, "virsh got %s", name);
	}
}
END_TEST

START_TEST(test_virsh_gets_no_descriptor_of_ours)
{
	struct client c[3];
	char id[32], fds[4096], *line, *save;

	daemon_start(NULL);
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
	    (char *)"--socket", w.sock, NULL };
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
	    (char *)"--socket", w.sock, NULL };
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

/* ------------------------------------------------------------------ */
/* Real programs: virsh's test driver, and syslog                      */

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

	if (!is_root()) {
		fputs("SKIP syslog test: needs root for a mount namespace\n", stderr);
		return;
	}
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
		    w.virsh, NULL };
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

	client_open(&c);
	client_send(&c, "win10 attach 046d:c52b\nfailvm detach 046d:c52b\n");
	memset(msg, 0, sizeof(msg));
	ck_assert_int_gt(recv(fd, msg, sizeof(msg) - 1, 0), 0);
	snprintf(want, sizeof(want), "usbserver[%d]: [VMusb] win10 attached "
	    "device 046d:c52b", (int)pid);
	ck_assert_int_eq(strncmp(msg, "<30>", 4), 0);
	ck_assert_str_eq(strstr(msg, "usbserver["), want);
	memset(msg, 0, sizeof(msg));
	ck_assert_int_gt(recv(fd, msg, sizeof(msg) - 1, 0), 0);
	snprintf(want, sizeof(want), "usbserver[%d]: [VMusb] failvm detaching "
	    "device 046d:c52b failed: Requested operation is not valid: fake "
	    "refusal", (int)pid);
	ck_assert_int_eq(strncmp(msg, "<28>", 4), 0);	/* daemon.warning */
	ck_assert_str_eq(strstr(msg, "usbserver["), want);
	close(fd);
}
END_TEST

Suite *
daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *proto = tcase_create("protocol");
	TCase *hostile_tc = tcase_create("hostile input");
	TCase *virsh = tcase_create("virsh");
	TCase *life = tcase_create("life cycle");
	TCase *real = tcase_create("real programs");
	TCase *all[] = { proto, hostile_tc, virsh, life, real };

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

	tcase_add_test(real, test_real_virsh_error_is_replied);
	tcase_add_test(real, test_syslog_messages_have_the_guides_format);
	return s;
}
