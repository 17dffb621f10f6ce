/*
 * usbctl: asks usbserver to attach, detach or toggle host USB devices for
 * the first running libvirt domain, or the one named; shows what is
 * attached where, and the host's USB devices.
 *
 *	usbctl [options] [attach|detach|toggle] [VID:PID[@PORT]...]
 *	usbctl [options] status | devices
 *
 * Exit status: 0 if every device moved (or the listing worked), 1 if any
 * did not, 2 for a usage error.
 */
#define _GNU_SOURCE

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define CONNECT_TRIES	5	/* while the daemon is not there */
#define XML_READ_MAX	(256 * 1024)	/* of one "virsh dumpxml" */
#define MAX_HOSTDEVS	64	/* USB devices we list per domain */
#define MAX_DEVICES	64	/* devices in a configuration file */
#define SYSTEM_CONFIG	"/etc/usbctl.conf"
#define CONNECT_PAUSE	1	/* seconds between tries */
#define LIST_MAX	4096	/* what we keep of "virsh list" output */
#define LIBVIRT_GROUP	"libvirt"	/* whom libvirt lets manage qemu:///system */
/* How long to wait for the replies: the daemon's default virsh deadline
 * for each command, and some slack. */
#define REPLY_WAIT_S(n)	((VIRSH_TIMEOUT + 5) * (n) + 5)

extern char **environ;

static struct {
	const char	*socket;
	const char	*connect;
	const char	*domain;
	const char	*virsh;
	const char	*config;	/* --config: the only file read */
	const char	*sysfs;		/* the host's USB devices (tests: a tree) */
	bool		 json;
	bool		 socket_given;	/* on the command line: it wins */
} opt = {
	.socket = DEFAULT_SOCKET,
	.virsh = DEFAULT_VIRSH,
	.sysfs = SYSFS_USB,
};

/* What the configuration files give; the command line comes first. */
static struct {
	char	socket[108];
	char	connect[256];
	char	domain[MAX_VM_NAME + 1];
	char	devices[MAX_DEVICES][DEVICE_MAX + 1];
	int	ndevices;
} conf;

/* A USB device attached to a domain, from its XML. */
struct hostdev {
	char	device[DEVICE_MAX + 1];
	int	bus, dev;		/* -1 until libvirt fills them in */
};

/* The next domain in "virsh list --name" output from *p to end: a line
 * that is not blank, trimmed, copied to name. 1 with a name; -1 for one
 * that holds a NUL or does not fit (passed over); 0 at the end. */
static int
list_next(const char **p, const char *end, char *name, size_t size)
{
	while (*p < end) {
		const char *nl = memchr(*p, '\n', (size_t)(end - *p));
		const char *eol = nl != NULL ? nl : end, *s;
		size_t n = line_trim(*p, (size_t)(eol - *p), &s);

		*p = nl != NULL ? nl + 1 : end;
		if (n == 0)
			continue;
		if (n >= size || memchr(s, '\0', n) != NULL)
			return -1;
		memcpy(name, s, n);
		name[n] = '\0';
		return 1;
	}
	return 0;
}

/* The first domain "virsh list --name" printed. Returns 0, or -1 if there
 * is none or it does not fit. */
static int
list_first(const char *out, size_t len, char *name, size_t size)
{
	return list_next(&out, out + len, name, size) == 1 ? 0 : -1;
}

/* Runs "virsh [-c URI] ARGS..." in the C locale, its stderr going to
 * ours. Returns the length of what it printed (up to size), or -1 if it
 * could not run or failed. */
static ssize_t
virsh_capture(const char *const args[], char *out, size_t size)
{
	char *argv[16];
	posix_spawn_file_actions_t fa;
	int fd[2], status, argc = 0, e;
	size_t len = 0;
	ssize_t n;
	pid_t pid;
	char junk[512];

	argv[argc++] = (char *)opt.virsh;
	if (opt.connect != NULL) {
		argv[argc++] = (char *)"-c";
		argv[argc++] = (char *)opt.connect;
	}
	for (int i = 0; args[i] != NULL && argc < 15; i++)
		argv[argc++] = (char *)args[i];
	argv[argc] = NULL;

	/* virsh translates its output; names are what we want, untranslated */
	if (setenv("LC_ALL", "C", 1) == -1)
		err(1, "setenv");
	if (pipe2(fd, O_CLOEXEC) == -1)
		err(1, "pipe");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null",
	    O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fd[1], STDOUT_FILENO);
	e = posix_spawnp(&pid, opt.virsh, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fd[1]);
	if (e != 0) {
		close(fd[0]);
		errno = e;
		warn("cannot run %s", opt.virsh);
		return -1;
	}
	for (;;) {
		if (len < size)
			n = read(fd[0], out + len, size - len);
		else
			n = read(fd[0], junk, sizeof(junk));	/* past what we keep */
		if (n > 0 && len < size)
			len += (size_t)n;
		else if (n == 0 || (n == -1 && errno != EINTR))
			break;
	}
	close(fd[0]);
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			err(1, "waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		warnx("%s %s failed", opt.virsh, args[0]);
		return -1;
	}
	return (ssize_t)len;
}

