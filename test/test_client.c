/*
 * test_client.c: usbctl. Its parsing of "virsh list --name" in process
 * (the source included, main renamed), then the program itself against
 * the daemon, with the fake virsh and with real virsh's test driver.
 */
int usbctl_main(int, char *[]);
#define main usbctl_main
#include "../usbctl.c"
#undef main

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <dirent.h>
#include <glob.h>
#include <errno.h>
#include <stdarg.h>
#include <time.h>

#include "tests.h"

#define OUT	4096

static void
expect_first(const char *out, const char *want)
{
	char name[64];

	ck_assert_int_eq(list_first(out, strlen(out), name, sizeof(name)), 0);
	ck_assert_str_eq(name, want);
}

START_TEST(test_list_first_line_is_the_domain)
{
	expect_first("test\n\n", "test");
	expect_first("win10\nlinux\n\n", "win10");
}
END_TEST

START_TEST(test_list_skips_empty_lines_and_trims)
{
	expect_first("\n  \n\t win10 \r\nother\n", "win10");
}
END_TEST

START_TEST(test_list_keeps_a_name_with_spaces_whole)
{
	expect_first("my gaming vm\nother\n", "my gaming vm");
}
END_TEST

START_TEST(test_list_without_newline_at_end)
{
	expect_first("win10", "win10");
}
END_TEST

START_TEST(test_list_empty_output_has_no_domain)
{
	char name[64];

	ck_assert_int_eq(list_first("", 0, name, sizeof(name)), -1);
	ck_assert_int_eq(list_first("\n\n \n", 4, name, sizeof(name)), -1);
}
END_TEST

START_TEST(test_list_name_too_long_or_with_nul_is_refused)
{
	char name[8];

	ck_assert_int_eq(list_first("longername\n", 11, name, sizeof(name)), -1);
	ck_assert_int_eq(list_first("ab\0cd\n", 6, name, sizeof(name)), -1);
	ck_assert_int_eq(list_first("1234567\n", 8, name, sizeof(name)), 0);
	ck_assert_str_eq(name, "1234567");
}
END_TEST


/* Every domain in turn, for status and devices: a name with a NUL or too
 * long is passed over, never split into two. */
START_TEST(test_list_next_walks_every_domain)
{
	static const char out[] = " win10 \r\nbad\0name\n\n0123456789\nlinux";
	const char *p = out, *end = out + sizeof(out) - 1;
	char name[8];

	ck_assert_int_eq(list_next(&p, end, name, sizeof(name)), 1);
	ck_assert_str_eq(name, "win10");
	ck_assert_int_eq(list_next(&p, end, name, sizeof(name)), -1);
	ck_assert_int_eq(list_next(&p, end, name, sizeof(name)), -1);
	ck_assert_int_eq(list_next(&p, end, name, sizeof(name)), 1);
	ck_assert_str_eq(name, "linux");
	ck_assert_int_eq(list_next(&p, end, name, sizeof(name)), 0);
	ck_assert_ptr_eq(p, end);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A domain's XML: the USB devices attached to it                      */

static const char domain_xml[] =
    "<domain type='kvm' id='3'>\n"
    "  <name>win10</name>\n"
    "  <devices>\n"
    "    <hostdev mode='subsystem' type='pci' managed='yes'>\n"
    "      <source><address domain='0x0000' bus='0x01' slot='0x00'/></source>\n"
    "    </hostdev>\n"
    "    <hostdev mode='subsystem' type='usb' managed='no'>\n"
    "      <source>\n"
    "        <vendor id='0x046d'/>\n"
    "        <product id='0xc52b'/>\n"
    "        <address bus='1' device='3'/>\n"
    "      </source>\n"
    "    </hostdev>\n"
    "    <hostdev mode=\"subsystem\" type=\"usb\">\n"
    "      <source><vendor id=\"0x1050\"/><product id=\"0x0407\"/></source>\n"
    "    </hostdev>\n"
    "    <hostdev mode='subsystem' type='usb'>\n"
    "      <source><vendor id='0xzz'/><product id='0x0001'/></source>\n"
    "    </hostdev>\n"
    "  </devices>\n"
    "</domain>\n";

START_TEST(test_hostdevs_are_read_from_libvirts_xml)
{
	struct hostdev d[8];
	char text[DEVICE_TEXT];

	ck_assert_int_eq(hostdevs_parse(domain_xml, strlen(domain_xml), d, 8), 2);
	ck_assert_str_eq(device_text(&d[0].device, text), "046d:c52b");
	ck_assert_int_eq(d[0].bus, 1);
	ck_assert_int_eq(d[0].dev, 3);
	ck_assert_str_eq(device_text(&d[1].device, text), "1050:0407");
	/* not yet attached: */
	ck_assert_int_eq(d[1].bus, -1);
	ck_assert_int_eq(hostdevs_parse(domain_xml, strlen(domain_xml), d, 1), 1);
}
END_TEST

/* The host's address is inside <source>; the guest's is not it. */
START_TEST(test_hostdev_guest_address_is_not_the_hosts)
{
	static const char xml[] = "<hostdev mode='subsystem' type='usb'>"
	    "<source startupPolicy='optional'><vendor id='0x046d'/>"
	    "<product id='0xc52b'/></source>"
	    "<address type='usb' bus='0' port='1'/></hostdev>";
	struct hostdev d[2];

	ck_assert_int_eq(hostdevs_parse(xml, strlen(xml), d, 2), 1);
	ck_assert_int_eq(d[0].bus, -1);
	ck_assert_int_eq(d[0].dev, -1);
}
END_TEST

/* An address is a bus and device number a USB device can have, or none:
 * the daemon writes it into the XML of a detach. */
START_TEST(test_hostdev_addresses_out_of_range_are_none)
{
	static const char *const bad[] = { "bus='0' device='3'",
	    "bus='256' device='3'", "bus='1' device='-3'",
	    "bus='1' device='3x'", "bus='01' device='3'", "bus='1'" };
	char xml[256];
	struct hostdev d[1];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(xml, sizeof(xml), "<hostdev mode='subsystem' "
		    "type='usb'><source><vendor id='0x046d'/><product "
		    "id='0xc52b'/><address %s/></source></hostdev>", bad[i]);
		ck_assert_int_eq(hostdevs_parse(xml, strlen(xml), d, 1), 1);
		ck_assert_msg(d[0].bus == -1 && d[0].dev == -1, "%s", bad[i]);
	}
	snprintf(xml, sizeof(xml), "<hostdev mode='subsystem' type='usb'>"
	    "<source><vendor id='0x046d'/><product id='0xc52b'/>"
	    "<address bus='255' device='127'/></source></hostdev>");
	ck_assert_int_eq(hostdevs_parse(xml, strlen(xml), d, 1), 1);
	ck_assert_int_eq(d[0].bus, 255);
	ck_assert_int_eq(d[0].dev, 127);
}
END_TEST

/* A domain's owner writes what it likes into <metadata>: hostdevs there
 * are not the domain's. Without a <devices> section nothing is known. */
START_TEST(test_a_domains_hostdevs_come_from_its_devices_alone)
{
	static const char xml[] =
	    "<domain type='kvm' id='3'>\n"
	    "  <name>win10</name>\n"
	    "  <metadata>\n"
	    "    <x:y xmlns:x='urn:x'>\n"
	    "  <devices>\n"
	    "    <hostdev mode='subsystem' type='usb'><source><vendor id='0x0627'/>"
	    "<product id='0x0001'/></source></hostdev>\n"
	    "    </x:y>\n"
	    "  </metadata>\n"
	    "  <devices>\n"
	    "    <hostdev mode='subsystem' type='usb'><source><vendor id='0x046d'/>"
	    "<product id='0xc52b'/><address bus='1' device='3'/></source>"
	    "</hostdev>\n"
	    "  </devices>\n"
	    "</domain>\n";
	struct hostdev d[4];
	char text[DEVICE_TEXT];

	ck_assert_int_eq(domain_hostdevs_parse(xml, strlen(xml), d, 4), 1);
	ck_assert_str_eq(device_text(&d[0].device, text), "046d:c52b");
	ck_assert_int_eq(domain_hostdevs_parse(domain_xml + 40, 20, d, 4), -1);
}
END_TEST

START_TEST(test_hostdevs_of_broken_xml_are_none)
{
	static const char *bad[] = { "", "<hostdev type='usb'>",
	    "<hostdev type='usb'><vendor id='0x046d'/></hostdev>",
	    ("<hostdev type='usb'><vendor id='0x046d'/><product id='c52b'/>"
	    "</hostdev>"), "<hostdev type='usb><vendor id='0x046d'/>" };
	struct hostdev d[4];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(hostdevs_parse(bad[i], strlen(bad[i]), d, 4), 0);
}
END_TEST

START_TEST(test_reason_hints_say_what_to_do)
{
	ck_assert_ptr_nonnull(strstr(reason_hint("Requested operation is not "
	    "valid: USB device 001:003 is in use by driver QEMU, domain other"),
	    "another VM holds this device"));
	ck_assert_ptr_nonnull(strstr(reason_hint("operation failed: Multiple "
	    "USB devices for 046d:c52b, use <address> to specify one"),
	    "two host devices share this VID:PID"));
	ck_assert_ptr_null(reason_hint("failed to get domain 'x'"));
}
END_TEST

/* The daemon's "name one, as" becomes a command to copy, quoted for a
 * shell; a reason without a port form in it shows none. */
