/*
 * usbctl: asks usbserver to attach, detach or toggle host USB devices for
 * the first running libvirt domain, or the one named, or to give back
 * what it attached; shows what is attached where, what usbserver would
 * give back by itself, and the host's USB devices.
 *
 *	usbctl [options] [attach|detach|toggle] [VID:PID[@PORT]...]
 *	usbctl [options] status | devices
 *	usbctl [options] [-d VM] release
 *
 * Exit status: 0 if every device moved (or the listing worked), 1 if any
 * did not, 2 for a usage error.
 *
 * The sections, in the order a run meets them:
 *	Declarations: options, what the configuration files give
 *	The configuration files
 *	Finding the domain: usbserver, or virsh list
 *	Plain words for libvirt's refusals
 *	Asking the daemon: the requests and their replies; what it holds
 *	What is attached where: a domain's XML
 *	The host's USB devices: sysfs
 *	status and devices: for people, and JSON for scripts
 *	Start-up: options, toggle, main
 */
#define _GNU_SOURCE

#include <sys/socket.h>
#include <sys/un.h>

#include <dirent.h>
#include <err.h>
#include <getopt.h>
#include <grp.h>

#include "common.h"

/* ------------------------------------------------------------------ */
/* Declarations                                                        */

#define CONNECT_TRIES	5	/* while the daemon is not there */
#define CONNECT_PAUSE	1	/* seconds between tries */
#define MAX_HOSTDEVS	64	/* USB devices we list per domain */
#define MAX_DEVICES	64	/* devices in a configuration file */
#define MAX_USBDEVS	256	/* host devices listed */
#define SYSTEM_CONFIG	"/etc/usbctl.conf"
#define LIST_MAX	4096	/* what we keep of "virsh list" output */
#define ASSIGN_HELD	64	/* usbserver's assign lines we show */
#define LIBVIRT_GROUP	"libvirt"	/* whom libvirt lets manage qemu:///system */
/* How long to wait for the replies: the daemon's default virsh deadline
 * for each command, and some slack. */
#define REPLY_WAIT_S(n)	((VIRSH_TIMEOUT + 5) * (n) + 5)
#define RELEASE_RUNS	16	/* virsh runs a release is waited for: a
				 * keyboard and a mouse for a few domains */

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
	char			socket[108];
	char			connect[256];
	char			domain[MAX_VM_NAME + 1];
	struct usb_device	devices[MAX_DEVICES];
	int			ndevices;
} conf;


/* A host USB device, from sysfs. */
struct usbdev {
	struct usb_device	device;		/* its ids */
	char	port[PORT_MAX + 1];		/* where it is plugged in: "1-2" */
	int	bus, dev;
	char	manufacturer[256], product[256];	/* descriptors: any bytes */
	char	attached[MAX_VM_NAME + 1];	/* the domain, or "" */
};

/* ------------------------------------------------------------------ */
/* The configuration files                                             */

/* One line of a configuration file: "domain VM", "device VID:PID",
 * "socket PATH" or "connect URI"; '#' starts a comment. Exits on a line
 * it does not understand. */
static void
conf_line(const char *path, int lineno, const char *line, size_t len,
    int *ndevices)
{
	const char *fld[3], *hash;
	size_t flen[3], nf;

	if (len > MAX_CONFIG_LINE)
		errx(2, "%s:%d: line too long", path, lineno);
	if (memchr(line, '\0', len) != NULL)
		errx(2, "%s:%d: a NUL byte", path, lineno);
	if ((hash = memchr(line, '#', len)) != NULL)
		len = (size_t)(hash - line);
	if ((nf = split_fields(line, len, fld, flen, 3)) == 0)
		return;
	if (nf != 2)
		errx(2, "%s:%d: expected 'KEY VALUE'", path, lineno);
	if (field_is(fld[0], flen[0], "device")) {
		if (*ndevices == MAX_DEVICES)
			errx(2, "%s:%d: more than %d devices", path, lineno,
			    MAX_DEVICES);
		if (!device_parse(fld[1], flen[1], &conf.devices[*ndevices]))
			errx(2, "%s:%d: not a device (VID:PID)", path, lineno);
		(*ndevices)++;
	} else if (field_is(fld[0], flen[0], "domain") &&
	    valid_vm_name(fld[1], flen[1]))
		snprintf(conf.domain, sizeof(conf.domain), "%.*s", (int)flen[1],
		    fld[1]);
	else if (field_is(fld[0], flen[0], "socket") &&
	    flen[1] < sizeof(conf.socket))
		snprintf(conf.socket, sizeof(conf.socket), "%.*s", (int)flen[1],
		    fld[1]);
	else if (field_is(fld[0], flen[0], "connect") &&
	    flen[1] < sizeof(conf.connect))
		snprintf(conf.connect, sizeof(conf.connect), "%.*s",
		    (int)flen[1], fld[1]);
	else
		errx(2, "%s:%d: expected domain, device, socket or connect, "
		    "with a valid value", path, lineno);
}