/* Is the caller root, or in group name? */
static bool
in_group(const char *name)
{
	gid_t *groups;
	struct group *gr;
	bool in = false;
	int n;

	if (geteuid() == 0)
		return true;
	if ((gr = getgrnam(name)) == NULL)
		return false;
	if (getegid() == gr->gr_gid)
		return true;
	if ((n = getgroups(0, NULL)) <= 0 ||
	    (groups = calloc((size_t)n, sizeof(*groups))) == NULL)
		return false;
	n = getgroups(n, groups);
	for (int i = 0; i < n && !in; i++)
		in = groups[i] == gr->gr_gid;
	free(groups);
	return in;
}

/* "virsh list --state-running --name"; when it fails for a user outside
 * libvirt's group, on the system's libvirt, says what that user needs. */
static ssize_t
list_run(char *out, size_t size)
{
	static const char *const args[] = { "list", "--state-running",
	    "--name", NULL };
	ssize_t len = virsh_capture(args, out, size);

	if (len == -1 && !in_group(LIBVIRT_GROUP) && (opt.connect == NULL ||
	    strcmp(opt.connect, "qemu:///system") == 0))
		fprintf(stderr, "usbctl: to see the system's domains, a user "
		    "must be in group %s (adduser USER %s, then log in "
		    "again) and pass --connect qemu:///system\n",
		    LIBVIRT_GROUP, LIBVIRT_GROUP);
	return len;
}

/* The domain to use: --domain, or the first running one. Exits on failure. */
static void
find_domain(char *name, size_t size)
{
	char out[LIST_MAX];
	ssize_t len;

	if (opt.domain != NULL) {
		if (fit(snprintf(name, size, "%s", opt.domain), size) < 0)
			errx(1, "domain name too long: %s", opt.domain);
		return;
	}
	if ((len = list_run(out, sizeof(out))) == -1)
		exit(1);
	if (list_first(out, (size_t)len, name, size) == -1)
		errx(1, "no running domain found");
}

/* ------------------------------------------------------------------ */
/* Plain words for libvirt's refusals                                  */

/* What to tell a person about a failure's reason, or NULL. */
static const char *
reason_hint(const char *reason)
{
	if (strstr(reason, "in use by") != NULL)
		return "another VM holds this device: detach it there first "
		    "(usbctl --domain OTHER detach VID:PID), or see usbctl status";
	if (strstr(reason, "Multiple USB devices") != NULL)
		return "two host devices share this VID:PID: name one by its "
		    "port, VID:PID@PORT (usbctl devices shows the ports)";
	if (strstr(reason, "Did not find USB device") != NULL)
		return "no such device is plugged in to the host: see usbctl "
		    "devices";
	return NULL;
}

/* Writes s for a shell: as it is when it is a plain word, else quoted. */
static void
shell_word(FILE *f, const char *s)
{
	if (s[0] != '\0' && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789._-+:@/") == strlen(s)) {
		fputs(s, f);
		return;
	}
	fputc('\'', f);
	for (; *s != '\0'; s++) {
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	}
	fputc('\'', f);
}

/*
 * Shows the command that names one of two devices with c's VID:PID, from
 * the daemon's "; name one, as VID:PID@PORT;" in reason. False when the
 * reason has none (an older daemon, or no such device in its sysfs).
 */
static bool
port_hint(FILE *f, const struct command *c, const char *reason)
{
	static const char tag[] = "; name one, as ";
	const char *s = strstr(reason, tag), *end;
	char dev[DEVICE_MAX + 1];

	if (s == NULL)
		return false;
	s += sizeof(tag) - 1;
	if ((end = strchr(s, ';')) == NULL ||
	    !parse_device(s, (size_t)(end - s), dev) || device_port(dev) == NULL)
		return false;
	fprintf(f, "usbctl: two host devices share %.*s: name one by its port "
	    "(usbctl devices shows them), as in:\n    usbctl ", DEVICE_LEN,
	    dev);
	if (opt.domain != NULL) {
		fputs("--domain ", f);
		shell_word(f, opt.domain);
		fputc(' ', f);
	}
	fprintf(f, "%s %s\n", action_name(c->action), dev);
	return true;
}