START_TEST(test_port_hint_shows_the_command_to_use)
{
	static const char multi[] = "operation failed: Multiple USB devices "
	    "for 627:1, use <address> to specify one";
	struct request c = { .action = ACT_DETACH };
	char *buf = NULL, reason[256];
	size_t len = 0;
	FILE *f;

	ck_assert_ptr_nonnull(f = open_memstream(&buf, &len));
	opt.domain = "it's mine";
	snprintf(reason, sizeof(reason), "%s; name one, as 0627:0001@1-1; it "
	    "is at ports 1-1, 1-2", multi);
	ck_assert(port_hint(f, &c, reason));
	opt.domain = NULL;
	c.action = ACT_ATTACH;
	ck_assert(port_hint(f, &c, reason));
	ck_assert(!port_hint(f, &c, multi));
	snprintf(reason, sizeof(reason), "%s; name one, as 0627:0001; it",
	    multi);
	ck_assert(!port_hint(f, &c, reason));
	snprintf(reason, sizeof(reason), "%s; name one, as 0627:0001@1-1 "
	    "$(reboot); it", multi);
	ck_assert(!port_hint(f, &c, reason));
	snprintf(reason, sizeof(reason), "%s; name one, as 0627:0001@1-1",
	    multi);
	ck_assert(!port_hint(f, &c, reason));
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_str_eq(buf, "usbctl: two host devices share 0627:0001: "
	    "name one by its port (usbctl devices shows them), as in:\n"
	    "    usbctl --domain 'it'\\''s mine' detach 0627:0001@1-1\n"
	    "usbctl: two host devices share 0627:0001: "
	    "name one by its port (usbctl devices shows them), as in:\n"
	    "    usbctl attach 0627:0001@1-1\n");
	free(buf);
}
END_TEST

/* ------------------------------------------------------------------ */
/* usbctl live                                                         */

static void
domains(const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/domains", w.dir);
	ck_assert_ptr_nonnull(f = fopen(path, "we"));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* Runs usbctl with the world's socket and fake virsh, then args. */
static int
usbctl(char *out, const char *first, ...)
{
	char *argv[32];
	int argc = 0, status;
	const char *a;
	va_list ap;

	argv[argc++] = (char *)USBCTL_BIN;
	argv[argc++] = (char *)"--socket";
	argv[argc++] = w.sock;
	argv[argc++] = (char *)"--virsh";
	argv[argc++] = w.virsh;
	argv[argc++] = (char *)"--config";	/* empty: none of the machine's */
	argv[argc++] = w.config;
	va_start(ap, first);
	for (a = first; a != NULL && argc < 31; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	status = run(argv, NULL, out, OUT);
	ck_assert_msg(WIFEXITED(status), "usbctl died: %#x", status);
	return WEXITSTATUS(status);
}

START_TEST(test_usbctl_attaches_to_the_first_running_domain)
{
	char out[OUT], id[32], args[OUT];

	daemon_start(NULL);
	domains("win10\nother\n");
	ck_assert_int_eq(usbctl(out, "046D:C52B", "046d:c077", NULL), 0);
	ck_assert_str_eq(out, "");
	ck_assert(log_wait("[VMusb] win10 attached device 046d:c52b", NULL, 0));
	ck_assert(log_wait("[VMusb] win10 attached device 046d:c077", NULL, 0));
	event_wait("end", "win10", id, sizeof(id));
	ck_assert_int_gt(call_file(id, "args", args, sizeof(args)), 0);
	ck_assert_ptr_nonnull(strstr(args, "attach-device\n--domain\nwin10\n"));
}
END_TEST

/*
 * A server of the kind before "domains": for conns connections, it
 * answers "reply on" with nothing, "domains" as a line it cannot parse,
 * and anything else "ok". Its pid.
 */
static pid_t
older_server(int conns)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd;
	pid_t pid;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w.sock);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, conns), 0);
	if ((pid = fork()) == 0) {
		for (int i = 0; i < conns; i++) {
			char line[512];
			FILE *f;
			int fd = accept(lfd, NULL, NULL);

			if (fd == -1 || (f = fdopen(fd, "r+")) == NULL)
				_exit(1);
			while (fgets(line, sizeof(line), f) != NULL) {
				line[strcspn(line, "\n")] = '\0';
				if (strcmp(line, "reply on") == 0)
					continue;
				if (strcmp(line, "domains") == 0)
					fputs("error: expected: VM attach|detach "
					    "VID:PID\n", f);
				else
					fprintf(f, "ok %s\n", line);
				fflush(f);
			}
			fclose(f);
		}
		_exit(0);
	}
	close(lfd);
	return pid;
}

/* usbctl asks usbserver which domains run: no virsh of its own. */
START_TEST(test_usbctl_asks_the_daemon_which_domains_run)
{
	char out[OUT], path[PATH_MAX], shell[32], pid[32];
	glob_t g;

	daemon_start(NULL);
	domains("win10\nother\n");
	ck_assert_int_eq(usbctl(out, "--virsh", "/nonexistent/virsh",
	    "046d:c52b", NULL), 0);
	ck_assert_str_eq(out, "");
	ck_assert(log_wait("[VMusb] win10 attached device 046d:c52b", NULL, 0));
	/* Both calls the fake virsh had (list, attach-device) were the
	 * daemon's shell's. */
	snprintf(path, sizeof(path), "%s/shells", w.dir);
	ck_assert_int_gt(slurp(path, shell, sizeof(shell)), 0);
	snprintf(path, sizeof(path), "%s/call.*.ppid", w.dir);
	ck_assert_int_eq(glob(path, 0, NULL, &g), 0);
	ck_assert_uint_eq(g.gl_pathc, 2);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		ck_assert_int_gt(slurp(g.gl_pathv[i], pid, sizeof(pid)), 0);
		ck_assert_str_eq(pid, shell);
	}
	globfree(&g);
}
END_TEST

/* With a usbserver that does not know "domains", usbctl runs virsh list
 * itself, in the C locale. */
