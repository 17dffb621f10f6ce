/*
 * test_virsh.c: the daemon's virsh runner and XML file, tested in process.
 * The daemon's source is included whole, its main() renamed, so its static
 * functions are tested as they are.
 */
int usbserver_main(int, char *[]);
#define main usbserver_main
#include "../usbserver.c"
#undef main

#include <sys/stat.h>

#include <dirent.h>

#include "tests.h"

/* Writes an executable sh script into the world's directory. */
static const char *
script(const char *name, const char *body)
{
	static char path[256];
	char text[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", w.dir, name);
	snprintf(text, sizeof(text), "#!/bin/sh\n%s\n", body);
	ck_assert_ptr_nonnull(f = fopen(path, "we"));
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, 0755), 0);
	return path;
}

static void
run_script(const char *body, int timeout, struct run *res)
{
	char *argv[] = { (char *)script("s", body), (char *)"arg", NULL };

	virsh_run(argv, timeout, res);
}

/* The device s names, parsed (it must parse). */
static const struct usb_device *
dev_of(const char *s)
{
	static struct usb_device d;

	ck_assert_msg(device_parse(s, strlen(s), &d), "'%s' does not parse", s);
	return &d;
}

static void
setup(void)
{
	world_setup();
	opt.xml_dir = w.xmldir;
	/* The runner of one virsh per command: a shell's is the daemon
	 * suite's, with the fake virsh that is one. */
	opt.one_shot = true;
	build_virsh_env();
}

START_TEST(test_exit_zero_is_ok)
{
	struct run res;

	run_script("echo Device attached successfully", 5, &res);
	ck_assert_int_eq(res.outcome, RUN_OK);
}
END_TEST

START_TEST(test_last_error_line_is_the_reason)
{
	struct run res;

	run_script("echo 'error: Failed to attach device from /tmp/x.xml' >&2\n"
	    "echo 'error: Requested operation is not valid: no such device' >&2\n"
	    "exit 1", 5, &res);
	ck_assert_int_eq(res.outcome, RUN_FAILED);
	ck_assert_str_eq(res.reason,
	    "Requested operation is not valid: no such device");
}
END_TEST

START_TEST(test_error_on_stdout_counts_too)
{
	struct run res;

	run_script("echo 'error: said on stdout'; exit 1", 5, &res);
	ck_assert_int_eq(res.outcome, RUN_FAILED);
	ck_assert_str_eq(res.reason, "said on stdout");
}
END_TEST

START_TEST(test_without_error_line_the_last_line_is_the_reason)
{
	struct run res;

	run_script("echo first; echo '  last words  ' >&2; echo; exit 1", 5, &res);
	ck_assert_int_eq(res.outcome, RUN_FAILED);
	ck_assert_str_eq(res.reason, "last words");
}
END_TEST

START_TEST(test_silent_failure_gives_the_status)
{
	struct run res;

	run_script("exit 3", 5, &res);
	ck_assert_int_eq(res.outcome, RUN_FAILED);
	ck_assert_str_eq(res.reason, "virsh exited with status 3");
}
END_TEST

START_TEST(test_killed_by_signal_is_a_failure)
{
	struct run res;

	run_script("kill -KILL $$", 5, &res);
	ck_assert_int_eq(res.outcome, RUN_FAILED);
	ck_assert_str_eq(res.reason, "virsh killed by signal 9");
}
END_TEST

START_TEST(test_missing_program_cannot_run)
{
	struct run res;
	char *argv[] = { (char *)"/nonexistent/virsh", NULL };

	virsh_run(argv, 5, &res);
	ck_assert_int_eq(res.outcome, RUN_NORUN);
	ck_assert_str_eq(res.reason,
	    "cannot run /nonexistent/virsh: No such file or directory");
}
END_TEST