/* Connects to the daemon, trying CONNECT_TRIES times while it is not there. */
static int
daemon_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (fit(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", opt.socket),
	    sizeof(sa.sun_path)) < 0)
		errx(1, "socket path too long: %s", opt.socket);
	for (int i = 1; ; i++) {
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
			err(1, "socket");
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		if ((errno != ENOENT && errno != ECONNREFUSED) ||
		    i == CONNECT_TRIES)
			err(1, "cannot connect to usbserver at %s", opt.socket);
		close(fd);
		sleep(CONNECT_PAUSE);
	}
}

static void
send_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			err(1, "cannot write to usbserver");
		buf += n;
		len -= (size_t)n;
	}
}

/* Sends every command with replies on, then reads one reply each.
 * Returns the number of commands that did not succeed. */
static int
request(const struct command *cmds, int ncmds)
{
	char line[MAX_LINE + 1], buf[4096];
	struct linebuf lb;
	const char *reason, *p = buf;
	size_t n = 0;
	ssize_t got;
	int fd, done = 0, failed = 0, len;
	struct timespec t;
	time_t deadline;
	bool timed_out = false;

	fd = daemon_connect();
	send_all(fd, "reply on\n", 9);
	for (int i = 0; i < ncmds; i++) {
		len = fit(snprintf(line, sizeof(line), "%s %s %s\n",
		    cmds[i].vm, action_name(cmds[i].action), cmds[i].device),
		    sizeof(line));
		if (len < 0)
			errx(1, "command too long");
		send_all(fd, line, (size_t)len);
	}
	if (shutdown(fd, SHUT_WR) == -1)
		err(1, "cannot write to usbserver");

	line_clear(&lb);
	clock_gettime(CLOCK_MONOTONIC, &t);
	deadline = t.tv_sec + REPLY_WAIT_S(ncmds);
	while (done < ncmds) {
		enum line_event ev = LINE_MORE;

		while (n == 0) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };

			clock_gettime(CLOCK_MONOTONIC, &t);
			if (t.tv_sec >= deadline ||
			    poll(&pfd, 1, (int)(deadline - t.tv_sec) * 1000) == 0) {
				got = 0;
				timed_out = true;
				break;
			}
			got = read(fd, buf, sizeof(buf));
			if (got == -1 && errno == EINTR)
				continue;
			if (got == -1)
				err(1, "cannot read from usbserver");
			if (got == 0)
				break;
			n = (size_t)got;
			p = buf;
		}
		if (n > 0)
			ev = line_feed(&lb, &p, &n);
		else if (timed_out || (ev = line_finish(&lb)) == LINE_MORE)
			break;
		if (ev == LINE_MORE)
			continue;
		const struct command *c = &cmds[done++];
		if (ev == LINE_OVERLONG) {
			warnx("%s %s %s: reply too long", c->vm,
			    action_name(c->action), c->device);
			failed++;
			continue;
		}
		switch (reply_parse(lb.buf, c, &reason)) {
		case REPLY_OK:
			break;
		case REPLY_ERROR:
			warnx("%s %s %s: %s", c->vm, action_name(c->action),
			    c->device, reason);
			if (!port_hint(stderr, c, reason) &&
			    reason_hint(reason) != NULL)
				fprintf(stderr, "usbctl: %s\n", reason_hint(reason));
			failed++;
			break;
		case REPLY_UNEXPECTED:
			warnx("%s %s %s: unexpected reply from usbserver",
			    c->vm, action_name(c->action), c->device);
			failed++;
			break;
		}
	}
	close(fd);
	for (; done < ncmds; done++) {
		warnx("%s %s %s: %s", cmds[done].vm,
		    action_name(cmds[done].action), cmds[done].device,
		    timed_out ? "no reply from usbserver in time" :
		    "no reply from usbserver (is it an older server without "
		    "replies?)");
		failed++;
	}
	return failed;
}

/* ------------------------------------------------------------------ */
/* What is attached where: a domain's XML                              */

/* The value of attribute name in the tag starting at tag (up to '>'),
 * quoted either way; its length, or -1. */
static int
xml_attr(const char *tag, const char *end, const char *name, const char **val)
{
	size_t n = strlen(name);

	for (const char *p = tag; p + n + 2 < end && *p != '>'; p++) {
		if (p[-1] != ' ' || strncmp(p, name, n) != 0 || p[n] != '=' ||
		    (p[n + 1] != '\'' && p[n + 1] != '"'))
			continue;
		const char *v = p + n + 2, *q = memchr(v, p[n + 1],
		    (size_t)(end - v));
		if (q == NULL)
			return -1;
		*val = v;
		return (int)(q - v);
	}
	return -1;
}