/* Reads a configuration file. One that is not there is fine unless it
 * was named with --config; one we may not read is passed over. A later
 * file's list of devices replaces an earlier one's. */
static void
conf_load(const char *path, bool must)
{
	static char buf[FILE_MAX + 1];
	const char *line;
	struct stat st;
	size_t at = 0, llen;
	int lineno = 0, ndevices = 0;
	ssize_t len;

	/* A regular file only: a FIFO must not hang us, nor /dev/zero
	 * make us spin. */
	if ((len = file_read(path, buf, sizeof(buf), &st, true)) == -1) {
		/* A file we may not open is not ours to read: go on. One we
		 * opened and could not read whole is a broken one. */
		if (must || errno == EINVAL || errno == EFBIG)
			err(2, "%s", path);
		if (errno != ENOENT)
			warn("%s", path);
		return;
	}
	while (text_line(buf, (size_t)len, &at, &line, &llen))
		conf_line(path, ++lineno, line, llen, &ndevices);
	if (ndevices > 0)
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

/* ------------------------------------------------------------------ */
/* Finding the domain: usbserver, or virsh list                       */

static ssize_t	daemon_domains(char *, size_t);
static int	daemon_fd = -1;		/* left open by daemon_domains() */

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

/* Runs "virsh [-c URI] ARGS..." in the C locale, within the daemon's
 * deadline for virsh, its stderr going to ours. Returns the length of
 * what it printed (up to size), or -1 if it could not run, failed or
 * hung. */
static ssize_t
virsh_capture(const char *const args[], char *out, size_t size)
{
	char *argv[16];
	struct run r = { .argv = argv, .timeout_s = VIRSH_TIMEOUT,
	    .search = true, .own_stderr = true, .out = out, .outsize = size };
	int argc = 0;

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
	r.envp = environ;
	run_program(&r);
	switch (r.outcome) {
	case RUN_OK:
		return (ssize_t)r.outlen;
	case RUN_NORUN:
		errno = r.err;
		warn("cannot run %s", opt.virsh);
		break;
	case RUN_TIMED_OUT:
		warnx("%s %s timed out after %d s", opt.virsh, args[0],
		    VIRSH_TIMEOUT);
		break;
	case RUN_FAILED:
		warnx("%s %s failed", opt.virsh, args[0]);
		break;
	}
	return -1;
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

/* The domain to use: --domain, or the first running one. That is the
 * first usbserver names: its own virsh, kept running, answers quicker
 * than one of ours would start, and its domains are the ones it moves
 * devices to. Else the first "virsh list" names. Exits on failure. */
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
	if ((len = daemon_domains(out, sizeof(out))) == -1 &&
	    (len = list_run(out, sizeof(out))) == -1)
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
	if (strstr(reason, LIBVIRT_IN_USE) != NULL)
		return "another VM holds this device: detach it there first "
		    "(usbctl --domain OTHER detach VID:PID), or see usbctl status";
	if (strstr(reason, LIBVIRT_MULTIPLE) != NULL)
		return "two host devices share this VID:PID: name one by its "
		    "port, VID:PID@PORT (usbctl devices shows the ports)";
	if (strstr(reason, LIBVIRT_NOT_FOUND) != NULL)
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
 * Shows the command that names one of two devices with q's ids, from the
 * daemon's reason (reason_add_ports). False when the reason names none
 * (an older daemon, or no such device in its sysfs).
 */
static bool
port_hint(FILE *f, const struct request *q, const char *reason)
{
	char dev[DEVICE_TEXT];
	struct usb_device d;

	if (!reason_named(reason, &d))
		return false;
	device_text(&d, dev);
	fprintf(f, "usbctl: two host devices share %.*s: name one by its port "
	    "(usbctl devices shows them), as in:\n    usbctl ", DEVICE_LEN,
	    dev);
	if (opt.domain != NULL) {
		fputs("--domain ", f);
		shell_word(f, opt.domain);
		fputc(' ', f);
	}
	fprintf(f, "%s %s\n", action_name(q->action), dev);
	return true;
}

/* ------------------------------------------------------------------ */
/* Asking the daemon: the requests and their replies                   */

/* Connects to the daemon, trying that many times while it is not there
 * or takes no one (its queue is full: a non-blocking connect says so at
 * once, where a blocking one would wait with no end); then says why it
 * gave up. With one try, -1 and errno instead. */
static int
daemon_connect(int tries)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, e;

	if (fit(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", opt.socket),
	    sizeof(sa.sun_path)) < 0)
		errx(1, "socket path too long: %s", opt.socket);
	for (int i = 1; ; i++) {
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, 0)) == -1)
			err(1, "socket");
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			if (fcntl(fd, F_SETFL, 0) == -1)
				err(1, "fcntl");
			return fd;
		}
		e = errno;
		close(fd);
		if (tries == 1) {
			errno = e;
			return -1;
		}
		if (e == EAGAIN && i == tries)
			errx(1, "usbserver at %s takes no more clients: its queue "
			    "stayed full for %d s", opt.socket, tries *
			    CONNECT_PAUSE);
		if ((e != ENOENT && e != ECONNREFUSED && e != EAGAIN) ||
		    i == tries) {
			errno = e;
			err(1, "cannot connect to usbserver at %s", opt.socket);
		}
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