START_TEST(test_hang_is_killed_at_the_deadline_with_its_children)
{
	struct run res;
	struct pollfd p = { .events = POLLIN };
	char path[300], buf[400];
	int64_t t0 = now_ms(), took;
	pid_t child;

	/* A grandchild in the background, then virsh itself hangs. */
	snprintf(path, sizeof(path), "%s/child", w.dir);
	snprintf(buf, sizeof(buf), "sleep 60 & echo $! > %s\nexec sleep 60",
	    path);
	run_script(buf, 1, &res);
	took = now_ms() - t0;
	ck_assert_int_eq(res.outcome, RUN_TIMED_OUT);
	ck_assert_str_eq(res.reason, "timed out");
	ck_assert_int_ge(took, 1000);
	ck_assert_int_lt(took, WAIT_MS);

	/* The grandchild went with the group: it ends (SIGKILL is not
	 * instant), or has already ended. */
	ck_assert_int_gt(slurp(path, buf, sizeof(buf)), 0);
	child = (pid_t)atoi(buf);
	p.fd = pidfd_open(child, 0);
	if (p.fd == -1)
		ck_assert_int_eq(errno, ESRCH);
	else {
		ck_assert_msg(poll(&p, 1, WAIT_MS) == 1,
		    "the grandchild %d outlived the deadline", (int)child);
		close(p.fd);
	}
}
END_TEST

START_TEST(test_grandchild_holding_the_pipe_does_not_hold_us)
{
	struct run res;
	char path[300], body[400], buf[64];
	int64_t t0 = now_ms();

	/* virsh exits at once, leaving a child with its stdout open. */
	snprintf(path, sizeof(path), "%s/child", w.dir);
	snprintf(body, sizeof(body), "sleep 30 & echo $! > %s\n"
	    "echo 'error: gone' >&2; exit 1", path);
	run_script(body, 30, &res);
	ck_assert_int_lt(now_ms() - t0, 3000);
	ck_assert_int_eq(res.outcome, RUN_FAILED);
	ck_assert_str_eq(res.reason, "gone");
	ck_assert_int_gt(slurp(path, buf, sizeof(buf)), 0);
	kill((pid_t)atoi(buf), SIGKILL);
}
END_TEST

START_TEST(test_megabytes_of_output_are_drained)
{
	struct run res;

	run_script("head -c 4000000 /dev/zero | tr '\\0' x; echo;"
	    "echo 'error: after the flood' >&2; exit 1", 10, &res);
	ck_assert_int_eq(res.outcome, RUN_FAILED);
	ck_assert_str_eq(res.reason, "after the flood");
}
END_TEST

START_TEST(test_stdin_is_dev_null)
{
	struct run res;

	/* Reading stdin must give EOF at once, not wait on anything of ours. */
	run_script("test \"$(readlink /proc/$$/fd/0)\" = /dev/null || exit 1\n"
	    "cat > /dev/null", 5, &res);
	ck_assert_int_eq(res.outcome, RUN_OK);
}
END_TEST

START_TEST(test_environment_is_small_and_fixed)
{
	struct run res;
	char path[300], body[400], env[4096];

	setenv("SECRET_TOKEN", "leak", 1);
	setenv("HOME", "/home/someone", 1);
	setenv("LIBVIRT_DEFAULT_URI", "test:///default", 1);
	setenv("LD_PRELOAD", "/evil.so", 1);
	build_virsh_env();
	snprintf(path, sizeof(path), "%s/env", w.dir);
	snprintf(body, sizeof(body), "/usr/bin/env > %s", path);
	run_script(body, 5, &res);
	ck_assert_int_eq(res.outcome, RUN_OK);
	ck_assert_int_gt(slurp(path, env, sizeof(env)), 0);
	/* dash adds PWD of its own; nothing else may appear. */
	ck_assert_ptr_nonnull(strstr(env, "PATH=" SAFE_PATH "\n"));
	ck_assert_ptr_nonnull(strstr(env, "LC_ALL=C\n"));
	ck_assert_ptr_nonnull(strstr(env, "HOME=/home/someone\n"));
	ck_assert_ptr_nonnull(strstr(env, "LIBVIRT_DEFAULT_URI=test:///default\n"));
	ck_assert_ptr_null(strstr(env, "SECRET_TOKEN"));
	ck_assert_ptr_null(strstr(env, "LD_PRELOAD"));
}
END_TEST