START_TEST(test_usbctl_lists_domains_itself_with_an_older_daemon)
{
	char out[OUT], path[PATH_MAX], env[OUT];
	struct dirent *de;
	pid_t server;
	DIR *d;
	bool found = false;

	server = older_server(2);
	domains("win10\n");
	setenv("LC_ALL", "de_DE.UTF-8", 1);
	ck_assert_int_eq(usbctl(out, "--connect", "test:///default", "046d:c52b",
	    NULL), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(waitpid(server, NULL, 0), server);
	/* The list call is the one whose args start with -c URI list. */
	ck_assert_ptr_nonnull(d = opendir(w.dir));
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (strncmp(de->d_name, "call.", 5) != 0 || n < 5 ||
		    strcmp(de->d_name + n - 5, ".args") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", w.dir, de->d_name);
		ck_assert_int_gt(slurp(path, env, sizeof(env)), 0);
		if (strcmp(env, "-c\ntest:///default\nlist\n--state-running\n"
		    "--name\n") != 0)
			continue;
		found = true;
		strcpy(path + strlen(path) - 4, "env");
		ck_assert_int_gt(slurp(path, env, sizeof(env)), 0);
		ck_assert_ptr_nonnull(strstr(env, "LC_ALL=C\n"));
	}
	closedir(d);
	ck_assert(found);
}
END_TEST

START_TEST(test_usbctl_detach_to_a_named_domain)
{
	char out[OUT];

	daemon_start(NULL);
	ck_assert_int_eq(usbctl(out, "--domain", "linux-1", "detach",
	    "046d:c52b", NULL), 0);
	ck_assert(log_wait("[VMusb] linux-1 detached device 046d:c52b", NULL, 0));
}
END_TEST

START_TEST(test_usbctl_no_running_domain_exits_1)
{
	char out[OUT];

	daemon_start(NULL);
	domains("\n");
	ck_assert_int_eq(usbctl(out, "046d:c52b", NULL), 1);
	ck_assert_str_eq(out, "usbctl: no running domain found\n");
}
END_TEST

START_TEST(test_usbctl_reports_each_failure_and_exits_1)
{
	char out[OUT];

	daemon_start(NULL);
	ck_assert_int_eq(usbctl(out, "-d", "failvm", "046d:c52b", "046d:c077",
	    NULL), 1);
	ck_assert_str_eq(out,
	    "usbctl: failvm attach 046d:c52b: Requested operation is not valid: "
	    "fake refusal\n"
	    "usbctl: failvm attach 046d:c077: Requested operation is not valid: "
	    "fake refusal\n");
}
END_TEST

START_TEST(test_usbctl_refuses_a_domain_name_the_daemon_would)
{
	char out[OUT];

	daemon_start(NULL);
	domains("my gaming vm\n");
	ck_assert_int_eq(usbctl(out, "046d:c52b", NULL), 1);
	ck_assert_ptr_nonnull(strstr(out, "domain 'my gaming vm' has a name "
	    "usbserver does not accept"));
}
END_TEST

START_TEST(test_usbctl_usage_errors_exit_2)
{
	char out[OUT];

	ck_assert_int_eq(usbctl(out, NULL), 2);
	ck_assert_int_eq(usbctl(out, "attach", NULL), 2);
	ck_assert_int_eq(usbctl(out, "zzzz:0000", NULL), 2);
	ck_assert_ptr_nonnull(strstr(out, "not a device"));
	ck_assert_int_eq(usbctl(out, "046d:c52b", "-x", NULL), 2);
	ck_assert_int_eq(usbctl(out, "--help", NULL), 0);
	ck_assert_ptr_nonnull(strstr(out, "usage: usbctl"));
}
END_TEST

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(test_usbctl_retries_then_gives_up_without_a_daemon)
{
	char out[OUT], want[OUT];
	int64_t t0 = mono_ms(), took;

	ck_assert_int_eq(usbctl(out, "-d", "win10", "046d:c52b", NULL), 1);
	took = mono_ms() - t0;
	snprintf(want, sizeof(want), "usbctl: cannot connect to usbserver at "
	    "%s: No such file or directory\n", w.sock);
	ck_assert_str_eq(out, want);
	/* Five tries, a second apart. */
	ck_assert_int_ge(took, (CONNECT_TRIES - 1) * CONNECT_PAUSE * 1000);
}
END_TEST

START_TEST(test_usbctl_without_replies_says_so)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char out[OUT], buf[512];
	int lfd, fd;
	pid_t pid;

	/* A server of the guide's kind: reads its lines, answers nothing. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w.sock);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	if ((pid = fork()) == 0) {
		fd = accept(lfd, NULL, NULL);
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		_exit(0);
	}
	ck_assert_int_eq(usbctl(out, "-d", "win10", "046d:c52b", NULL), 1);
	ck_assert_str_eq(out, "usbctl: win10 attach 046d:c52b: no reply from "
	    "usbserver (is it an older server without replies?)\n");
	waitpid(pid, NULL, 0);
}
END_TEST

/* Real virsh: discovery through libvirt's test driver, whose running
 * domain is "test"; with the daemon on real virsh too, libvirt's own
 * refusal comes back to the user. */
START_TEST(test_usbctl_with_real_virsh_test_driver)
{
	char out[OUT];
	char *argv[] = { (char *)USBCTL_BIN, (char *)"--socket", w.sock,
	    (char *)"--connect", (char *)"test:///default", (char *)"046d:c52b",
	    NULL };

	daemon_start("--virsh", "/usr/bin/virsh", "--connect", "test:///default",
	    NULL);
	ck_assert_int_eq(WEXITSTATUS(run(argv, NULL, out, sizeof(out))), 1);
	ck_assert_str_eq(out, "usbctl: test attach 046d:c52b: this function is "
	    "not supported by the connection driver: virDomainAttachDevice\n");
	ck_assert(log_wait("[VMusb] test attaching device 046d:c52b failed: "
	    "this function is not supported", NULL, 0));
}
END_TEST

/* usbctl finds the domain through the daemon's real virsh shell, and
 * none of its own. */
START_TEST(test_usbctl_real_virsh_discovery_names_test)
{
	char out[OUT];
	char *argv[] = { (char *)USBCTL_BIN, (char *)"--socket", w.sock,
	    (char *)"--virsh", (char *)"/nonexistent/virsh", (char *)"046d:c52b",
	    NULL };

	daemon_start("--virsh", "/usr/bin/virsh", "--connect", "test:///default",
	    NULL);
	ck_assert_int_eq(WEXITSTATUS(run(argv, NULL, out, sizeof(out))), 1);
	ck_assert_str_eq(out, "usbctl: test attach 046d:c52b: this function is "
	    "not supported by the connection driver: virDomainAttachDevice\n");
}
END_TEST


/* ------------------------------------------------------------------ */
/* status, toggle, devices, the configuration file                     */

static void
put(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", w.dir, name);
	ck_assert_ptr_nonnull(f = fopen(path, "we"));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_usbctl_status_shows_each_domains_devices)
{
	char out[OUT];

	domains("win10\nlinux\n");
	put("state.win10", "046d c52b 1 3\n1050 0407 2 5\n");
	ck_assert_int_eq(usbctl(out, "status", NULL), 0);
	ck_assert_str_eq(out,
	    "DOMAIN                   DEVICE     BUS:DEV\n"
	    "win10                    046d:c52b  001:003\n"
	    "win10                    1050:0407  002:005\n"
	    "linux                    -         \n");
	ck_assert_int_eq(usbctl(out, "--json", "status", NULL), 0);
	ck_assert_str_eq(out, "[{\"domain\":\"win10\",\"devices\":["
	    "{\"device\":\"046d:c52b\",\"bus\":1,\"devnum\":3},"
	    "{\"device\":\"1050:0407\",\"bus\":2,\"devnum\":5}]},"
	    "{\"domain\":\"linux\",\"devices\":[]}]\n");
	ck_assert_int_eq(usbctl(out, "--json", "--domain", "linux", "status",
	    NULL), 0);
	ck_assert_str_eq(out, "[{\"domain\":\"linux\",\"devices\":[]}]\n");
}
END_TEST

/* Two devices with one VID:PID: toggle by port moves each alone, known
 * in the domain by the address the daemon gave libvirt. */
START_TEST(test_usbctl_toggle_by_port_tells_twins_apart)
{
	char out[OUT], id[32], sys[300];

	snprintf(sys, sizeof(sys), "%s/sys", w.dir);
	sysfs_device(sys, "1-2", "046d", "c52b", 1, 5);
	sysfs_device(sys, "1-3", "046d", "c52b", 1, 6);
	daemon_start("--sysfs", sys, NULL);
	domains("win10\n");
	ck_assert_int_eq(usbctl(out, "--sysfs", sys, "toggle", "046d:c52b@1-3",
	    NULL), 0);
	event_wait("end", "win10", id, sizeof(id));
	ck_assert_int_eq(usbctl(out, "--sysfs", sys, "toggle", "046d:c52b@1-2",
	    NULL), 0);
	event_wait("end", "win10", id, sizeof(id));
	ck_assert(log_wait("[VMusb] win10 attached device 046d:c52b@1-2", NULL,
	    0));
	ck_assert_int_eq(usbctl(out, "--sysfs", sys, "toggle", "046d:c52b@1-3",
	    NULL), 0);
	event_wait("end", "win10", id, sizeof(id));
	ck_assert(log_wait("[VMusb] win10 detached device 046d:c52b@1-3", NULL,
	    0));
	/* usbserver's ledger holds what it attached, by the port named. */
	ck_assert_int_eq(usbctl(out, "--json", "status", NULL), 0);
	ck_assert_msg(strncmp(out, "[{\"domain\":\"win10\",\"devices\":["
	    "{\"device\":\"046d:c52b\",\"bus\":1,\"devnum\":5}],"
	    "\"ledger\":[{\"device\":\"046d:c52b@1-2\",\"port\":\"1-2\","
	    "\"since\":", strlen("[{\"domain\":\"win10\",\"devices\":["
	    "{\"device\":\"046d:c52b\",\"bus\":1,\"devnum\":5}],"
	    "\"ledger\":[{\"device\":\"046d:c52b@1-2\",\"port\":\"1-2\","
	    "\"since\":")) == 0, "%s", out);
	ck_assert_ptr_nonnull(strstr(out,
	    "}],\"lease\":null,\"assigned\":[]}]\n"));
}
END_TEST

START_TEST(test_usbctl_toggle_attaches_then_detaches)
{
	char out[OUT], id[32];

	daemon_start(NULL);
	domains("win10\n");
	ck_assert_int_eq(usbctl(out, "toggle", "046d:c52b", NULL), 0);
	event_wait("end", "win10", id, sizeof(id));
	ck_assert_int_eq(usbctl(out, "status", NULL), 0);
	ck_assert_ptr_nonnull(strstr(out, "win10                    046d:c52b"));
	/* and usbserver's ledger has it, to give back if need be */
	ck_assert_msg(strstr(out, "GIVEN BACK BY USBSERVER  DEVICE     PORT"
	    "       SINCE\nwin10                    046d:c52b  -          20")
	    != NULL, "%s", out);
	ck_assert_int_eq(usbctl(out, "toggle", "046d:c52b", NULL), 0);
	event_wait("end", "win10", id, sizeof(id));
	ck_assert_int_eq(usbctl(out, "--json", "status", NULL), 0);
	ck_assert_str_eq(out, "[{\"domain\":\"win10\",\"devices\":[],"
	    "\"ledger\":[],\"lease\":null,\"assigned\":[]}]\n");
	ck_assert(log_wait("[VMusb] win10 attached device 046d:c52b", NULL, 0));
	ck_assert(log_wait("[VMusb] win10 detached device 046d:c52b", NULL, 0));
}
END_TEST

/* A sysfs tree of the test's: two devices, an interface, a root hub. */
static void
fake_sysfs(char *dir, size_t size)
{
	static const char *const files[][2] = {
	    { "1-1/idVendor", "046d\n" }, { "1-1/idProduct", "c52b\n" },
	    { "1-1/busnum", "1\n" }, { "1-1/devnum", "3\n" },
	    { "1-1/manufacturer", "Logitech\n" },
	    { "1-1/product", "USB \"Receiver\"\x1b[2J\n" },
	    { "2-3/idVendor", "0781\n" }, { "2-3/idProduct", "5581\n" },
	    { "2-3/busnum", "2\n" }, { "2-3/devnum", "7\n" },
	    { "1-1:1.0/bInterfaceClass", "03\n" },
	    { "usb1/idVendor", "1d6b\n" }, { "usb1/idProduct", "0002\n" } };
	char path[512];

	snprintf(dir, size, "%s/sys", w.dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char sub[256];

		snprintf(sub, sizeof(sub), "sys/%s", files[i][0]);
		*strchr(sub + 4, '/') = '\0';
		snprintf(path, sizeof(path), "%s/%s", w.dir, sub);
		if (mkdir(path, 0755) == -1)
			ck_assert_int_eq(errno, EEXIST);
		snprintf(sub, sizeof(sub), "sys/%s", files[i][0]);
		put(sub, files[i][1]);
	}
}

START_TEST(test_usbctl_devices_lists_the_host_and_marks_attached_ones)
{
	char out[OUT], sys[256];

	fake_sysfs(sys, sizeof(sys));
	domains("win10\n");
	put("state.win10", "046d c52b 1 3\n");
	ck_assert_int_eq(usbctl(out, "--sysfs", sys, "devices", NULL), 0);
	ck_assert_str_eq(out,
	    "DEVICE     PORT      BUS:DEV ATTACHED TO      DESCRIPTION\n"
	    "046d:c52b  1-1       001:003 win10            Logitech USB \"Receiver\"\\x1b[2J\n"
	    "0781:5581  2-3       002:007 -                \n");
	ck_assert_int_eq(usbctl(out, "--sysfs", sys, "--json", "devices", NULL), 0);
	ck_assert_str_eq(out, "[{\"device\":\"046d:c52b\",\"port\":\"1-1\","
	    "\"bus\":1,\"devnum\":3,"
	    "\"manufacturer\":\"Logitech\",\"product\":\"USB \\\"Receiver\\\""
	    "\\u001b[2J\",\"attached_to\":\"win10\"},"
	    "{\"device\":\"0781:5581\",\"port\":\"2-3\",\"bus\":2,\"devnum\":7,"
	    "\"manufacturer\":\"\",\"product\":\"\",\"attached_to\":null}]\n");
}
END_TEST

/* virsh cannot list the domains (libvirt down, or a user outside its
 * group): the host's devices are still listed, and the exit status says
 * that what they are attached to is unknown. */
START_TEST(test_usbctl_devices_fails_when_virsh_list_does)
{
	char out[OUT], sys[256];

	fake_sysfs(sys, sizeof(sys));
	ck_assert_int_eq(usbctl(out, "--sysfs", sys, "--virsh", "/bin/false",
	    "devices", NULL), 1);
	ck_assert_msg(strstr(out, "usbctl: /bin/false list failed\n") != NULL,
	    "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "\n046d:c52b  1-1       001:003 -  "));
	ck_assert_int_eq(usbctl(out, "--sysfs", sys, "--virsh", "/bin/false",
	    "status", NULL), 1);
	ck_assert_ptr_null(strstr(out, "group libvirt"));	/* root needs none */
}
END_TEST

/* A user outside libvirt's group cannot list the system's domains: usbctl
 * says what that user needs. */
START_TEST(test_usbctl_tells_a_user_outside_libvirt_what_to_do)
{
	char out[OUT], empty[256];
	char *argv[] = { (char *)"setpriv", (char *)"--reuid=65534",
	    (char *)"--regid=65534", (char *)"--clear-groups", (char *)"--",
	    (char *)USBCTL_BIN, (char *)"--virsh", (char *)"/bin/false",
	    (char *)"--config", empty, (char *)"046d:c52b", NULL };

	if (geteuid() != 0 && test_skips("usbctl group hint", "needs root to "
	    "run it as another user"))
		return;
	ck_assert_int_eq(chmod(scratch_dir(), 0711), 0);
	ck_assert_int_eq(chmod(w.dir, 0711), 0);
	snprintf(empty, sizeof(empty), "%s/empty.conf", w.dir);
	put("empty.conf", "");
	ck_assert_int_eq(WEXITSTATUS(run(argv, NULL, out, sizeof(out))), 1);
	ck_assert_msg(strstr(out, "usbctl: to see the system's domains, a user "
	    "must be in group libvirt (adduser USER libvirt, then log in "
	    "again) and pass --connect qemu:///system\n") != NULL, "%s", out);
}
END_TEST

/* Descriptor strings are any bytes: the JSON stays valid UTF-8, and a
 * device libvirt has not placed yet has null numbers. */
START_TEST(test_usbctl_json_is_valid_whatever_the_bytes)
{
	char out[OUT], sys[256];

	snprintf(sys, sizeof(sys), "%s/sys", w.dir);
	ck_assert_int_eq(mkdir(sys, 0755), 0);
	snprintf(out, sizeof(out), "%s/3-1", sys);
	ck_assert_int_eq(mkdir(out, 0755), 0);
	put("sys/3-1/idVendor", "1234\n");
	put("sys/3-1/idProduct", "abcd\n");
	put("sys/3-1/busnum", "3\n");
	put("sys/3-1/devnum", "1\n");
	/* é; a stray byte and a cut sequence; a surrogate; ™ */
	put("sys/3-1/product", "caf\xc3\xa9 \xff\xc3 \xed\xa0\x80 \xe2\x84\xa2\n");
	ck_assert_int_eq(usbctl(out, "--sysfs", sys, "--json", "devices", NULL), 0);
	ck_assert_str_eq(out, "[{\"device\":\"1234:abcd\",\"port\":\"3-1\",\"bus\":3,"
	    "\"devnum\":1,\"manufacturer\":\"\",\"product\":\"caf\xc3\xa9 "
	    "\\ufffd\\ufffd \\ufffd\\ufffd\\ufffd \xe2\x84\xa2\","
	    "\"attached_to\":null}]\n");

	domains("win10\n");
	put("state.win10", "046d c52b\n");	/* no bus and device yet */
	ck_assert_int_eq(usbctl(out, "--json", "status", NULL), 0);
	ck_assert_str_eq(out, "[{\"domain\":\"win10\",\"devices\":["
	    "{\"device\":\"046d:c52b\",\"bus\":null,\"devnum\":null}]}]\n");
}
END_TEST

/* A configuration file must be a regular file of sensible size: a FIFO
 * (that nobody writes) must not hang usbctl, nor /dev/zero make it spin;
 * each is refused at once. */
/* A daemon whose queue is full (it takes no one, or someone filled it):
 * usbctl gives up after its tries, and says why, instead of waiting in
 * connect() with no end. */
START_TEST(test_usbctl_gives_up_on_a_full_queue_and_says_why)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd, fds[64], n = 0;
	char out[OUT];

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", w.sock);
	ck_assert_int_ne(lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0),
	    -1);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	do {
		ck_assert_int_lt(n, 64);
		ck_assert_int_ne(fds[n] = socket(AF_UNIX, SOCK_STREAM |
		    SOCK_CLOEXEC | SOCK_NONBLOCK, 0), -1);
	} while (connect(fds[n++], (struct sockaddr *)&sa, sizeof(sa)) == 0);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(usbctl(out, "--domain", "win10", "046d:c52b", NULL), 1);
	ck_assert_msg(strstr(out, "takes no more clients: its queue stayed "
	    "full") != NULL, "%s", out);
	while (n > 0)
		close(fds[--n]);
	close(lfd);
}
END_TEST

