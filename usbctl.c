/*
 * usbctl: asks usbserver to attach (or detach) host USB devices to the
 * first running libvirt domain, or to the one named.
 *
 *	usbctl [--socket PATH] [--connect URI] [--domain VM] [--virsh PATH]
 *	       [attach|detach] VID:PID...
 *
 * Exit status: 0 if every device moved, 1 if any did not, 2 for a usage
 * error.
 */
#define _GNU_SOURCE

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <spawn.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

#define CONNECT_TRIES	5	/* while the daemon is not there */
#define CONNECT_PAUSE	1	/* seconds between tries */
#define LIST_MAX	4096	/* what we keep of "virsh list" output */
/* How long to wait for the replies: the daemon's default virsh deadline
 * for each command, and some slack. */
#define REPLY_WAIT_S(n)	((VIRSH_TIMEOUT + 5) * (n) + 5)

extern char **environ;

static struct {
	const char	*socket;
	const char	*connect;
	const char	*domain;
	const char	*virsh;
} opt = {
	.socket = DEFAULT_SOCKET,
	.virsh = DEFAULT_VIRSH,
};

/* The first domain "virsh list --name" printed: its first non-empty line.
 * Returns 0, or -1 if there is none or it does not fit. */
static int
list_first(const char *out, size_t len, char *name, size_t size)
{
	const char *p = out, *end = out + len, *s;
	size_t n;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl != NULL ? nl : end;

		n = line_trim(p, (size_t)(eol - p), &s);
		if (n > 0) {
			if (n >= size || memchr(s, '\0', n) != NULL)
				return -1;
			memcpy(name, s, n);
			name[n] = '\0';
			return 0;
		}
		p = eol + 1;
	}
	return -1;
}

/* Runs "virsh [-c URI] list --state-running --name" in the C locale, its
 * stderr going to ours. Returns the length of what it printed (up to
 * size), or -1 if it could not run or failed. */
static ssize_t
list_run(char *out, size_t size)
{
	char *argv[8];
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
	argv[argc++] = (char *)"list";
	argv[argc++] = (char *)"--state-running";
	argv[argc++] = (char *)"--name";
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
		warnx("%s list failed", opt.virsh);
		return -1;
	}
	return (ssize_t)len;
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

static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: usbctl [--socket PATH] [--connect URI] [--domain VM]\n"
	    "              [--virsh PATH] [attach|detach] VID:PID...\n"
	    "\n"
	    "Asks usbserver to attach (default) or detach host USB devices to\n"
	    "the first running libvirt domain, or to the one named.\n"
	    "\n"
	    "  -s, --socket PATH   usbserver's socket (default %s)\n"
	    "  -c, --connect URI   libvirt URI for finding the domain\n"
	    "  -d, --domain VM     the domain (default: the first running one)\n"
	    "  -V, --virsh PATH    the virsh to run (default: virsh on PATH)\n"
	    "  -h, --help          show this help\n"
	    "  -v, --version       show the version\n",
	    DEFAULT_SOCKET);
	exit(status);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "socket",	required_argument,	NULL, 's' },
		{ "connect",	required_argument,	NULL, 'c' },
		{ "domain",	required_argument,	NULL, 'd' },
		{ "virsh",	required_argument,	NULL, 'V' },
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'v' },
		{ NULL,		0,			NULL, 0 },
	};
	enum action action = ACT_ATTACH;
	char vm[LIST_MAX], esc[MAX_LINE];
	struct command *cmds;
	int ch, ncmds;

	while ((ch = getopt_long(argc, argv, "s:c:d:V:hv", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 's':
			opt.socket = optarg;
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
	if (argc > 0 && strcmp(argv[0], "attach") == 0) {
		argc--;
		argv++;
	} else if (argc > 0 && strcmp(argv[0], "detach") == 0) {
		action = ACT_DETACH;
		argc--;
		argv++;
	}
	if (argc == 0)
		usage(2);
	if ((cmds = calloc((size_t)argc, sizeof(*cmds))) == NULL)
		err(1, NULL);
	for (ncmds = 0; ncmds < argc; ncmds++) {
		if (!parse_device(argv[ncmds], strlen(argv[ncmds]),
		    cmds[ncmds].device)) {
			warnx("not a device (expected VID:PID, four hex "
			    "digits each): %s", argv[ncmds]);
			usage(2);
		}
		cmds[ncmds].action = action;
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

	ch = request(cmds, ncmds);
	free(cmds);
	return ch == 0 ? 0 : 1;
}