START_TEST(test_a_bare_virsh_name_is_found_on_the_safe_path_only)
{
	char prog[PATH_MAX];

	/* A "virsh" planted in our working directory and on the caller's
	 * PATH is never the one that runs. */
	script("virsh", "exit 0");
	ck_assert_int_eq(chdir(w.dir), 0);
	setenv("PATH", w.dir, 1);
	opt.virsh = "sh";
	ck_assert_int_eq(virsh_path(prog, sizeof(prog)), 0);
	ck_assert(strcmp(prog, "/usr/bin/sh") == 0 || strcmp(prog, "/bin/sh") == 0);
	opt.virsh = "virsh";
	if (virsh_path(prog, sizeof(prog)) == 0) {
		ck_assert_int_eq(prog[0], '/');
		ck_assert_ptr_null(strstr(prog, w.dir));
	} else
		ck_assert_str_eq(prog, "virsh");
	opt.virsh = "no-such-program-anywhere";
	ck_assert_int_eq(virsh_path(prog, sizeof(prog)), -1);
	ck_assert_str_eq(prog, "no-such-program-anywhere");
}
END_TEST

START_TEST(test_a_virsh_path_is_used_as_given)
{
	char prog[PATH_MAX];

	opt.virsh = "./virsh";
	ck_assert_int_eq(virsh_path(prog, sizeof(prog)), 0);
	ck_assert_str_eq(prog, "./virsh");
}
END_TEST

static void
xml_expect(const char *device, const char *path)
{
	char buf[512], want[XML_MAX];
	struct stat st;

	ck_assert_int_gt(xml_format(want, sizeof(want), dev_of(device), NULL), 0);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_uid, geteuid());
	ck_assert_uint_eq(st.st_mode & 077, 0);
	ck_assert_int_gt(slurp(path, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, want);
}

START_TEST(test_xml_file_is_written_with_the_document)
{
	bool temporary;
	char path[PATH_MAX], why[MAX_REASON + 1], want[PATH_MAX];

	ck_assert_int_eq(xml_write(dev_of("046d:c52b"), NULL, path, sizeof(path), &temporary, why,
	    sizeof(why)), 0);
	snprintf(want, sizeof(want), "%s/device-046d:c52b.xml", w.xmldir);
	ck_assert_str_eq(path, want);
	xml_expect("046d:c52b", path);
}
END_TEST