START_TEST(test_usbctl_config_is_a_regular_file_or_refused)
{
	char out[OUT], fifo[256];

	snprintf(fifo, sizeof(fifo), "%s/fifo.conf", w.dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	ck_assert_int_eq(usbctl(out, "--config", fifo, "status", NULL), 2);
	ck_assert_ptr_nonnull(strstr(out, "fifo.conf: Invalid argument"));
	ck_assert_int_eq(usbctl(out, "--config", "/dev/zero", "status", NULL), 2);
	ck_assert_ptr_nonnull(strstr(out, "/dev/zero: Invalid argument"));
}
END_TEST

START_TEST(test_usbctl_config_gives_domain_and_devices)
{
	char out[OUT], id[32], args[OUT], file[256];

	daemon_start(NULL);
	domains("win10\nlinux\n");
	snprintf(file, sizeof(file), "%s/usbctl.conf", w.dir);
	put("usbctl.conf", "# the hotkey's\ndomain linux\ndevice 046D:C52B\n"
	    "device 1050:0407  # key\n");
	ck_assert_int_eq(usbctl(out, "--config", file, "toggle", NULL), 0);
	event_wait("end", "linux", id, sizeof(id));
	ck_assert_int_gt(call_file(id, "args", args, sizeof(args)), 0);
	ck_assert_ptr_nonnull(strstr(args, "attach-device\n--domain\nlinux\n"));
	event_wait("end", "linux", id, sizeof(id));

	put("usbctl.conf", "domain linux\ndevice 046d\n");
	ck_assert_int_eq(usbctl(out, "--config", file, "toggle", NULL), 2);
	ck_assert_ptr_nonnull(strstr(out, "usbctl.conf:2: not a device"));
	put("usbctl.conf", "domain linux\ndevice 046d:c52b");
	ck_assert_int_eq(usbctl(out, "--config", file, "status", NULL), 0);
	{
		FILE *f;
		char path[300];

		snprintf(path, sizeof(path), "%s/usbctl.conf", w.dir);
		ck_assert_ptr_nonnull(f = fopen(path, "we"));
		fwrite("device 046d:c52b\0junk\n", 1, 23, f);
		ck_assert_int_eq(fclose(f), 0);
	}
	ck_assert_int_eq(usbctl(out, "--config", file, "status", NULL), 2);
	ck_assert_ptr_nonnull(strstr(out, "usbctl.conf:1: a NUL byte"));
	put("usbctl.conf", "colour blue\n");
	ck_assert_int_eq(usbctl(out, "--config", file, "status", NULL), 2);
	ck_assert_ptr_nonnull(strstr(out, "usbctl.conf:1: expected"));
	/* Nothing configured and nothing named: a usage error. */
	ck_assert_int_eq(usbctl(out, "toggle", NULL), 2);
	ck_assert_ptr_nonnull(strstr(out, "no devices"));
}
END_TEST

START_TEST(test_usbctl_explains_a_device_held_elsewhere_or_ambiguous)
{
	char out[OUT];

	daemon_start(NULL);
	ck_assert_int_eq(usbctl(out, "--domain", "held-vm", "046d:c52b", NULL), 1);
	ck_assert_ptr_nonnull(strstr(out, "is in use by driver QEMU, domain "
	    "other\nusbctl: another VM holds this device: detach it there first"));
	ck_assert_int_eq(usbctl(out, "--domain", "multi-vm", "046d:c52b", NULL), 1);
	ck_assert_ptr_nonnull(strstr(out, "usbctl: two host devices share this "
	    "VID:PID"));
}
END_TEST

/* With the twins in the daemon's sysfs, the reply names their ports, and
 * usbctl shows the command that names the first. */
START_TEST(test_usbctl_shows_the_port_form_for_twins)
{
	char out[OUT], sys[300];

	snprintf(sys, sizeof(sys), "%s/sys", w.dir);
	sysfs_device(sys, "1-10", "046d", "c52b", 1, 5);
	sysfs_device(sys, "1-9", "046d", "c52b", 1, 6);
	daemon_start("--sysfs", sys, NULL);
	ck_assert_int_eq(usbctl(out, "--domain", "multi-vm", "046d:c52b", NULL), 1);
	ck_assert_ptr_nonnull(strstr(out, "to specify one; name one, as "
	    "046d:c52b@1-9; it is at ports 1-9, 1-10\n"
	    "usbctl: two host devices share 046d:c52b: name one by its port "
	    "(usbctl devices shows them), as in:\n"
	    "    usbctl --domain multi-vm attach 046d:c52b@1-9\n"));
}
END_TEST


/* The bash completion, sourced by a real bash: commands, options, the
 * running domains (the fake virsh on PATH), the host's devices. */
#define BASH_COMPLETION	"/usr/share/bash-completion/bash_completion"

/* Completes the words (bash syntax) at cword; with bash-completion's
 * framework loaded first if line (the command line as typed, which it
 * reads) is not NULL, as on a desktop. */
static void
complete_words(const char *line, const char *words, int cword, char *out,
    size_t size)
{
	char script[1536], sys[256], env_sys[300], env_path[1200];
	char *argv[] = { (char *)"env", env_sys, env_path, (char *)"bash",
	    (char *)"--norc", (char *)"-c", script, NULL };

	snprintf(sys, sizeof(sys), "%s/sys", w.dir);
	snprintf(env_sys, sizeof(env_sys), "USBCTL_SYSFS=%s", sys);
	snprintf(env_path, sizeof(env_path), "PATH=%s:%s", w.dir,
	    getenv("PATH") != NULL ? getenv("PATH") : "/usr/bin:/bin");
	snprintf(script, sizeof(script), "cd '%s' && %s source "
	    "'%s/contrib/usbctl.bash' && COMP_WORDS=(%s) && COMP_CWORD=%d && "
	    "COMP_LINE='%s' && COMP_POINT=${#COMP_LINE} && _usbctl && "
	    "printf '%%s\\n' \"${COMPREPLY[@]}\" | sort", w.dir,
	    line != NULL ? "source " BASH_COMPLETION " &&" : "", SRC_DIR, words,
	    cword, line != NULL ? line : "");
	ck_assert_int_eq(run(argv, NULL, out, size), 0);
}

START_TEST(test_bash_completion_offers_commands_domains_and_devices)
{
	char out[OUT], sys[256];

	fake_sysfs(sys, sizeof(sys));
	domains("win10\nlinux\n");
	complete_words(NULL, "usbctl t", 1, out, sizeof(out));
	ck_assert_str_eq(out, "toggle\n");
	complete_words(NULL, "usbctl --do", 1, out, sizeof(out));
	ck_assert_str_eq(out, "--domain\n");
	complete_words(NULL, "usbctl --domain ''", 2, out, sizeof(out));
	ck_assert_str_eq(out, "linux\nwin10\n");
	complete_words(NULL, "usbctl toggle ''", 2, out, sizeof(out));
	ck_assert_str_eq(out, "046d:c52b\n0781:5581\n");
	complete_words(NULL, "usbctl status ''", 2, out, sizeof(out));
	ck_assert_str_eq(out, "\n");
	complete_words(NULL, "usbctl r", 1, out, sizeof(out));
	ck_assert_str_eq(out, "release\n");
	complete_words(NULL, "usbctl release ''", 2, out, sizeof(out));
	ck_assert_str_eq(out, "\n");
}
END_TEST

/*
 * The host's escape: "usbctl release" has usbserver give back what it
 * attached to every domain, "-d VM" to that one only; the domain of a
 * configuration file is no default here, and a release takes no devices.
 */
START_TEST(test_usbctl_release_asks_the_daemon_to_give_back)
{
	char out[OUT];

	daemon_start(NULL);
	domains("win10\nlinux\n");
	write_file(w.config, "domain linux\n", 0600);
	ck_assert_int_eq(usbctl(out, "-d", "win10", "attach", "046d:c52b",
	    "1050:0407", NULL), 0);
	ck_assert_int_eq(usbctl(out, "attach", "0781:5581", NULL), 0);
	ck_assert_int_eq(usbctl(out, "release", "046d:c52b", NULL), 2);
	ck_assert_int_eq(usbctl(out, "-d", "no such", "release", NULL), 2);
	ck_assert_int_eq(usbctl(out, "-d", "win10", "release", NULL), 0);
	ck_assert_str_eq(out, "");
	ck_assert(log_wait("[VMusb] win10 released: gave back device 046d:c52b",
	    NULL, 0));
	ck_assert(log_wait("[VMusb] win10 released: gave back device 1050:0407",
	    NULL, 0));
	ck_assert(log_wait("[VMusb] release of win10: gave back 2 devices",
	    NULL, 0));
	ck_assert_int_eq(usbctl(out, "release", NULL), 0);
	ck_assert(log_wait("[VMusb] linux released: gave back device 0781:5581",
	    NULL, 0));
	ck_assert(log_wait("[VMusb] release of every domain: gave back 1 device",
	    NULL, 0));
	/* A domain that has nothing to give back: still "ok". */
	ck_assert_int_eq(usbctl(out, "-d", "linux", "release", NULL), 0);
	ck_assert(log_wait("[VMusb] release of linux: gave back 0 devices",
	    NULL, 0));
}
END_TEST

/* status shows the daemon's assign lines, and whether each domain has
 * its device. */
START_TEST(test_usbctl_status_shows_the_assignments)
{
	char out[OUT], daemon_conf[PATH_MAX];

	snprintf(daemon_conf, sizeof(daemon_conf), "%s/daemon.conf", w.dir);
	write_file(daemon_conf, "assign win10 046d:c52b\nassign linux 1050:0407@1-3\n",
	    0600);
	daemon_start("--config", daemon_conf, NULL);
	domains("win10\n");
	ck_assert_msg(usbctl(out, "-d", "win10", "attach", "046d:c52b",
	    NULL) == 0, "%s", out);
	ck_assert_int_eq(usbctl(out, "status", NULL), 0);
	ck_assert_msg(strstr(out, "win10                    assigned 046d:c52b, "
	    "attached\n") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "linux                    assigned "
	    "1050:0407@1-3, waiting for the domain or the device\n") != NULL,
	    "%s", out);
	ck_assert_int_eq(usbctl(out, "--json", "status", NULL), 0);
	ck_assert_msg(strstr(out, "\"assigned\":[{\"device\":\"046d:c52b\","
	    "\"attached\":true}]") != NULL, "%s", out);
}
END_TEST

