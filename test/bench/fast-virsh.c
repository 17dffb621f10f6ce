/*
 * fast-virsh: the benchmark's virsh. It does nothing but tell the
 * benchmark it ran: one datagram with its pid and arguments to calls.sock
 * beside its own binary (found through /proc/self/exe, since servers give
 * virsh their own small environment and may run it by a bare name), then
 * exit 0. As "event", it tells nothing and prints nothing, as virsh's
 * event stream of a quiet libvirt does, until whoever reads it is gone;
 * as "domstate", it says "running"; as "list", it names "test", as
 * test:///default would; as "dumpxml" it fails, since it keeps no
 * domain: a daemon must then leave what it thinks attached as it is.
 * With no command but "-q" (after "-c URI") it is virsh's shell on a
 * pipe: it prompts, echoes each line, and answers each command as above
 * ("echo" and "echo --err" as virsh does), its errors on stderr.
 */
#define _GNU_SOURCE

#include <sys/socket.h>
#include <sys/un.h>

#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CALLS_SOCK	"calls.sock"
#define MSG_MAX		1024
#define LINE_MAX_	4096
#define ARGS_MAX	32

static bool	in_shell;	/* a shell: it runs on after each call */

/* Tells the benchmark of a call with args[0..n), with our pid (0 in a
 * shell, whose end nobody should wait for). 0, or 1 if it cannot. */
static int
tell(char *const args[], int n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char exe[PATH_MAX], msg[MSG_MAX], *slash;
	size_t len;
	ssize_t r;
	int fd;

	if ((r = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		return 1;
	exe[r] = '\0';
	if ((slash = strrchr(exe, '/')) == NULL)
		return 1;
	*slash = '\0';
	r = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", exe, CALLS_SOCK);
	if (r < 0 || (size_t)r >= sizeof(sa.sun_path))
		return 1;
	len = (size_t)snprintf(msg, sizeof(msg), "%ld", in_shell ? 0L :
	    (long)getpid());
	for (int i = 0; i < n; i++) {
		r = snprintf(msg + len, sizeof(msg) - len, " %s", args[i]);
		if (r < 0 || (size_t)r >= sizeof(msg) - len)
			return 1;
		len += (size_t)r;
	}
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    sendto(fd, msg, len, 0, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		perror("fast-virsh: cannot tell the benchmark");
		if (fd != -1)
			close(fd);
		return 1;
	}
	close(fd);
	return 0;
}

/* Answers the command args[0..n): 0, or 1 with an "error:" line. */
static int
answer(char *const args[], int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(args[i], "domstate") == 0) {
			puts("running");
			return 0;
		} else if (strcmp(args[i], "list") == 0) {
			puts("test");
			return 0;
		} else if (strcmp(args[i], "dumpxml") == 0) {
			fputs("error: fast-virsh keeps no domain's XML\n", stderr);
			return 1;
		}
	return tell(args, n);
}

/* Splits line into args as virsh's shell does for what we are given:
 * blanks between words, quotes (single or double) around any part. How
 * many. */
static int
split(char *line, char *args[ARGS_MAX])
{
	char *p = line, *q;
	int n = 0;

	while (n < ARGS_MAX) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '\n')
			break;
		args[n++] = q = p;
		for (char quote = 0; *p != '\0' && *p != '\n' &&
		    (quote || (*p != ' ' && *p != '\t')); p++)
			if (quote == 0 && (*p == '\'' || *p == '"'))
				quote = *p;
			else if (*p == quote)
				quote = 0;
			else
				*q++ = *p;
		if (*p != '\0')
			p++;
		*q = '\0';
	}
	return n;
}

static int
shell(void)
{
	char line[LINE_MAX_], *args[ARGS_MAX];
	int n;

	for (;;) {
		fputs("virsh # ", stdout);
		fflush(stdout);
		if (fgets(line, sizeof(line), stdin) == NULL)
			return 0;
		fputs(line, stdout);
		n = split(line, args);
		if (n >= 2 && strcmp(args[0], "echo") == 0 &&
		    strcmp(args[1], "--err") == 0)
			fprintf(stderr, "error: %s\n", n > 2 ? args[2] : "");
		else if (n >= 1 && strcmp(args[0], "echo") == 0)
			fputs(n > 1 ? args[1] : "", stdout);
		else if (n > 0 && answer(args, n) != 0)
			fputs("error: fast-virsh failed\n", stderr);
	}
}

int
main(int argc, char *argv[])
{
	int first = argc > 2 && strcmp(argv[1], "-c") == 0 ? 3 : 1;

	if (argc == first + 1 && strcmp(argv[first], "-q") == 0) {
		in_shell = true;
		return shell();
	}
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "event") == 0) {
			struct pollfd p = { .fd = STDOUT_FILENO, .events = 0 };

			while (poll(&p, 1, -1) == 0 || (p.revents &
			    (POLLERR | POLLHUP)) == 0)
				;
			return 0;
		}
	return answer(argv + 1, argc - 1);
}