/* The daemon's replies, read a line at a time within a deadline. */
struct replies {
	int		fd;
	int64_t		deadline;
	bool		timed_out;
	char		buf[4096];
	const char	*p;		/* what is left of buf */
	size_t		n;
	struct linebuf	lb;
};

/* More bytes within the deadline: false at EOF or when it passed. */
static bool
replies_read(struct replies *r)
{
	struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
	int64_t left;
	ssize_t got;

	for (;;) {
		if ((left = r->deadline - now_ms()) <= 0 ||
		    poll(&pfd, 1, (int)(left > INT_MAX ? INT_MAX : left)) == 0) {
			r->timed_out = true;
			return false;
		}
		if ((got = read(r->fd, r->buf, sizeof(r->buf))) == -1 &&
		    errno == EINTR)
			continue;
		if (got == -1)
			err(1, "cannot read from usbserver");
		r->p = r->buf;
		r->n = (size_t)got;
		return got > 0;
	}
}

/* The next reply line in r->lb (LINE_READY, or LINE_OVERLONG); LINE_MORE
 * when no more will come. */
static enum line_event
replies_next(struct replies *r)
{
	enum line_event ev;

	for (;;) {
		while (r->n > 0)
			if ((ev = line_feed(&r->lb, &r->p, &r->n)) != LINE_MORE)
				return ev;
		if (!replies_read(r))
			return r->timed_out ? LINE_MORE : line_finish(&r->lb);
	}
}

/* Says what the daemon answered to q, when it is not "ok": false then. */
static bool
reply_judge(const struct request *q, enum line_event ev, const char *line)
{
	char text[REQUEST_TEXT];
	const char *reason;

	request_text(text, q);
	if (ev == LINE_OVERLONG) {
		warnx("%s: reply too long", text);
		return false;
	}
	switch (reply_parse(line, q, &reason)) {
	case REPLY_OK:
		return true;
	case REPLY_ERROR:
		warnx("%s: %s", text, reason);
		if (!port_hint(stderr, q, reason) && reason_hint(reason) != NULL)
			fprintf(stderr, "usbctl: %s\n", reason_hint(reason));
		return false;
	case REPLY_UNEXPECTED:
		break;
	}
	warnx("%s: unexpected reply from usbserver", text);
	return false;
}

/* Sends "reply on" and reqs[0..n) on fd, the daemon's connection, ends
 * writing unless more is to follow, and readies r to read the replies
 * within the time they may take. */
static void
replies_start(struct replies *r, int fd, const struct request *reqs, int n,
    bool more)
{
	char line[MAX_LINE + 1];
	int len, runs = 0;

	memset(r, 0, sizeof(*r));
	r->fd = fd;
	send_all(fd, "reply on\n", 9);
	for (int i = 0; i < n; i++) {
		if ((len = request_format(line, sizeof(line), &reqs[i])) < 0)
			errx(1, "command too long");
		send_all(fd, line, (size_t)len);
		runs += reqs[i].action == ACT_RELEASE ? RELEASE_RUNS : 1;
	}
	if (!more && shutdown(fd, SHUT_WR) == -1)
		err(1, "cannot write to usbserver");
	line_clear(&r->lb);
	r->deadline = now_ms() + (int64_t)REPLY_WAIT_S(runs) * 1000;
}

/* Sends every request with replies on, then reads one reply each.
 * Returns the number of requests that did not succeed. */
static int
request(const struct request *reqs, int n)
{
	struct replies r;
	char text[REQUEST_TEXT];
	enum line_event ev;
	int done = 0, failed = 0;

	replies_start(&r, daemon_fd != -1 ? daemon_fd : daemon_connect(
	    CONNECT_TRIES), reqs, n, false);
	daemon_fd = -1;
	while (done < n && (ev = replies_next(&r)) != LINE_MORE)
		failed += !reply_judge(&reqs[done++], ev, r.lb.buf);
	close(r.fd);
	for (; done < n; done++, failed++)
		warnx("%s: %s", request_text(text, &reqs[done]), r.timed_out ?
		    "no reply from usbserver in time" : "no reply from "
		    "usbserver (is it an older server without replies?)");
	return failed;
}

/*
 * The running domains as usbserver says them ("domains"), a name a line
 * into out: its length, or -1 when usbserver is not there, is an older
 * one that does not know the request, or could not tell. Asked once,
 * without waiting for it to come up; the connection is left open for
 * the requests that follow (daemon_fd), since a connection may wait
 * its turn when others press on the daemon.
 */