/* status shows, besides what libvirt says is attached, what usbserver
 * would give back by itself: its ledger, and each guest's lease. */
START_TEST(test_usbctl_status_shows_the_ledger_and_the_leases)
{
	char out[OUT], sys[300];
	struct client c;

	snprintf(sys, sizeof(sys), "%s/sys", w.dir);
	sysfs_device(sys, "1-2", "046d", "c52b", 1, 5);
	daemon_start("--sysfs", sys, NULL);
	domains("win10\n");
	ck_assert_int_eq(usbctl(out, "--sysfs", sys, "-d", "win10", "attach",
	    "046d:c52b", NULL), 0);
	client_open(&c);
	client_send(&c, "reply on\nwin10 alive 600\ngone alive 30\n");
	expect_reply(&c, "ok win10 alive 600");
	expect_reply(&c, "ok gone alive 30");
	client_close(&c);
	ck_assert_int_eq(usbctl(out, "status", NULL), 0);
	ck_assert_msg(strstr(out, "GIVEN BACK BY USBSERVER  DEVICE     PORT"
	    "       SINCE\nwin10                    046d:c52b  1-2        20")
	    != NULL, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "\nwin10                    lease "
	    "600 s, "));
	ck_assert_ptr_nonnull(strstr(out, "\ngone                     lease "
	    "30 s, "));
	ck_assert_int_eq(usbctl(out, "-d", "win10", "status", NULL), 0);
	ck_assert_ptr_null(strstr(out, "gone"));
	/* In JSON, a domain only usbserver knows of has devices null. */
	ck_assert_int_eq(usbctl(out, "--json", "status", NULL), 0);
	ck_assert_msg(strstr(out, "\"lease\":{\"seconds\":600,\"left\":") !=
	    NULL, "%s", out);
	ck_assert_msg(strstr(out, ",{\"domain\":\"gone\",\"devices\":null,"
	    "\"ledger\":[],\"lease\":{\"seconds\":30,\"left\":") != NULL, "%s",
	    out);
}
END_TEST