/* A "0x1234" id, as libvirt writes it; -1 if it is not one. */
static long
xml_id(const char *start, const char *end, const char *tagname)
{
	const char *t = start, *v;
	char buf[8], *stop;
	long id;
	int n;

	if ((t = strstr(t, tagname)) == NULL || t >= end ||
	    (n = xml_attr(t + strlen(tagname), end, "id", &v)) < 3 || n > 6 ||
	    v[0] != '0' || (v[1] != 'x' && v[1] != 'X'))
		return -1;
	memcpy(buf, v + 2, (size_t)n - 2);
	buf[n - 2] = '\0';
	id = strtol(buf, &stop, 16);
	return *stop == '\0' && id >= 0 && id <= 0xffff ? id : -1;
}

/* The USB host devices in a domain's XML (libvirt's own output): their
 * VID:PID and, once attached, bus and device number. Returns how many. */
static int
hostdevs_parse(const char *xml, size_t len, struct hostdev *out, int max)
{
	const char *p = xml, *end = xml + len, *v;
	int n = 0, k;

	while (n < max && (p = strstr(p, "<hostdev ")) != NULL && p < end) {
		const char *close = strstr(p, "</hostdev>");
		const char *addr, *src, *src_end;
		long vid, pid;
		char num[16];

		if (close == NULL || close > end)
			break;
		if ((k = xml_attr(p + 9, close, "type", &v)) != 3 ||
		    strncmp(v, "usb", 3) != 0 ||
		    (vid = xml_id(p, close, "<vendor ")) < 0 ||
		    (pid = xml_id(p, close, "<product ")) < 0) {
			p = close;
			continue;
		}
		snprintf(out[n].device, sizeof(out[n].device), "%04x:%04x",
		    (unsigned)vid & 0xffff, (unsigned)pid & 0xffff);
		out[n].bus = out[n].dev = -1;
		/* The host's address is the one inside <source>; another
		 * <address> (type='usb' bus= port=) is the guest's. */
		if ((src = strstr(p, "<source")) != NULL && src < close &&
		    (src_end = strstr(src, "</source>")) != NULL &&
		    src_end < close && (addr = strstr(src, "<address ")) != NULL &&
		    addr < src_end) {
			int bk = xml_attr(addr + 9, src_end, "bus", &v);
			const char *bv = v;
			int dk = xml_attr(addr + 9, src_end, "device", &v);

			if (bk > 0 && bk < (int)sizeof(num) && dk > 0 &&
			    dk < (int)sizeof(num)) {
				snprintf(num, sizeof(num), "%.*s", bk, bv);
				out[n].bus = atoi(num);
				snprintf(num, sizeof(num), "%.*s", dk, v);
				out[n].dev = atoi(num);
			}
		}
		n++;
		p = close;
	}
	return n;
}

/* The USB devices attached to vm, from "virsh dumpxml"; -1 on failure. */
static int
domain_hostdevs(const char *vm, struct hostdev *out, int max)
{
	const char *const args[] = { "dumpxml", "--domain", vm, NULL };
	static char xml[XML_READ_MAX + 1];
	ssize_t len = virsh_capture(args, xml, XML_READ_MAX);

	if (len < 0)
		return -1;
	xml[len] = '\0';		/* the parser's strstr stops here */
	return hostdevs_parse(xml, (size_t)len, out, max);
}

/* The domains to show: --domain, or the running ones ("virsh list
 * --name" output, read with list_next()); its length, or -1. */
static ssize_t
domains_to_show(char *out, size_t size)
{
	if (opt.domain == NULL)
		return list_run(out, size);
	if (fit(snprintf(out, size, "%s\n", opt.domain), size) < 0)
		return -1;
	return (ssize_t)strlen(out);
}

/* ------------------------------------------------------------------ */
/* Output for people, and JSON for scripts                             */