static ssize_t
daemon_domains(char *out, size_t size)
{
	static const struct request q = { .action = ACT_DOMAINS };
	const size_t dl = strlen(DOMAINS_LINE);
	const char *reason;
	struct replies r;
	size_t len = 0;
	ssize_t result = -2;
	int fd;

	if ((fd = daemon_connect(1)) == -1)
		return -1;
	replies_start(&r, fd, &q, 1, true);
	while (result == -2 && replies_next(&r) == LINE_READY) {
		if (reply_parse(r.lb.buf, &q, &reason) == REPLY_OK)
			result = (ssize_t)len;
		else if (r.lb.len > dl && strncmp(r.lb.buf, DOMAINS_LINE,
		    dl) == 0 && r.lb.len - dl + 1 < size - len)
			len += (size_t)snprintf(out + len, size - len, "%s\n",
			    r.lb.buf + dl);
		else
			result = -1;
	}
	if (result >= 0 && r.n == 0)
		daemon_fd = fd;
	else
		close(fd);
	return result < 0 ? -1 : result;
}

/* What usbserver holds: its ledger and its leases, from its "status". */
struct lease_held {
	char		vm[MAX_VM_NAME + 1];
	unsigned	seconds, left;
};

static struct {
	bool			known;	/* usbserver answered */
	struct ledger_entry	e[LEDGER_MAX];
	int			n;
	struct lease_held	lease[LEASE_MAX];
	int			nlease;
	struct assign_held {
		char			vm[MAX_VM_NAME + 1];
		struct usb_device	device;
		bool			attached;
	}			assign[ASSIGN_HELD];
	int			nassign;
} held;

/* One line of the status's answer: false when it is no ledger or lease
 * line, or there are too many. */
static bool
held_line(const char *line, size_t len)
{
	const size_t ll = strlen(STATUS_LEDGER), sl = strlen(STATUS_LEASE);
	const size_t al = strlen(STATUS_ASSIGN);
	struct assign_held *a;
	struct lease_held *h;

	if (len > ll && strncmp(line, STATUS_LEDGER, ll) == 0 &&
	    held.n < LEDGER_MAX)
		return ledger_parse(line + ll, len - ll, &held.e[held.n++]);
	if (len > sl && strncmp(line, STATUS_LEASE, sl) == 0 &&
	    held.nlease < LEASE_MAX) {
		h = &held.lease[held.nlease++];
		return lease_parse(line + sl, len - sl, h->vm, &h->seconds,
		    &h->left);
	}
	if (len > al && strncmp(line, STATUS_ASSIGN, al) == 0 &&
	    held.nassign < ASSIGN_HELD) {
		a = &held.assign[held.nassign++];
		return assign_parse(line + al, len - al, a->vm, &a->device,
		    &a->attached);
	}
	return false;
}

/* Asks usbserver what it holds, once and without waiting for it to come
 * up: the rest of status is worth showing without it. False, having said
 * why, when it cannot be asked or its answer makes no sense. */
static bool
held_read(void)
{
	static const struct request q = { .action = ACT_STATUS };
	struct replies r;
	const char *reason;
	bool ended = false;
	int fd;

	if ((fd = daemon_connect(1)) == -1) {
		/* Not running: then it holds nothing. */
		if (errno != ENOENT && errno != ECONNREFUSED)
			warn("usbserver at %s (what it gives back is not "
			    "shown)", opt.socket);
		return false;
	}
	replies_start(&r, fd, &q, 1, false);
	while (!ended && replies_next(&r) == LINE_READY) {
		ended = true;
		switch (reply_parse(r.lb.buf, &q, &reason)) {
		case REPLY_OK:
			held.known = true;
			break;
		case REPLY_ERROR:
			warnx("usbserver's status: %s", reason);
			break;
		case REPLY_UNEXPECTED:
			if (!(ended = !held_line(r.lb.buf, r.lb.len)))
				break;
			warnx("usbserver's status: unexpected line");
			break;
		}
	}
	close(r.fd);
	if (!ended)
		warnx("usbserver's status: %s", r.timed_out ?
		    "no answer in time" : "no answer (is it an older server?)");
	return held.known;
}