/* A domain's name is offered as it is, never run. */
START_TEST(test_bash_completion_never_runs_a_domain_name)
{
	char out[OUT], path[300];

	domains("$(touch${IFS}pwned)\n`touch pwned`\nwin10\n");
	complete_words(NULL, "usbctl --domain ''", 2, out, sizeof(out));
	ck_assert_str_eq(out, "$(touch${IFS}pwned)\n`touch pwned`\nwin10\n");
	snprintf(path, sizeof(path), "%s/pwned", w.dir);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

/* With bash-completion's framework, as readline splits "046d:c5". */
START_TEST(test_bash_completion_completes_after_the_colon)
{
	char out[OUT], sys[256];

	if (access(BASH_COMPLETION, R_OK) == -1 && test_skips("completion "
	    "test", "no bash-completion: apt-get install bash-completion"))
		return;
	fake_sysfs(sys, sizeof(sys));
	complete_words("usbctl toggle 046d:c5", "usbctl toggle 046d : c5", 4,
	    out, sizeof(out));
	ck_assert_str_eq(out, "c52b\n");
}
END_TEST

/* Two devices with one VID:PID are offered by port as well, and any
 * device is once the word has an @. bash-completion takes the @ out of
 * readline's word breaks; the colon stays one. */
START_TEST(test_bash_completion_offers_ports_where_needed)
{
	char out[OUT], sys[256];

	fake_sysfs(sys, sizeof(sys));
	sysfs_device(sys, "1-4.2", "046d", "c52b", 1, 9);
	complete_words(NULL, "usbctl toggle ''", 2, out, sizeof(out));
	ck_assert_str_eq(out, "046d:c52b\n046d:c52b@1-1\n046d:c52b@1-4.2\n"
	    "0781:5581\n");
	if (access(BASH_COMPLETION, R_OK) == -1 && test_skips("completion "
	    "test", "no bash-completion: apt-get install bash-completion"))
		return;
	complete_words("usbctl 046d:c52b@1-", "usbctl 046d : c52b@1-", 3,
	    out, sizeof(out));
	ck_assert_str_eq(out, "c52b@1-1\nc52b@1-4.2\n");
	complete_words("usbctl 0781:5581@", "usbctl 0781 : 5581@", 3, out,
	    sizeof(out));
	ck_assert_str_eq(out, "5581@2-3\n");
}
END_TEST

/* ------------------------------------------------------------------ */
/* usbctl watch: its configuration and its chords, in process          */

static enum ctl_key
ctl(const char *line, struct ctl_line *l)
{
	memset(l, 0, sizeof(*l));
	return ctl_line_parse(line, strlen(line), l);
}

/* The line is refused, and why says so. */
static void
ctl_refused(const char *line, const char *why)
{
	struct ctl_line l;

	ck_assert_msg(ctl(line, &l) == CTL_ERROR, "'%s' was taken", line);
	ck_assert_msg(strstr(l.why, why) != NULL, "'%s': %s", line, l.why);
}

START_TEST(test_watch_config_lines_are_parsed_strictly)
{
	struct ctl_line l;
	const char *p;

	ck_assert_int_eq(ctl("hook guest /usr/local/bin/ddc-input 0x0f "
	    "'$HOME' a;b # a comment", &l), CTL_HOOK);
	ck_assert(l.hook.guest);
	ck_assert_uint_eq(l.hook.nwords, 4);
	p = l.hook.words;
	ck_assert_str_eq(p, "/usr/local/bin/ddc-input");
	p += strlen(p) + 1;
	ck_assert_str_eq(p, "0x0f");
	p += strlen(p) + 1;
	ck_assert_str_eq(p, "'$HOME'");
	p += strlen(p) + 1;
	ck_assert_str_eq(p, "a;b");
	ck_assert_int_eq(ctl("hook host /bin/true", &l), CTL_HOOK);
	ck_assert(!l.hook.guest);
	ck_assert_uint_eq(l.hook.nwords, 1);
	ck_assert_int_eq(ctl("hook host /x 1 2 3 4 5 6 7 8", &l), CTL_HOOK);
	ck_assert_uint_eq(l.hook.nwords, 9);
	ctl_refused("hook host /x 1 2 3 4 5 6 7 8 9", "at most 8 arguments");
	ctl_refused("hook guest ddcutil", "absolute path");
	ctl_refused("hook sideways /bin/true", "'guest' or the 'host'");
	ctl_refused("hook guest", "expected 'hook guest|host PATH");
	ctl_refused("hook guest /bin/x \x01", "printable");

	ck_assert_int_eq(ctl("hook-timeout 30", &l), CTL_HOOK_TIMEOUT);
	ck_assert_uint_eq(l.seconds, 30);
	ctl_refused("hook-timeout 0", "1 to 3600");
	ctl_refused("hook-timeout 3601", "1 to 3600");

	ck_assert_int_eq(ctl("keyboard 046D:C52B", &l), CTL_KEYBOARD);
	ck_assert(l.keyboard.by_ids);
	ck_assert_uint_eq(l.keyboard.ids.vendor, 0x046d);
	ck_assert_uint_eq(l.keyboard.ids.product, 0xc52b);
	ck_assert_int_eq(ctl("keyboard  AT Translated Set 2 keyboard  ", &l),
	    CTL_KEYBOARD);
	ck_assert(!l.keyboard.by_ids);
	ck_assert_str_eq(l.keyboard.name, "AT Translated Set 2 keyboard");
	ctl_refused("keyboard", "expected 'keyboard VID:PID'");
	ctl_refused("keyboard 046d:c52b@1-2", "not by a port");

	ck_assert_int_eq(ctl("hotkey KEY_LEFTCTRL+KEY_RIGHTCTRL toggle", &l),
	    CTL_HOTKEY);
	ck_assert_uint_eq(l.hotkey.chord.n, 2);
	ck_assert_uint_eq(l.hotkey.chord.key[0], KEY_LEFTCTRL);
	ck_assert_uint_eq(l.hotkey.chord.key[1], KEY_RIGHTCTRL);
	ck_assert_int_eq(l.hotkey.verb, TOGGLE);
	ck_assert_int_eq(ctl("hotkey KEY_PAUSE release", &l), CTL_HOTKEY);
	ck_assert_uint_eq(l.hotkey.chord.n, 1);
	ck_assert_uint_eq(l.hotkey.chord.key[0], KEY_PAUSE);
	ck_assert_int_eq(l.hotkey.verb, RELEASE);
	ck_assert_int_eq(ctl("hotkey 119+BTN_SIDE attach", &l), CTL_HOTKEY);
	ck_assert_uint_eq(l.hotkey.chord.key[0], 119);
	ck_assert_uint_eq(l.hotkey.chord.key[1], BTN_SIDE);
	ctl_refused("hotkey KEY_NOPE toggle", "1 to 4 keys");
	ctl_refused("hotkey KEY_A+KEY_A toggle", "each once");
	ctl_refused("hotkey KEY_A+ toggle", "1 to 4 keys");
	ctl_refused("hotkey +KEY_A toggle", "1 to 4 keys");
	ctl_refused("hotkey KEY_A+KEY_B+KEY_C+KEY_D+KEY_E toggle", "1 to 4");
	ctl_refused("hotkey 0 toggle", "1 to 4 keys");
	ctl_refused("hotkey 768 toggle", "1 to 4 keys");
	ctl_refused("hotkey KEY_A dance", "toggle, attach, detach or release");
	ctl_refused("hotkey KEY_A", "expected 'hotkey");

	/* The lines of before, as before. */
	ck_assert_int_eq(ctl("domain win10", &l), CTL_DOMAIN);
	ck_assert_str_eq(l.text, "win10");
	ck_assert_int_eq(ctl("device 046d:c52b@1-2", &l), CTL_DEVICE);
	ck_assert_str_eq(l.device.port, "1-2");
	ck_assert_int_eq(ctl("  # nothing", &l), CTL_NOTHING);
	ctl_refused("domain -x", "expected domain, device");
	ctl_refused("device 046d", "not a device");
	ctl_refused("hooks guest /bin/true", "expected domain, device");
}
END_TEST

/* Feeds key events: the hotkey each fires, as "i" or "-" a key. */
static void
expect_chords(const struct hotkey *h, int nh, const int (*ev)[2], size_t n,
    const char *want)
{
	struct keys_down k = { .n = 0 };
	char got[64] = "";

	for (size_t i = 0; i < n && i < sizeof(got) - 1; i++) {
		int f = chord_feed(&k, h, nh, (unsigned)ev[i][0], ev[i][1]);

		got[i] = f < 0 ? '-' : (char)('0' + f);
	}
	ck_assert_str_eq(got, want);
}

START_TEST(test_a_chord_fires_once_with_exactly_its_keys_down)
{
	struct hotkey h[2];
	struct ctl_line l;
	const int ctrls[][2] = {
		{ KEY_LEFTCTRL, 1 }, { KEY_RIGHTCTRL, 1 },	/* fires */
		{ KEY_RIGHTCTRL, 2 }, { KEY_LEFTCTRL, 2 },	/* repeats */
		{ KEY_RIGHTCTRL, 0 }, { KEY_RIGHTCTRL, 1 },	/* again */
		{ KEY_LEFTCTRL, 0 }, { KEY_RIGHTCTRL, 0 },
		{ KEY_RIGHTCTRL, 1 }, { KEY_LEFTCTRL, 1 },	/* either order */
		{ KEY_LEFTCTRL, 0 }, { KEY_RIGHTCTRL, 0 },
		/* Another key held: no chord, even when it goes. */
		{ KEY_LEFTSHIFT, 1 }, { KEY_LEFTCTRL, 1 }, { KEY_RIGHTCTRL, 1 },
		{ KEY_LEFTSHIFT, 0 }, { KEY_LEFTCTRL, 0 }, { KEY_RIGHTCTRL, 0 },
		/* The single key, alone; a release never seen, a stray up. */
		{ KEY_PAUSE, 1 }, { KEY_PAUSE, 1 }, { KEY_A, 0 },
		{ KEY_PAUSE, 0 }, { KEY_PAUSE, 1 }, { KEY_PAUSE, 0 },
		/* Out of range, and values evdev never sends. */
		{ KEY_MAX + 1, 1 }, { KEY_PAUSE, 7 }, { KEY_PAUSE, -1 },
	};
	const int dropped[][2] = { { KEY_RIGHTCTRL, 1 } };
	unsigned char bits[KEY_MAX / 8 + 1] = { 0 };
	struct keys_down k = { .n = 0 };

	ck_assert_int_eq(ctl("hotkey KEY_LEFTCTRL+KEY_RIGHTCTRL toggle", &l),
	    CTL_HOTKEY);
	h[0] = l.hotkey;
	ck_assert_int_eq(ctl("hotkey KEY_PAUSE release", &l), CTL_HOTKEY);
	h[1] = l.hotkey;
	expect_chords(h, 2, ctrls, sizeof(ctrls) / sizeof(ctrls[0]),
	    "-0---0---0--------1---1----");
	/* After events were dropped, the kernel's word: left ctrl is down. */
	bits[KEY_LEFTCTRL / 8] |= 1u << (KEY_LEFTCTRL % 8);
	keys_sync(&k, bits, sizeof(bits));
	ck_assert_uint_eq(k.n, 1);
	ck_assert_int_eq(chord_feed(&k, h, 2, (unsigned)dropped[0][0],
	    dropped[0][1]), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* usbctl watch, live                                                  */

/* A usbctl watch of the test's: its output (stdout and stderr) read as
 * lines. */
struct watching {
	pid_t		pid;
	struct reader	out;
};

static void
watch_run(struct watching *u, const char *cfg, const char *input,
    const char *as)
{
	char *argv[20];
	int fds[2], argc = 0;

	argv[argc++] = (char *)"env";
	argv[argc++] = (char *)"--ignore-signal=CHLD";
	if (as != NULL) {
		argv[argc++] = (char *)"setpriv";
		argv[argc++] = (char *)"--reuid";
		argv[argc++] = (char *)as;
		argv[argc++] = (char *)"--regid";
		argv[argc++] = (char *)as;
		argv[argc++] = (char *)"--clear-groups";
	}
	argv[argc++] = (char *)USBCTL_BIN;
	argv[argc++] = (char *)"--socket";
	argv[argc++] = w.sock;
	argv[argc++] = (char *)"--config";
	argv[argc++] = (char *)cfg;
	argv[argc++] = (char *)"--input";
	argv[argc++] = (char *)input;
	argv[argc++] = (char *)"watch";
	argv[argc] = NULL;
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	u->pid = spawn_fds(argv, -1, fds[1], fds[1]);
	close(fds[1]);
	u->out.fd = fds[0];
	u->out.len = 0;
}

/* usbctl watch said a line with this in it. */
static void
watch_says(struct watching *u, const char *part)
{
	char line[1024];

	ck_assert_msg(reader_wait(&u->out, part, line, sizeof(line)),
	    "usbctl watch never said '%s'", part);
}

/* pid ends within WAIT_MS, if it has not already: its pidfd says so
 * (it need not be our child). */
static bool
process_gone(pid_t pid)
{
	struct pollfd p = { .events = POLLIN };
	bool gone;

	if ((p.fd = (int)syscall(SYS_pidfd_open, pid, 0)) == -1)
		return errno == ESRCH;
	gone = poll(&p, 1, WAIT_MS) == 1;
	close(p.fd);
	return gone;
}

/* usbctl watch said it runs hook for vm's switch to the host. */
static void
watch_runs(struct watching *u, const char *vm, const char *hook)
{
	char text[1024];

	snprintf(text, sizeof(text), "%s switched to the host (client): "
	    "running %s", vm, hook);
	watch_says(u, text);
}

/* SIGTERM ends it, with status 0. */
static void
watch_end(struct watching *u)
{
	int status;

	ck_assert_int_eq(kill(u->pid, SIGTERM), 0);
	ck_assert_int_eq(waitpid(u->pid, &status, 0), u->pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "usbctl watch ended %#x", status);
	close(u->out.fd);
}

/* A line a host client sends, answered ok. */
static void
host_says(const char *line, const char *want)
{
	struct client c;

	client_open(&c);
	client_send(&c, "reply on\n");
	client_send(&c, line);
	expect_reply(&c, want);
	client_close(&c);
}

/*
 * The hooks of each switch run one at a time, in the configuration's
 * order, as argv (no shell reads their words), with the switch in
 * USBCTL_* variables; one that cannot run is said so, and why; one past its
 * deadline that shrugs off SIGTERM is killed, and the next runs. When
 * usbserver restarts, watch connects again; at SIGTERM it ends within a
 * second, its hook killed. usbctl runs with SIGCHLD ignored, as a
 * careless parent may leave it: its hooks' ends are still seen.
 */
START_TEST(test_watch_runs_the_hooks_of_each_switch)
{
	char cfg[256], rec[256], hang[256], fifo[256], text[1024], line[1024];
	struct watching u;
	struct reader got;
	long sh, sleeper;

	snprintf(fifo, sizeof(fifo), "%s/hooks", w.dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	/* Ours, read and written: never an EOF between hooks. */
	ck_assert_int_ne(got.fd = open(fifo, O_RDWR | O_CLOEXEC), -1);
	got.len = 0;
	snprintf(rec, sizeof(rec), "%s/record", w.dir);
	snprintf(text, sizeof(text), "#!/bin/sh\nprintf '%%s %%s %%s %%s "
	    "|%%s|\\n' \"$USBCTL_SWITCH\" \"$USBCTL_DOMAIN\" "
	    "\"$USBCTL_REASON\" \"$USBCTL_DEVICES\" \"$*\" > %s\n", fifo);
	write_file(rec, text, 0755);
	snprintf(hang, sizeof(hang), "%s/hang", w.dir);
	snprintf(text, sizeof(text), "#!/bin/sh\ntrap '' TERM\nsleep 60 &\n"
	    "echo hang $$ $! > %s\nwait\n", fifo);
	write_file(hang, text, 0755);
	snprintf(cfg, sizeof(cfg), "%s/usbctl.conf", w.dir);
	snprintf(text, sizeof(text), "hook guest %s/nothing-here\n"
	    "hook guest %s 'a;b' $HOME\nhook host %s\nhook host %s back\n"
	    "hook-timeout 1\n", w.dir, rec, hang, rec);
	write_file(cfg, text, 0644);

	daemon_start(NULL);
	watch_run(&u, cfg, w.dir, NULL);
	watch_says(&u, "watching usbserver's switches at");
	host_says("vmA attach 046d:c52b\n", "ok vmA attach 046d:c52b");
	watch_says(&u, "nothing-here: No such file or directory");
	ck_assert_int_eq(reader_line(&got, line, sizeof(line), WAIT_MS), 1);
	ck_assert_str_eq(line, "guest vmA client 046d:c52b |'a;b' $HOME|");
	/* The hung one first: the next waits for its end (watch says so
	 * in order). */
	host_says("vmA detach 046d:c52b\n", "ok vmA detach 046d:c52b");
	watch_runs(&u, "vmA", hang);
	ck_assert_int_eq(reader_line(&got, line, sizeof(line), WAIT_MS), 1);
	ck_assert_int_eq(strncmp(line, "hang ", 5), 0);
	watch_says(&u, "a hook ran past its 1 s: stopping it");
	watch_says(&u, "a hook ran past its 1 s: killed");
	watch_says(&u, "the hook ended: killed by signal 9");
	watch_runs(&u, "vmA", rec);
	ck_assert_int_eq(reader_line(&got, line, sizeof(line), WAIT_MS), 1);
	ck_assert_str_eq(line, "host vmA client 046d:c52b |back|");

	/* usbserver goes, and comes back. */
	ck_assert_int_eq(daemon_stop(), 0);
	watch_says(&u, "it went away; trying again");
	daemon_start(NULL);
	watch_says(&u, "watching usbserver's switches at");
	host_says("vmB attach 046d:c077\n", "ok vmB attach 046d:c077");
	ck_assert_int_eq(reader_line(&got, line, sizeof(line), WAIT_MS), 1);
	ck_assert_str_eq(line, "guest vmB client 046d:c077 |'a;b' $HOME|");
	/* It ends while the hung hook runs. */
	host_says("vmB detach 046d:c077\n", "ok vmB detach 046d:c077");
	watch_runs(&u, "vmB", hang);
	ck_assert_int_eq(reader_line(&got, line, sizeof(line), WAIT_MS), 1);
	ck_assert_int_eq(sscanf(line, "hang %ld %ld", &sh, &sleeper), 2);
	watch_end(&u);
	/* Its whole group went with it. */
	ck_assert(process_gone((pid_t)sh));
	ck_assert(process_gone((pid_t)sleeper));
	close(got.fd);
}
END_TEST

/* With no keyboard to read, watch says why: none there, or none it may
 * read (the input group). Files that are no input device are passed
 * over. Nothing to do is a usage error. */
START_TEST(test_watch_says_when_it_can_read_no_keyboard)
{
	char cfg[256], input[256], path[300], out[OUT];
	struct watching u;

	snprintf(cfg, sizeof(cfg), "%s/usbctl.conf", w.dir);
	write_file(cfg, "hotkey KEY_LEFTCTRL+KEY_RIGHTCTRL toggle\n", 0644);
	snprintf(input, sizeof(input), "%s/input", w.dir);
	ck_assert_int_eq(mkdir(input, 0755), 0);
	snprintf(path, sizeof(path), "%s/event0", input);
	write_file(path, "not a keyboard\n", 0600);

	watch_run(&u, cfg, input, NULL);
	watch_says(&u, "no keyboard for the hotkeys in");
	watch_end(&u);

	ck_assert_int_eq(chmod(w.dir, 0755), 0);
	watch_run(&u, cfg, input, "65534");
	watch_says(&u, "event0, nor any other keyboard for the hotkeys: "
	    "permission denied. The user must be in group input");
	watch_end(&u);

	write_file(cfg, "device 046d:c52b\n", 0644);
	ck_assert_int_eq(usbctl(out, "--config", cfg, "watch", NULL), 2);
	ck_assert_ptr_nonnull(strstr(out, "nothing to watch for"));
}
END_TEST

/* ------------------------------------------------------------------ */
/* contrib/ddc-input, with a ddcutil of the test's                     */

/* Runs ddc-input with args; the fake ddcutil answers each getvcp with the
 * next line of answers. Its exit status; out has its output, calls
 * ddcutil's arguments, a line each. */
static int
ddc_input(const char *answers, char *out, char *calls, const char *first, ...)
{
	char fake[256], ans[256], log[256], env[300], script[1024];
	char *argv[16];
	const char *a;
	int argc = 0, status;
	va_list ap;

	snprintf(fake, sizeof(fake), "%s/ddcutil", w.dir);
	snprintf(ans, sizeof(ans), "%s/answers", w.dir);
	snprintf(log, sizeof(log), "%s/ddcutil.log", w.dir);
	snprintf(script, sizeof(script), "#!/bin/sh\necho \"$*\" >> %s\n"
	    "case \"$*\" in *getvcp*) head -1 %s; sed -i 1d %s ;; esac\n",
	    log, ans, ans);
	write_file(fake, script, 0755);
	write_file(ans, answers, 0644);
	unlink(log);
	snprintf(env, sizeof(env), "DDCUTIL=%s", fake);
	argv[argc++] = (char *)"env";
	argv[argc++] = env;
	argv[argc++] = (char *)SRC_DIR "/contrib/ddc-input";
	va_start(ap, first);
	for (a = first; a != NULL && argc < 15; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	status = run(argv, NULL, out, OUT);
	if (slurp(log, calls, OUT) < 0)
		calls[0] = '\0';
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(test_ddc_input_sets_checks_and_retries_a_bounded_number_of_times)
{
	char out[OUT], calls[OUT];

	ck_assert_int_eq(ddc_input("VCP 60 SNC x0f\n", out, calls,
	    "--display", "2", "0x0f", NULL), 0);
	ck_assert_str_eq(calls, "--display 2 --noverify setvcp 60 15\n"
	    "--display 2 --brief getvcp 60\n");
	ck_assert_ptr_nonnull(strstr(out, "input is 15 now (try 1 of 3)"));

	/* Taken at the third try: what is read is believed, not hoped. */
	ck_assert_int_eq(ddc_input("VCP 60 SNC x11\nVCP 60 C 15 100\n"
	    "VCP 60 SNC x0f\n", out, calls, "--wait", "0", "15", NULL), 0);
	ck_assert_str_eq(calls, "--noverify setvcp 60 15\n--brief getvcp 60\n"
	    "--noverify setvcp 60 15\n--brief getvcp 60\n"
	    "--noverify setvcp 60 15\n--brief getvcp 60\n");
	ck_assert_ptr_nonnull(strstr(out, "(try 3 of 3)"));

	/* Never: as many tries as asked, then it says so. */
	ck_assert_int_eq(ddc_input("VCP 60 SNC x11\nVCP 60 SNC x11\n"
	    "VCP 60 SNC x0f\n", out, calls, "--tries", "2", "--wait", "0",
	    "0x0f", NULL), 1);
	ck_assert_str_eq(calls, "--noverify setvcp 60 15\n--brief getvcp 60\n"
	    "--noverify setvcp 60 15\n--brief getvcp 60\n");
	ck_assert_ptr_nonnull(strstr(out, "did not become 15 in 2 tries "
	    "(last: 17)"));

	ck_assert_int_eq(ddc_input("", out, calls, "0x100", NULL), 2);
	ck_assert_int_eq(ddc_input("", out, calls, "--tries", "0", "15", NULL),
	    2);
	ck_assert_int_eq(ddc_input("", out, calls, "--bus", "x", "15", NULL), 2);
	ck_assert_str_eq(calls, "");
}
END_TEST

/* Attack 1: usbctl gives up on a held queue and says why; 9: a config
 * file that stalls usbctl. */
void
client_attacks(TCase *tc)
{
	tcase_add_test(tc, test_usbctl_gives_up_on_a_full_queue_and_says_why);
	tcase_add_test(tc, test_usbctl_config_is_a_regular_file_or_refused);
}

Suite *
client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *list = tcase_create("virsh list parsing");
	TCase *live = tcase_create("usbctl");

	tcase_add_test(list, test_list_first_line_is_the_domain);
	tcase_add_test(list, test_list_skips_empty_lines_and_trims);
	tcase_add_test(list, test_list_keeps_a_name_with_spaces_whole);
	tcase_add_test(list, test_list_without_newline_at_end);
	tcase_add_test(list, test_list_empty_output_has_no_domain);
	tcase_add_test(list, test_list_name_too_long_or_with_nul_is_refused);
	tcase_add_test(list, test_list_next_walks_every_domain);
	tcase_add_test(list, test_hostdevs_are_read_from_libvirts_xml);
	tcase_add_test(list, test_hostdev_guest_address_is_not_the_hosts);
	tcase_add_test(list, test_hostdevs_of_broken_xml_are_none);
	tcase_add_test(list, test_a_domains_hostdevs_come_from_its_devices_alone);
	tcase_add_test(list, test_hostdev_addresses_out_of_range_are_none);
	tcase_add_test(list, test_reason_hints_say_what_to_do);
	tcase_add_test(list, test_port_hint_shows_the_command_to_use);
	tcase_add_test(list, test_watch_config_lines_are_parsed_strictly);
	tcase_add_test(list, test_a_chord_fires_once_with_exactly_its_keys_down);
	suite_add_tcase(s, list);

	tcase_add_checked_fixture(live, world_setup, world_teardown);
	tcase_set_timeout(live, 60);
	tcase_add_test(live, test_usbctl_attaches_to_the_first_running_domain);
	tcase_add_test(live, test_usbctl_asks_the_daemon_which_domains_run);
	tcase_add_test(live, test_usbctl_lists_domains_itself_with_an_older_daemon);
	tcase_add_test(live, test_usbctl_detach_to_a_named_domain);
	tcase_add_test(live, test_usbctl_no_running_domain_exits_1);
	tcase_add_test(live, test_usbctl_reports_each_failure_and_exits_1);
	tcase_add_test(live, test_usbctl_refuses_a_domain_name_the_daemon_would);
	tcase_add_test(live, test_usbctl_usage_errors_exit_2);
	tcase_add_test(live, test_usbctl_retries_then_gives_up_without_a_daemon);
	tcase_add_test(live, test_usbctl_without_replies_says_so);
	tcase_add_test(live, test_usbctl_with_real_virsh_test_driver);
	tcase_add_test(live, test_usbctl_real_virsh_discovery_names_test);
	tcase_add_test(live, test_usbctl_status_shows_each_domains_devices);
	tcase_add_test(live, test_usbctl_toggle_attaches_then_detaches);
	tcase_add_test(live, test_usbctl_toggle_by_port_tells_twins_apart);
	tcase_add_test(live, test_usbctl_devices_lists_the_host_and_marks_attached_ones);
	tcase_add_test(live, test_usbctl_devices_fails_when_virsh_list_does);
	tcase_add_test(live, test_usbctl_tells_a_user_outside_libvirt_what_to_do);
	tcase_add_test(live, test_usbctl_json_is_valid_whatever_the_bytes);
	tcase_add_test(live, test_usbctl_config_gives_domain_and_devices);
	tcase_add_test(live, test_usbctl_explains_a_device_held_elsewhere_or_ambiguous);
	tcase_add_test(live, test_bash_completion_offers_commands_domains_and_devices);
	tcase_add_test(live, test_bash_completion_never_runs_a_domain_name);
	tcase_add_test(live, test_bash_completion_completes_after_the_colon);
	tcase_add_test(live, test_bash_completion_offers_ports_where_needed);
	tcase_add_test(live, test_usbctl_shows_the_port_form_for_twins);
	tcase_add_test(live, test_usbctl_release_asks_the_daemon_to_give_back);
	tcase_add_test(live, test_usbctl_status_shows_the_ledger_and_the_leases);
	tcase_add_test(live, test_usbctl_status_shows_the_assignments);
	tcase_add_test(live, test_watch_runs_the_hooks_of_each_switch);
	tcase_add_test(live, test_watch_says_when_it_can_read_no_keyboard);
	tcase_add_test(live, test_ddc_input_sets_checks_and_retries_a_bounded_number_of_times);
	suite_add_tcase(s, live);
	return s;
}