START_TEST(test_xml_file_replaces_a_planted_symlink_without_following_it)
{
	bool temporary;
	char path[PATH_MAX], why[MAX_REASON + 1], victim[300], buf[64];

	snprintf(victim, sizeof(victim), "%s/victim", w.dir);
	FILE *f = fopen(victim, "we");
	ck_assert_ptr_nonnull(f);
	fputs("precious\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/device-046d:c52b.xml", w.xmldir);
	ck_assert_int_eq(symlink(victim, path), 0);

	ck_assert_int_eq(xml_write(dev_of("046d:c52b"), NULL, path, sizeof(path), &temporary, why,
	    sizeof(why)), 0);
	xml_expect("046d:c52b", path);
	ck_assert_int_gt(slurp(victim, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "precious\n");
}
END_TEST

START_TEST(test_xml_file_never_trusts_a_file_already_there)
{
	bool temporary;
	char path[PATH_MAX], why[MAX_REASON + 1];
	struct stat before, after;

	/* Someone else's file, with other content, is at the path. */
	snprintf(path, sizeof(path), "%s/device-046d:c52b.xml", w.xmldir);
	FILE *f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	fputs("<hostdev mode='subsystem' type='pci'/>\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0666), 0);
	ck_assert_int_eq(stat(path, &before), 0);

	ck_assert_int_eq(xml_write(dev_of("046d:c52b"), NULL, path, sizeof(path), &temporary, why,
	    sizeof(why)), 0);
	ck_assert_int_eq(stat(path, &after), 0);
	ck_assert(before.st_ino != after.st_ino);	/* a new file, ours */
	xml_expect("046d:c52b", path);
}
END_TEST

START_TEST(test_xml_file_of_ours_is_read_again_not_rewritten)
{
	bool temporary;
	char path[PATH_MAX], why[MAX_REASON + 1];
	struct stat before, after;

	ck_assert_int_eq(xml_write(dev_of("046d:c52b"), NULL, path, sizeof(path), &temporary,
	    why, sizeof(why)), 0);
	ck_assert_int_eq(stat(path, &before), 0);
	ck_assert_int_eq(xml_write(dev_of("046d:c52b"), NULL, path, sizeof(path), &temporary,
	    why, sizeof(why)), 0);
	ck_assert(!temporary);
	ck_assert_int_eq(stat(path, &after), 0);
	ck_assert_uint_eq(before.st_ino, after.st_ino);
	xml_expect("046d:c52b", path);
}
END_TEST

/* What is at the path is replaced unless it is exactly what we wrote. */
START_TEST(test_xml_file_not_exactly_ours_is_written_anew)
{
	enum { EXTRA, GROUP_WRITABLE, LINKED, OTHER_OWNER, FIFO, SYMLINK, N };
	bool temporary;
	char path[PATH_MAX], why[MAX_REASON + 1], doc[XML_MAX], other[300];
	char buf[XML_MAX + 16];
	struct stat before, after;
	int len = xml_format(doc, sizeof(doc), dev_of("046d:c52b"), NULL);

	ck_assert_int_gt(len, 0);
	snprintf(path, sizeof(path), "%s/device-046d:c52b.xml", w.xmldir);
	snprintf(other, sizeof(other), "%s/other", w.dir);
	for (int c = 0; c < N; c++) {
		if (c == OTHER_OWNER && geteuid() != 0)
			continue;	/* only root gives files away */
		unlink(path);
		unlink(other);
		if (c == FIFO)
			ck_assert_int_eq(mkfifo(path, 0600), 0);
		else {
			const char *at = c == SYMLINK ? other : path;
			FILE *f = fopen(at, "we");

			ck_assert_ptr_nonnull(f);
			fputs(doc, f);
			if (c == EXTRA)
				fputs(" ", f);
			ck_assert_int_eq(fclose(f), 0);
			ck_assert_int_eq(chmod(at, c == GROUP_WRITABLE ? 0620 :
			    0600), 0);
		}
		if (c == LINKED)
			ck_assert_int_eq(link(path, other), 0);
		if (c == OTHER_OWNER)
			ck_assert_int_eq(chown(path, geteuid() + 1, (gid_t)-1), 0);
		if (c == SYMLINK)
			ck_assert_int_eq(symlink(other, path), 0);
		ck_assert_int_eq(lstat(path, &before), 0);

		ck_assert_int_eq(xml_write(dev_of("046d:c52b"), NULL, path, sizeof(path),
		    &temporary, why, sizeof(why)), 0);
		ck_assert_int_eq(lstat(path, &after), 0);
		ck_assert_msg(before.st_ino != after.st_ino, "case %d kept", c);
		xml_expect("046d:c52b", path);
		if (c == LINKED || c == SYMLINK) {
			ck_assert_int_eq(slurp(other, buf, sizeof(buf)), len);
			ck_assert_str_eq(buf, doc);
		}
	}
}
END_TEST

START_TEST(test_xml_file_leaves_no_temporary_files)
{
	bool temporary;
	char path[PATH_MAX], why[MAX_REASON + 1], entries[4096] = "";

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(xml_write(dev_of("046d:c52b"), NULL, path, sizeof(path), &temporary, why,
		    sizeof(why)), 0);
	dir_list(w.xmldir, entries, sizeof(entries));
	ck_assert_str_eq(entries, "device-046d:c52b.xml ");
}
END_TEST

START_TEST(test_xml_file_in_a_missing_directory_fails_with_a_reason)
{
	bool temporary;
	char path[PATH_MAX], why[MAX_REASON + 1];

	opt.xml_dir = "/nonexistent";
	ck_assert_int_eq(xml_write(dev_of("046d:c52b"), NULL, path, sizeof(path), &temporary, why,
	    sizeof(why)), -1);
	ck_assert_str_eq(why, "cannot create a file in /nonexistent: "
	    "No such file or directory");
}
END_TEST

START_TEST(test_xml_path_taken_by_a_directory_falls_back_to_our_own_file)
{
	static const struct peer host = { .kind = PEER_HOST };
	struct command cmd = { .req = { .vm = "win10", .action = ACT_ATTACH },
	    .who = &host };
	char planted[PATH_MAX], record[300], body[1024], got[512], want[XML_MAX];
	char entries[4096] = "";

	/* Someone made a directory where our file goes: rename() cannot
	 * replace it, and the device must not be stuck for good. */
	snprintf(planted, sizeof(planted), "%s/device-046d:c52b.xml", w.xmldir);
	ck_assert_int_eq(mkdir(planted, 0755), 0);
	snprintf(record, sizeof(record), "%s/got", w.dir);
	snprintf(body, sizeof(body), "while [ $# -gt 0 ]; do\n"
	    "[ \"$1\" = --file ] && cat \"$2\" > %s && echo \"$2\" >> %s.path\n"
	    "shift; done", record, record);
	opt.virsh = script("virsh", body);
	cmd.req.device = *dev_of("046d:c52b");
	command_run(&cmd);
	ck_assert_int_eq(cmd.outcome, OUT_OK);
	ck_assert_int_gt(slurp(record, got, sizeof(got)), 0);
	ck_assert_int_gt(xml_format(want, sizeof(want), dev_of("046d:c52b"), NULL), 0);
	ck_assert_str_eq(got, want);

	/* Our file was removed after the run; the directory is untouched. */
	dir_list(w.xmldir, entries, sizeof(entries));
	ck_assert_str_eq(entries, "device-046d:c52b.xml ");
	struct stat st;
	ck_assert_int_eq(lstat(planted, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
}
END_TEST

/* Once identifying a peer ran short of descriptors or memory, nothing
 * later in it says otherwise: not a missing pid-file directory. */
START_TEST(test_short_of_resources_to_identify_stays_so)
{
	char name[MAX_VM_NAME + 1];
	struct qemu_scan scan;
	bool scarce = true;

	opt.qemu_run_dir = "/nonexistent";
	qemu_pid_files(-1, 0, 0, name, &scan, &scarce);
	ck_assert(scarce);
	ck_assert(!scan.found);
}
END_TEST

/*
 * Without a pidfd (before Linux 6.5, Debian 12's kernel), a pid is the
 * peer's only if its process started no later than we accepted: one that
 * started after took the pid of a peer that left. A zombie is gone.
 */
START_TEST(test_a_pid_started_after_the_accept_is_not_the_peer)
{
	unsigned long long since = boot_ticks();
	bool scarce = false;
	pid_t child;

	ck_assert(peer_alive(getpid(), since, &scarce));
	while (boot_ticks() == since)
		;			/* the clock's next tick, no sleep */
	if ((child = fork()) == 0) {
		for (;;)
			pause();
	}
	ck_assert_int_gt(child, 0);
	ck_assert(!peer_alive(child, since, &scarce));
	ck_assert(peer_alive(child, boot_ticks(), &scarce));
	ck_assert_int_eq(kill(child, SIGKILL), 0);
	ck_assert_int_eq(waitid(P_PID, (id_t)child, &(siginfo_t){ 0 },
	    WEXITED | WNOWAIT), 0);
	ck_assert(!peer_alive(child, boot_ticks(), &scarce));	/* zombie */
	ck_assert_int_eq(waitpid(child, NULL, 0), child);
	ck_assert(!peer_alive(child, boot_ticks(), &scarce));	/* gone */
	ck_assert(!scarce);
}
END_TEST

/* The lease clock, its time given: set, renewed, changed, ended, full,
 * and which lapses first. */
START_TEST(test_the_lease_clock)
{
	static struct lease_table t;
	struct lease out;
	char name[16];
	int64_t next;

	ck_assert(!lease_lapsed(&t, 0, &out, &next));
	ck_assert(next == INT64_MAX);
	ck_assert_int_eq(lease_set(&t, "vmA", 0, 0), LEASE_NONE);
	ck_assert_int_eq(lease_set(&t, "vmA", 10, 1000), LEASE_NEW);
	ck_assert_int_eq(lease_set(&t, "vmB", 3, 1000), LEASE_NEW);
	ck_assert(!lease_lapsed(&t, 3999, &out, &next));
	ck_assert(next == 4000);
	/* vmB's guest speaks at 3500: its lease runs from then */
	lease_renew(&t, "vmB", 3500);
	lease_renew(&t, "vmC", 3500);		/* none: nothing made */
	ck_assert_uint_eq(t.n, 2);
	ck_assert(!lease_lapsed(&t, 6499, &out, &next));
	ck_assert(next == 6500);
	ck_assert(lease_lapsed(&t, 6500, &out, &next));
	ck_assert_str_eq(out.vm, "vmB");
	ck_assert_uint_eq(out.seconds, 3);
	ck_assert_uint_eq(t.n, 1);		/* a lapsed lease is over */
	/* the same length again renews; another length changes it */
	ck_assert_int_eq(lease_set(&t, "vmA", 10, 5000), LEASE_SAME);
	ck_assert(!lease_lapsed(&t, 14999, &out, &next));
	ck_assert(next == 15000);
	ck_assert_int_eq(lease_set(&t, "vmA", 1, 5000), LEASE_CHANGED);
	ck_assert(!lease_lapsed(&t, 5999, &out, &next));
	ck_assert(next == 6000);
	ck_assert_int_eq(lease_set(&t, "vmA", 0, 5500), LEASE_ENDED);
	ck_assert(!lease_lapsed(&t, 1000000, &out, &next));
	ck_assert(next == INT64_MAX);
	/* bounded: one more than LEASE_MAX finds no room */
	for (int i = 0; i < LEASE_MAX; i++) {
		snprintf(name, sizeof(name), "vm%d", i);
		ck_assert_int_eq(lease_set(&t, name, 1, 0), LEASE_NEW);
	}
	ck_assert_int_eq(lease_set(&t, "vmX", 1, 0), LEASE_FULL);
	ck_assert_int_eq(lease_set(&t, "vm7", 2, 0), LEASE_CHANGED);
	for (int i = 0; i < LEASE_MAX; i++)
		ck_assert(lease_lapsed(&t, 2000, &out, &next));
	ck_assert(!lease_lapsed(&t, 2000, &out, &next));
	ck_assert_uint_eq(t.n, 0);
}
END_TEST

Suite *
virsh_suite(void)
{
	Suite *s = suite_create("virsh");
	TCase *run = tcase_create("run");
	TCase *xml = tcase_create("xml file");

	tcase_add_checked_fixture(run, setup, world_teardown);
	tcase_set_timeout(run, 30);
	tcase_add_test(run, test_exit_zero_is_ok);
	tcase_add_test(run, test_last_error_line_is_the_reason);
	tcase_add_test(run, test_error_on_stdout_counts_too);
	tcase_add_test(run, test_without_error_line_the_last_line_is_the_reason);
	tcase_add_test(run, test_silent_failure_gives_the_status);
	tcase_add_test(run, test_killed_by_signal_is_a_failure);
	tcase_add_test(run, test_missing_program_cannot_run);
	tcase_add_test(run, test_hang_is_killed_at_the_deadline_with_its_children);
	tcase_add_test(run, test_grandchild_holding_the_pipe_does_not_hold_us);
	tcase_add_test(run, test_megabytes_of_output_are_drained);
	tcase_add_test(run, test_stdin_is_dev_null);
	tcase_add_test(run, test_environment_is_small_and_fixed);
	tcase_add_test(run, test_a_bare_virsh_name_is_found_on_the_safe_path_only);
	tcase_add_test(run, test_a_virsh_path_is_used_as_given);
	tcase_add_test(run, test_short_of_resources_to_identify_stays_so);
	tcase_add_test(run, test_a_pid_started_after_the_accept_is_not_the_peer);
	tcase_add_test(run, test_the_lease_clock);
	suite_add_tcase(s, run);

	tcase_add_checked_fixture(xml, setup, world_teardown);
	tcase_add_test(xml, test_xml_file_is_written_with_the_document);
	tcase_add_test(xml, test_xml_file_replaces_a_planted_symlink_without_following_it);
	tcase_add_test(xml, test_xml_file_never_trusts_a_file_already_there);
	tcase_add_test(xml, test_xml_file_of_ours_is_read_again_not_rewritten);
	tcase_add_test(xml, test_xml_file_not_exactly_ours_is_written_anew);
	tcase_add_test(xml, test_xml_file_leaves_no_temporary_files);
	tcase_add_test(xml, test_xml_file_in_a_missing_directory_fails_with_a_reason);
	tcase_add_test(xml, test_xml_path_taken_by_a_directory_falls_back_to_our_own_file);
	suite_add_tcase(s, xml);
	return s;
}