/* The lease of vm, or NULL. */
static const struct lease_held *
held_lease(const char *vm)
{
	for (int i = 0; i < held.nlease; i++)
		if (strcmp(held.lease[i].vm, vm) == 0)
			return &held.lease[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* What is attached where: a domain's XML                              */

/* The USB devices attached to vm, from "virsh dumpxml"; -1 on failure. */
static int
domain_hostdevs(const char *vm, struct hostdev *out, int max)
{
	const char *const args[] = { "dumpxml", "--domain", vm, NULL };
	static char xml[XML_READ_MAX + 1];
	ssize_t len = virsh_capture(args, xml, XML_READ_MAX);
	int n;

	if (len < 0)
		return -1;
	xml[len] = '\0';		/* the parser's strstr stops here */
	if ((n = domain_hostdevs_parse(xml, (size_t)len, out, max)) < 0)
		warnx("%s: virsh dumpxml printed no <devices>", vm);
	return n;
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
/* The host's USB devices: sysfs                                       */

/* The device at port, its directory dfd: false if it has no ids. */
static bool
usbdev_read(int dfd, const char *port, struct usbdev *u)
{
	size_t n = strlen(port);

	if (n >= sizeof(u->port) || !sysfs_ids(dfd, &u->device))
		return false;
	memcpy(u->port, port, n + 1);
	u->bus = (int)sysfs_attr_number(dfd, "busnum", 10, 255);
	u->dev = (int)sysfs_attr_number(dfd, "devnum", 10, 255);
	if (sysfs_attr(dfd, "manufacturer", u->manufacturer,
	    sizeof(u->manufacturer)) < 0)
		u->manufacturer[0] = '\0';
	if (sysfs_attr(dfd, "product", u->product, sizeof(u->product)) < 0)
		u->product[0] = '\0';
	u->attached[0] = '\0';
	return true;
}

static int
usbdev_order(const void *a, const void *b)
{
	const struct usbdev *x = a, *y = b;

	return x->bus != y->bus ? x->bus - y->bus : x->dev - y->dev;
}

/* The host's USB devices (not interfaces, not root hubs), by bus and
 * device number; how many, or -1 if there is no such tree. */
static int
sysfs_devices(struct usbdev *out, int max)
{
	struct dirent *de;
	int n = 0, dfd;
	DIR *d = opendir(opt.sysfs);

	if (d == NULL)
		return -1;
	while (n < max && (de = readdir(d)) != NULL) {
		/* Devices only: not interfaces ("1-2:1.0"), not root hubs
		 * ("usb1"). */
		if (!valid_port(de->d_name, strlen(de->d_name)) ||
		    (dfd = sysfs_dir(dirfd(d), de->d_name)) == -1)
			continue;
		n += usbdev_read(dfd, de->d_name, &out[n]);
		close(dfd);
	}
	closedir(d);
	qsort(out, (size_t)n, sizeof(out[0]), usbdev_order);
	return n;
}

/* Is the domain's hostdev h the device asked for? By ids; with a port,
 * also by the bus and device number sysfs gives that port now (libvirt
 * shows the address the daemon gave it). */
static bool
hostdev_is(const struct hostdev *h, const struct usb_device *d)
{
	char dir[PATH_MAX];
	bool same;
	int dfd;

	if (!device_ids_equal(&h->device, d))
		return false;
	if (!device_has_port(d) || h->bus == -1)
		return true;
	if (fit(snprintf(dir, sizeof(dir), "%s/%s", opt.sysfs, d->port),
	    sizeof(dir)) < 0 || (dfd = sysfs_dir(AT_FDCWD, dir)) == -1)
		return false;
	same = h->bus == sysfs_attr_number(dfd, "busnum", 10, 255) &&
	    h->dev == sysfs_attr_number(dfd, "devnum", 10, 255);
	close(dfd);
	return same;
}

/* Marks the devices attached to vm: by bus and device number where
 * libvirt says them, else by ids. -1 if virsh could not tell. */
static int
mark_domain(const char *vm, struct usbdev *devs, int n)
{
	struct hostdev hd[MAX_HOSTDEVS];
	int k = domain_hostdevs(vm, hd, MAX_HOSTDEVS);

	for (int i = 0; i < k; i++)
		for (int j = 0; j < n; j++)
			if (device_ids_equal(&hd[i].device, &devs[j].device) &&
			    (hd[i].bus < 0 || (hd[i].bus == devs[j].bus &&
			    hd[i].dev == devs[j].dev)))
				snprintf(devs[j].attached,
				    sizeof(devs[j].attached), "%s", vm);
	return k < 0 ? -1 : 0;
}

/* Marks the devices attached to each running domain. -1 when virsh
 * could not tell of every domain. */
static int
mark_attached(struct usbdev *devs, int n)
{
	static char out[LIST_MAX];
	char vm[MAX_VM_NAME + 1];
	ssize_t len = list_run(out, sizeof(out));
	const char *p = out;
	int r, rc = len < 0 ? -1 : 0;

	while (len > 0 && (r = list_next(&p, out + len, vm, sizeof(vm))) != 0)
		if (r < 0 || mark_domain(vm, devs, n) == -1)
			rc = -1;
	return rc;
}

/* ------------------------------------------------------------------ */
/* status and devices: for people, and JSON for scripts                */

/* The length of the well-formed UTF-8 sequence at s (1 to 4), or 0: not
 * overlong, no surrogate, at most U+10FFFF. */
static int
utf8_len(const unsigned char *s)
{
	static const unsigned least[] = { 0, 0, 0x80, 0x800, 0x10000 };
	int n = s[0] < 0x80 ? 1 : s[0] < 0xc2 ? 0 : s[0] < 0xe0 ? 2 :
	    s[0] < 0xf0 ? 3 : s[0] <= 0xf4 ? 4 : 0;
	unsigned cp = s[0] & (0x7fu >> n);

	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if (n > 1 && (cp < least[n] || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff)))
		return 0;
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

/* What usbserver holds for vm, as JSON members: its ledger's devices
 * and its lease (null: none); nothing when usbserver did not answer. */
static void
held_json(const char *vm)
{
	const struct lease_held *h = held_lease(vm);
	char dev[DEVICE_TEXT];
	int k = 0;

	if (!held.known)
		return;
	printf(",\"ledger\":[");
	for (int i = 0; i < held.n; i++) {
		const struct ledger_entry *e = &held.e[i];

		if (strcmp(e->vm, vm) != 0)
			continue;
		printf("%s{\"device\":\"%s\",\"port\":", k++ > 0 ? "," : "",
		    device_text(&e->device, dev));
		if (e->at[0] != '\0')
			printf("\"%s\"", e->at);
		else
			fputs("null", stdout);
		printf(",\"since\":%lld}", e->since);
	}
	printf("],\"lease\":");
	if (h != NULL)
		printf("{\"seconds\":%u,\"left\":%u}", h->seconds, h->left);
	else
		fputs("null", stdout);
	printf(",\"assigned\":[");
	k = 0;
	for (int i = 0; i < held.nassign; i++)
		if (strcmp(held.assign[i].vm, vm) == 0)
			printf("%s{\"device\":\"%s\",\"attached\":%s}",
			    k++ > 0 ? "," : "", device_text(&held.assign[i].device,
			    dev), held.assign[i].attached ? "true" : "false");
	printf("]");
}

/* One domain's line(s) of usbctl status, its devices devs[0..n). */
static void
status_domain(const char *vm, const struct hostdev *devs, int n, bool first)
{
	char esc[MAX_LINE], dev[DEVICE_TEXT];

	escape_text(esc, sizeof(esc), vm, strlen(vm));
	if (opt.json) {
		printf("%s{\"domain\":", first ? "" : ",");
		json_string(vm);
		printf(",\"devices\":[");
	}
	for (int i = 0; i < n; i++) {
		device_text(&devs[i].device, dev);
		if (opt.json) {
			printf("%s{\"device\":\"%s\",\"bus\":", i > 0 ? "," : "",
			    dev);
			json_number(devs[i].bus);
			printf(",\"devnum\":");
			json_number(devs[i].dev);
			printf("}");
		} else if (devs[i].bus >= 0)
			printf("%-24s %-10s %03d:%03d\n", esc, dev, devs[i].bus,
			    devs[i].dev);
		else
			printf("%-24s %-10s -\n", esc, dev);
	}
	if (opt.json) {
		printf("]");
		held_json(vm);
		printf("}");
	} else if (n == 0)
		printf("%-24s %-10s\n", esc, "-");
}

/* Is vm in the "virsh list" output list[0..len)? */
static bool
listed(const char *list, size_t len, const char *vm)
{
	char name[LIST_MAX];
	const char *p = list;
	int r;

	while ((r = list_next(&p, list + len, name, sizeof(name))) != 0)
		if (r > 0 && strcmp(name, vm) == 0)
			return true;
	return false;
}

/* The names in what usbserver holds that list[0..len) lacks, each once,
 * each shown as a domain of its own by show(). */
static void
held_unlisted(const char *list, size_t len, int *shown,
    void (*show)(const char *, int *))
{
	const char *vm;

	bool seen;

	for (int i = 0; i < held.n + held.nlease; i++) {
		vm = i < held.n ? held.e[i].vm : held.lease[i - held.n].vm;
		seen = listed(list, len, vm);
		for (int j = 0; j < i && !seen; j++)
			seen = strcmp(vm, j < held.n ? held.e[j].vm :
			    held.lease[j - held.n].vm) == 0;
		if (!seen)
			show(vm, shown);
	}
}

/* A domain only usbserver knows of (shut off, say): in JSON, without
 * the devices its XML would list. */
static void
held_domain_json(const char *vm, int *shown)
{
	printf("%s{\"domain\":", (*shown)++ == 0 ? "" : ",");
	json_string(vm);
	printf(",\"devices\":null");
	held_json(vm);
	printf("}");
}

/* usbserver's ledger and leases, for people: of --domain's domain, or
 * of all. */
static void
held_text(void)
{
	char dev[DEVICE_TEXT], when[32];
	struct tm tm;
	time_t t;

	printf("\n%-24s %-10s %-10s %s\n", "GIVEN BACK BY USBSERVER", "DEVICE",
	    "PORT", "SINCE");
	for (int i = 0; i < held.n; i++) {
		const struct ledger_entry *e = &held.e[i];

		if (opt.domain != NULL && strcmp(opt.domain, e->vm) != 0)
			continue;
		t = (time_t)e->since;
		if (localtime_r(&t, &tm) == NULL ||
		    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm) == 0)
			snprintf(when, sizeof(when), "%lld", e->since);
		printf("%-24s %-10s %-10s %s\n", e->vm, device_text(&e->device,
		    dev), e->at[0] != '\0' ? e->at : "-", when);
	}
	for (int i = 0; i < held.nlease; i++) {
		const struct lease_held *h = &held.lease[i];

		if (opt.domain == NULL || strcmp(opt.domain, h->vm) == 0)
			printf("%-24s lease %u s, %u s left\n", h->vm,
			    h->seconds, h->left);
	}
	for (int i = 0; i < held.nassign; i++) {
		const struct assign_held *a = &held.assign[i];

		if (opt.domain == NULL || strcmp(opt.domain, a->vm) == 0)
			printf("%-24s assigned %s, %s\n", a->vm,
			    device_text(&a->device, dev), a->attached ?
			    "attached" : "waiting for the domain or the device");
	}
}

/* "usbctl status": the USB devices attached to each running domain, and
 * what usbserver would give back by itself: its ledger and leases. */
static int
cmd_status(void)
{
	static char out[LIST_MAX];
	struct hostdev devs[MAX_HOSTDEVS];
	char vm[LIST_MAX];
	int failed = 0, shown = 0, r, n;
	ssize_t len = domains_to_show(out, sizeof(out));
	const char *p = out;

	if (len < 0)
		return 1;
	held_read();
	if (opt.json)
		printf("[");
	else
		printf("%-24s %-10s %s\n", "DOMAIN", "DEVICE", "BUS:DEV");
	while ((r = list_next(&p, out + len, vm, sizeof(vm))) != 0) {
		if (r < 0 || (n = domain_hostdevs(vm, devs, MAX_HOSTDEVS)) < 0)
			failed++;
		else
			status_domain(vm, devs, n, shown++ == 0);
	}
	if (opt.json && held.known && opt.domain == NULL)
		held_unlisted(out, (size_t)len, &shown, held_domain_json);
	if (opt.json)
		printf("]\n");
	else if (held.known)
		held_text();
	return failed > 0;
}

/* One host device's line of usbctl devices. */
static void
devices_line(const struct usbdev *u, bool first)
{
	char desc[520], esc[sizeof(desc) * 4], att[MAX_VM_NAME * 4 + 1];
	char bd[16], dev[DEVICE_TEXT];

	device_text(&u->device, dev);
	if (opt.json) {
		printf("%s{\"device\":\"%s\",\"port\":\"%s\",\"bus\":%d,"
		    "\"devnum\":%d,\"manufacturer\":", first ? "" : ",", dev,
		    u->port, u->bus, u->dev);
		json_string(u->manufacturer);
		printf(",\"product\":");
		json_string(u->product);
		printf(",\"attached_to\":");
		if (u->attached[0] != '\0')
			json_string(u->attached);
		else
			printf("null");
		printf("}");
		return;
	}
	snprintf(desc, sizeof(desc), "%s%s%s", u->manufacturer,
	    u->manufacturer[0] != '\0' && u->product[0] != '\0' ? " " : "",
	    u->product);
	escape_text(esc, sizeof(esc), desc, strlen(desc));
	escape_text(att, sizeof(att), u->attached, strlen(u->attached));
	snprintf(bd, sizeof(bd), "%03d:%03d", u->bus, u->dev);
	printf("%-10s %-9s %-7s %-16s %s\n", dev, u->port, bd,
	    att[0] != '\0' ? att : "-", esc);
}

/* "usbctl devices": the host's USB devices, and where they are. */
static int
cmd_devices(void)
{
	static struct usbdev devs[MAX_USBDEVS];
	int n = sysfs_devices(devs, MAX_USBDEVS), failed;

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
	for (int i = 0; i < n; i++)
		devices_line(&devs[i], i == 0);
	if (opt.json)
		printf("]\n");
	return failed;
}

/* ------------------------------------------------------------------ */
/* Start-up: options, toggle, main                                     */

static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: usbctl [options] [attach|detach|toggle] [VID:PID[@PORT]...]\n"
	    "       usbctl [options] status|devices\n"
	    "       usbctl [-d VM] release\n"
	    "\n"
	    "Asks usbserver to attach (the default), detach or toggle host USB\n"
	    "devices for the first running libvirt domain, or the one named;\n"
	    "without devices, those of the configuration file. status shows\n"
	    "what is attached to each running domain, devices the host's USB\n"
	    "devices and where they are. release has usbserver give back what\n"
	    "it attached to the domain named with -d, or to every domain.\n"
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
static void
toggle(struct request *reqs, int n, const char *vm)
{
	struct hostdev devs[MAX_HOSTDEVS];
	int k = domain_hostdevs(vm, devs, MAX_HOSTDEVS);

	if (k < 0)
		exit(1);
	for (int i = 0; i < n; i++) {
		reqs[i].action = ACT_ATTACH;
		for (int j = 0; j < k; j++)
			if (hostdev_is(&devs[j], &reqs[i].device))
				reqs[i].action = ACT_DETACH;
	}
}

enum verb { ATTACH, DETACH, TOGGLE, STATUS, DEVICES, RELEASE };

/* The options, then the verb: what main is asked to do. argv[*optindp..]
 * is what is left, the devices. */
static enum verb
parse_options(int argc, char *argv[], int *optindp)
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
	static const char *const verbs[] = { "attach", "detach", "toggle",
	    "status", "devices", "release" };
	const struct opt_word words[] = {
		{ 's', &opt.socket }, { 'c', &opt.connect },
		{ 'd', &opt.domain }, { 'V', &opt.virsh },
		{ 'C', &opt.config }, { 'S', &opt.sysfs },
	};
	size_t i;
	int ch;

	while ((ch = getopt_long(argc, argv, "s:c:d:V:C:jhv", longopts,
	    NULL)) != -1) {
		if (opt_word(words, sizeof(words) / sizeof(words[0]), ch, optarg))
			;
		else if (ch == 'j')
			opt.json = true;
		else if (ch == 'h')
			usage(0);
		else if (ch == 'v') {
			printf("usbctl %s\n", USBSERVER_VERSION);
			exit(0);
		} else
			usage(2);
		opt.socket_given |= ch == 's';
	}
	*optindp = optind;
	for (i = 0; optind < argc && i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(argv[optind], verbs[i]) == 0) {
			(*optindp)++;
			return (enum verb)i;
		}
	return ATTACH;
}

/* The requests for the devices named, else those of the configuration
 * file: n of them, to free, their domain yet to fill in. */
static struct request *
requests_make(char *devs[], int ndevs, enum verb verb, int *n)
{
	struct request *reqs;

	if ((*n = ndevs > 0 ? ndevs : conf.ndevices) == 0) {
		warnx("no devices: name them, or list them in a configuration "
		    "file (device VID:PID)");
		usage(2);
	}
	if ((reqs = calloc((size_t)*n, sizeof(*reqs))) == NULL)
		err(1, NULL);
	for (int i = 0; i < *n; i++) {
		if (ndevs == 0)
			reqs[i].device = conf.devices[i];
		else if (!device_parse(devs[i], strlen(devs[i]),
		    &reqs[i].device)) {
			warnx("not a device (expected VID:PID, four hex "
			    "digits each, or VID:PID@PORT): %s", devs[i]);
			usage(2);
		}
		reqs[i].action = verb == DETACH ? ACT_DETACH : ACT_ATTACH;
	}
	return reqs;
}

/*
 * "usbctl release": the daemon gives back every device it attached to
 * the domain named on the command line, or to every domain. A domain
 * from the configuration file is no default here: this is the way out,
 * bound to a host key or run from ssh, when a guest holds the keyboard.
 */
static int
cmd_release(const char *domain)
{
	struct request q = { .action = ACT_RELEASE };
	char esc[MAX_LINE];

	if (domain != NULL && (strlen(domain) > MAX_VM_NAME ||
	    !valid_vm_name(domain, strlen(domain)))) {
		escape_text(esc, sizeof(esc), domain, strlen(domain));
		errx(2, "not a domain name usbserver accepts: %s", esc);
	}
	if (domain != NULL)
		memcpy(q.vm, domain, strlen(domain) + 1);
	return request(&q, 1) == 0 ? 0 : 1;
}

int
main(int argc, char *argv[])
{
	char vm[LIST_MAX], esc[MAX_LINE];
	struct request *reqs;
	const char *domain;
	enum verb verb;
	int first, n, failed;

	verb = parse_options(argc, argv, &first);
	domain = opt.domain;	/* the command line's, before the files' */
	conf_apply();
	if (verb == STATUS || verb == DEVICES || verb == RELEASE) {
		if (first < argc)
			usage(2);
		if (verb == RELEASE)
			return cmd_release(domain);
		return verb == STATUS ? cmd_status() : cmd_devices();
	}
	reqs = requests_make(argv + first, argc - first, verb, &n);
	find_domain(vm, sizeof(vm));
	if (!valid_vm_name(vm, strlen(vm))) {
		escape_text(esc, sizeof(esc), vm, strlen(vm));
		errx(1, "domain '%s' has a name usbserver does not accept "
		    "(letters, digits and ._+- only, not starting with -, "
		    "at most %d bytes)", esc, MAX_VM_NAME);
	}
	for (int i = 0; i < n; i++)
		memcpy(reqs[i].vm, vm, strlen(vm) + 1);
	if (verb == TOGGLE)
		toggle(reqs, n, vm);
	failed = request(reqs, n);
	free(reqs);
	return failed == 0 ? 0 : 1;
}