/* The length of the well-formed UTF-8 sequence at s (1 to 4), or 0. */
static int
utf8_len(const unsigned char *s)
{
	int n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 :
	    s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	for (int i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if (n == 3) {
		cp = (s[0] & 0x0fu) << 12 | (s[1] & 0x3fu) << 6;
		if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;	/* overlong, or a surrogate */
	} else if (n == 4) {
		cp = (s[0] & 0x07u) << 18 | (s[1] & 0x3fu) << 12;
		if (cp < 0x10000 || cp > 0x10ffff)
			return 0;
	}
	return n;
}

/* A JSON string: valid UTF-8 whatever the bytes (U+FFFD for the bad). */
static void
json_string(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	putchar('"');
	while (*s != '\0') {
		int n = utf8_len(s);

		if (n == 0) {
			fputs("\\ufffd", stdout);
			n = 1;
		} else if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if (*s < 0x20 || *s == 0x7f)
			printf("\\u%04x", *s);
		else
			fwrite(s, 1, (size_t)n, stdout);
		s += n;
	}
	putchar('"');
}

/* A bus or device number, or null while libvirt has not said it. */
static void
json_number(int n)
{
	if (n >= 0)
		printf("%d", n);
	else
		fputs("null", stdout);
}

/* "usbctl status": the USB devices attached to each running domain. */
static int
cmd_status(void)
{
	static char out[LIST_MAX];
	struct hostdev devs[MAX_HOSTDEVS];
	char vm[LIST_MAX], esc[MAX_LINE];
	int failed = 0, shown = 0, r;
	ssize_t len = domains_to_show(out, sizeof(out));
	const char *p = out;

	if (len < 0)
		return 1;
	if (opt.json)
		printf("[");
	else
		printf("%-24s %-10s %s\n", "DOMAIN", "DEVICE", "BUS:DEV");
	while ((r = list_next(&p, out + len, vm, sizeof(vm))) != 0) {
		int n;

		if (r < 0 || (n = domain_hostdevs(vm, devs, MAX_HOSTDEVS)) < 0) {
			failed++;
			continue;
		}
		escape_text(esc, sizeof(esc), vm, strlen(vm));
		if (opt.json) {
			printf("%s{\"domain\":", shown++ > 0 ? "," : "");
			json_string(vm);
			printf(",\"devices\":[");
		}
		for (int i = 0; i < n; i++) {
			if (opt.json) {
				printf("%s{\"device\":\"%s\",\"bus\":",
				    i > 0 ? "," : "", devs[i].device);
				json_number(devs[i].bus);
				printf(",\"devnum\":");
				json_number(devs[i].dev);
				printf("}");
			} else if (devs[i].bus >= 0)
				printf("%-24s %-10s %03d:%03d\n", esc,
				    devs[i].device, devs[i].bus, devs[i].dev);
			else
				printf("%-24s %-10s -\n", esc, devs[i].device);
		}
		if (opt.json)
			printf("]}");
		else if (n == 0)
			printf("%-24s %-10s\n", esc, "-");
	}
	if (opt.json)
		printf("]\n");
	return failed > 0;
}

/* A host USB device, from sysfs. */
struct usbdev {
	char	device[DEVICE_MAX + 1];
	char	port[PORT_MAX + 1];	/* where it is plugged in: "1-2" */
	int	bus, dev;
	char	manufacturer[256], product[256];	/* descriptors: any bytes */
	char	attached[MAX_VM_NAME + 1];	/* the domain, or "" */
};

/* One sysfs attribute of dir/name, first line, cut to size; "" if none. */
static void
sysfs_read(const char *dir, const char *name, char *buf, size_t size)
{
	char path[PATH_MAX];
	ssize_t n = -1;
	int fd;

	buf[0] = '\0';
	if (fit(snprintf(path, sizeof(path), "%s/%s/%s", opt.sysfs, dir, name),
	    sizeof(path)) < 0 || (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	n = read(fd, buf, size - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* A bus or device number from dir/name; -1 if there is none. */
static int
sysfs_num(const char *dir, const char *name)
{
	char num[16];

	sysfs_read(dir, name, num, sizeof(num));
	return (int)sysfs_number(num, 10, 255);
}

static int
usbdev_order(const void *a, const void *b)
{
	const struct usbdev *x = a, *y = b;

	return x->bus != y->bus ? x->bus - y->bus : x->dev - y->dev;
}

/* The host's USB devices (not interfaces, not root hubs); how many, or
 * -1 if there is no such tree. */
static int
sysfs_devices(struct usbdev *out, int max)
{
	struct dirent *de;
	char vid[8], pid[8], num[16];
	int n = 0;
	DIR *d = opendir(opt.sysfs);

	if (d == NULL)
		return -1;
	while (n < max && (de = readdir(d)) != NULL) {
		struct usbdev *u = &out[n];

		/* Devices only: not interfaces ("1-2:1.0"), not root hubs
		 * ("usb1"). */
		if (!valid_port(de->d_name, strlen(de->d_name)))
			continue;
		memcpy(u->port, de->d_name, strlen(de->d_name) + 1);
		sysfs_read(de->d_name, "idVendor", vid, sizeof(vid));
		sysfs_read(de->d_name, "idProduct", pid, sizeof(pid));
		snprintf(num, sizeof(num), "%s:%s", vid, pid);
		if (!parse_device(num, strlen(num), u->device))
			continue;
		u->bus = sysfs_num(de->d_name, "busnum");
		u->dev = sysfs_num(de->d_name, "devnum");
		sysfs_read(de->d_name, "manufacturer", u->manufacturer,
		    sizeof(u->manufacturer));
		sysfs_read(de->d_name, "product", u->product, sizeof(u->product));
		u->attached[0] = '\0';
		n++;
	}
	closedir(d);
	qsort(out, (size_t)n, sizeof(out[0]), usbdev_order);
	return n;
}

/* Marks the devices attached to a running domain: by bus and device
 * number where libvirt says them, else by VID:PID. -1 when virsh could
 * not tell of every domain. */
static int
mark_attached(struct usbdev *devs, int n)
{
	static char out[LIST_MAX];
	struct hostdev hd[MAX_HOSTDEVS];
	char vm[MAX_VM_NAME + 1];
	ssize_t len = list_run(out, sizeof(out));
	const char *p = out;
	int r, k, rc = len < 0 ? -1 : 0;

	while (len > 0 && (r = list_next(&p, out + len, vm, sizeof(vm))) != 0) {
		if (r < 0 || (k = domain_hostdevs(vm, hd, MAX_HOSTDEVS)) < 0) {
			rc = -1;
			continue;
		}
		for (int i = 0; i < k; i++)
			for (int j = 0; j < n; j++)
				if (strcmp(hd[i].device, devs[j].device) == 0 &&
				    (hd[i].bus < 0 || (hd[i].bus == devs[j].bus &&
				    hd[i].dev == devs[j].dev)))
					memcpy(devs[j].attached, vm,
					    strlen(vm) + 1);
	}
	return rc;
}

/* "usbctl devices": the host's USB devices, and where they are. */
static int
cmd_devices(void)
{
	static struct usbdev devs[256];
	int n = sysfs_devices(devs, 256), failed;

	if (n < 0) {
		warn("%s", opt.sysfs);
		return 1;
	}
	/* The host's devices are listed all the same, without the domains
	 * that virsh could not tell. */
	failed = mark_attached(devs, n) == -1;
	if (opt.json)
		printf("[");
	else
		printf("%-10s %-9s %-7s %-16s %s\n", "DEVICE", "PORT", "BUS:DEV",
		    "ATTACHED TO", "DESCRIPTION");
	for (int i = 0; i < n; i++) {
		struct usbdev *u = &devs[i];
		char desc[520], esc[sizeof(desc) * 4], att[MAX_VM_NAME * 4 + 1];
		char bd[16];

		if (opt.json) {
			printf("%s{\"device\":\"%s\",\"port\":\"%s\",\"bus\":%d,"
			    "\"devnum\":%d,\"manufacturer\":", i > 0 ? "," : "",
			    u->device, u->port, u->bus, u->dev);
			json_string(u->manufacturer);
			printf(",\"product\":");
			json_string(u->product);
			printf(",\"attached_to\":");
			if (u->attached[0] != '\0')
				json_string(u->attached);
			else
				printf("null");
			printf("}");
			continue;
		}
		snprintf(desc, sizeof(desc), "%s%s%s", u->manufacturer,
		    u->manufacturer[0] != '\0' && u->product[0] != '\0' ? " " : "",
		    u->product);
		escape_text(esc, sizeof(esc), desc, strlen(desc));
		escape_text(att, sizeof(att), u->attached, strlen(u->attached));
		snprintf(bd, sizeof(bd), "%03d:%03d", u->bus, u->dev);
		printf("%-10s %-9s %-7s %-16s %s\n", u->device, u->port, bd,
		    att[0] != '\0' ? att : "-", esc);
	}
	if (opt.json)
		printf("]\n");
	return failed;
}

/* ------------------------------------------------------------------ */
/* The configuration files                                             */

/* Reads "domain VM", "device VID:PID", "socket PATH" and "connect URI"
 * lines; '#' starts a comment. A file that is not there is fine unless
 * it was named with --config. Exits on a line it does not understand. */
static void
conf_load(const char *path, bool must)
{
	char line[MAX_CONFIG_LINE + 2];
	int lineno = 0, ndevices = 0;
	FILE *f = fopen(path, "re");

	if (f == NULL) {
		if (must)
			err(2, "%s", path);
		if (errno != ENOENT)
			warn("%s", path);	/* not ours to read: go on */
		return;
	}
	for (;;) {
		const char *fld[3], *hash;
		size_t flen[3], nf, len = 0;
		int c;

		/* One line, NUL bytes and all: fgets would hide them. */
		while ((c = getc(f)) != EOF && c != '\n')
			if (len < sizeof(line))
				line[len++] = (char)c;
		if (c == EOF && len == 0)
			break;
		lineno++;
		if (len > MAX_CONFIG_LINE)
			errx(2, "%s:%d: line too long", path, lineno);
		if (memchr(line, '\0', len) != NULL)
			errx(2, "%s:%d: a NUL byte", path, lineno);
		if ((hash = memchr(line, '#', len)) != NULL)
			len = (size_t)(hash - line);
		nf = split_fields(line, len, fld, flen, 3);
		if (nf == 0)
			continue;
		if (nf != 2)
			errx(2, "%s:%d: expected 'KEY VALUE'", path, lineno);
		if (field_is(fld[0], flen[0], "device")) {
			if (ndevices == MAX_DEVICES)
				errx(2, "%s:%d: more than %d devices", path,
				    lineno, MAX_DEVICES);
			if (!parse_device(fld[1], flen[1], conf.devices[ndevices]))
				errx(2, "%s:%d: not a device (VID:PID)", path,
				    lineno);
			ndevices++;
		} else if (field_is(fld[0], flen[0], "domain") &&
		    valid_vm_name(fld[1], flen[1]))
			snprintf(conf.domain, sizeof(conf.domain), "%.*s",
			    (int)flen[1], fld[1]);
		else if (field_is(fld[0], flen[0], "socket") &&
		    flen[1] < sizeof(conf.socket))
			snprintf(conf.socket, sizeof(conf.socket), "%.*s",
			    (int)flen[1], fld[1]);
		else if (field_is(fld[0], flen[0], "connect") &&
		    flen[1] < sizeof(conf.connect))
			snprintf(conf.connect, sizeof(conf.connect), "%.*s",
			    (int)flen[1], fld[1]);
		else
			errx(2, "%s:%d: expected domain, device, socket or "
			    "connect, with a valid value", path, lineno);
	}
	if (ferror(f))
		err(2, "%s", path);
	fclose(f);
	if (ndevices > 0)	/* a later file's list replaces an earlier */
		conf.ndevices = ndevices;
}

/* --config alone, or /etc/usbctl.conf then the user's; then fills in
 * what the command line left open. */
static void
conf_apply(void)
{
	char path[PATH_MAX];
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

	if (opt.config != NULL)
		conf_load(opt.config, true);
	else {
		conf_load(SYSTEM_CONFIG, false);
		if (xdg != NULL && xdg[0] == '/' && fit(snprintf(path,
		    sizeof(path), "%s/usbctl.conf", xdg), sizeof(path)) >= 0)
			conf_load(path, false);
		else if (home != NULL && home[0] == '/' && fit(snprintf(path,
		    sizeof(path), "%s/.config/usbctl.conf", home),
		    sizeof(path)) >= 0)
			conf_load(path, false);
	}
	if (opt.domain == NULL && conf.domain[0] != '\0')
		opt.domain = conf.domain;
	if (opt.connect == NULL && conf.connect[0] != '\0')
		opt.connect = conf.connect;
	if (!opt.socket_given && conf.socket[0] != '\0')
		opt.socket = conf.socket;
}

static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: usbctl [options] [attach|detach|toggle] [VID:PID[@PORT]...]\n"
	    "       usbctl [options] status|devices\n"
	    "\n"
	    "Asks usbserver to attach (the default), detach or toggle host USB\n"
	    "devices for the first running libvirt domain, or the one named;\n"
	    "without devices, those of the configuration file. status shows\n"
	    "what is attached to each running domain, devices the host's USB\n"
	    "devices and where they are.\n"
	    "\n"
	    "  -s, --socket PATH   usbserver's socket (default %s)\n"
	    "  -c, --connect URI   libvirt URI for finding the domain\n"
	    "  -d, --domain VM     the domain (default: the first running one)\n"
	    "  -V, --virsh PATH    the virsh to run (default: virsh on PATH)\n"
	    "  -C, --config FILE   read this instead of %s and\n"
	    "                      ~/.config/usbctl.conf\n"
	    "  -j, --json          status and devices as JSON\n"
	    "      --sysfs DIR     the host's USB devices (default %s)\n"
	    "  -h, --help          show this help\n"
	    "  -v, --version       show the version\n",
	    DEFAULT_SOCKET, SYSTEM_CONFIG, SYSFS_USB);
	exit(status);
}

/* "usbctl toggle": detach each device that is attached to the domain,
 * attach the others. */
/* Is the domain's hostdev h the device asked for? VID:PID matches by
 * ids; VID:PID@PORT also by the bus and device number sysfs gives that
 * port now (libvirt shows the address we gave it). */
static bool
hostdev_is(const struct hostdev *h, const char *device)
{
	const char *port = device_port(device);

	if (strncmp(h->device, device, DEVICE_LEN) != 0)
		return false;
	if (port == NULL || h->bus == -1)
		return true;
	return h->bus == sysfs_num(port, "busnum") &&
	    h->dev == sysfs_num(port, "devnum");
}

static void
toggle(struct command *cmds, int ncmds, const char *vm)
{
	struct hostdev devs[MAX_HOSTDEVS];
	int n = domain_hostdevs(vm, devs, MAX_HOSTDEVS);

	if (n < 0)
		exit(1);
	for (int i = 0; i < ncmds; i++) {
		cmds[i].action = ACT_ATTACH;
		for (int j = 0; j < n; j++)
			if (hostdev_is(&devs[j], cmds[i].device))
				cmds[i].action = ACT_DETACH;
	}
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "socket",	required_argument,	NULL, 's' },
		{ "connect",	required_argument,	NULL, 'c' },
		{ "domain",	required_argument,	NULL, 'd' },
		{ "virsh",	required_argument,	NULL, 'V' },
		{ "config",	required_argument,	NULL, 'C' },
		{ "json",	no_argument,		NULL, 'j' },
		{ "sysfs",	required_argument,	NULL, 'S' },
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'v' },
		{ NULL,		0,			NULL, 0 },
	};
	enum { ATTACH, DETACH, TOGGLE, STATUS, DEVICES } verb = ATTACH;
	static const char *const verbs[] = { "attach", "detach", "toggle",
	    "status", "devices" };
	char vm[LIST_MAX], esc[MAX_LINE];
	struct command *cmds;
	int ch, ncmds;

	while ((ch = getopt_long(argc, argv, "s:c:d:V:C:jhv", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 's':
			opt.socket = optarg;
			opt.socket_given = true;
			break;
		case 'c':
			opt.connect = optarg;
			break;
		case 'd':
			opt.domain = optarg;
			break;
		case 'V':
			opt.virsh = optarg;
			break;
		case 'C':
			opt.config = optarg;
			break;
		case 'j':
			opt.json = true;
			break;
		case 'S':
			opt.sysfs = optarg;
			break;
		case 'h':
			usage(0);
		case 'v':
			printf("usbctl %s\n", USBSERVER_VERSION);
			exit(0);
		default:
			usage(2);
		}
	}
	argc -= optind;
	argv += optind;
	for (int i = 0; argc > 0 && i < (int)(sizeof(verbs) / sizeof(verbs[0]));
	    i++)
		if (strcmp(argv[0], verbs[i]) == 0) {
			verb = i;
			argc--;
			argv++;
			break;
		}
	conf_apply();
	if (verb == STATUS || verb == DEVICES) {
		if (argc > 0)
			usage(2);
		return verb == STATUS ? cmd_status() : cmd_devices();
	}

	ncmds = argc > 0 ? argc : conf.ndevices;
	if (ncmds == 0) {
		warnx("no devices: name them, or list them in a configuration "
		    "file (device VID:PID)");
		usage(2);
	}
	if ((cmds = calloc((size_t)ncmds, sizeof(*cmds))) == NULL)
		err(1, NULL);
	for (int i = 0; i < ncmds; i++) {
		if (argc == 0)
			memcpy(cmds[i].device, conf.devices[i], DEVICE_MAX + 1);
		else if (!parse_device(argv[i], strlen(argv[i]), cmds[i].device)) {
			warnx("not a device (expected VID:PID, four hex "
			    "digits each, or VID:PID@PORT): %s", argv[i]);
			usage(2);
		}
		cmds[i].action = verb == DETACH ? ACT_DETACH : ACT_ATTACH;
	}

	find_domain(vm, sizeof(vm));
	if (!valid_vm_name(vm, strlen(vm))) {
		escape_text(esc, sizeof(esc), vm, strlen(vm));
		errx(1, "domain '%s' has a name usbserver does not accept "
		    "(letters, digits and ._+- only, not starting with -, "
		    "at most %d bytes)", esc, MAX_VM_NAME);
	}
	for (int i = 0; i < ncmds; i++)
		memcpy(cmds[i].vm, vm, strlen(vm) + 1);
	if (verb == TOGGLE)
		toggle(cmds, ncmds, vm);

	ch = request(cmds, ncmds);
	free(cmds);
	return ch == 0 ? 0 : 1;
}
