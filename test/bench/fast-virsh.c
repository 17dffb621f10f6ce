/*
 * fast-virsh: the benchmark's virsh. It does nothing but tell the
 * benchmark it ran: one datagram with its pid and arguments to calls.sock beside
 * its own binary (found through /proc/self/exe, since servers give virsh
 * their own small environment and may run it by a bare name), then exit 0.
 * As "event", it tells nothing and prints nothing, as virsh's event stream
 * of a quiet libvirt does, until whoever reads it is gone; as "domstate",
 * it says "running"; as "dumpxml" it fails, since it keeps no domain: a
 * daemon must then leave what it thinks attached as it is.
 */
#define _GNU_SOURCE

#include <sys/socket.h>
#include <sys/un.h>

#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CALLS_SOCK	"calls.sock"
#define MSG_MAX		1024

int
main(int argc, char *argv[])
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char exe[PATH_MAX], msg[MSG_MAX], *slash;
	size_t len = 0;
	ssize_t n;
	int fd, i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "event") == 0) {
			struct pollfd p = { .fd = STDOUT_FILENO, .events = 0 };

			while (poll(&p, 1, -1) == 0 || (p.revents &
			    (POLLERR | POLLHUP)) == 0)
				;
			return 0;
		} else if (strcmp(argv[i], "domstate") == 0) {
			puts("running");
			return 0;
		} else if (strcmp(argv[i], "dumpxml") == 0) {
			fputs("error: fast-virsh keeps no domain's XML\n", stderr);
			return 1;
		}
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		return 2;
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) == NULL)
		return 2;
	*slash = '\0';
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", exe, CALLS_SOCK);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return 2;
	len = (size_t)snprintf(msg, sizeof(msg), "%ld", (long)getpid());
	for (i = 1; i < argc; i++) {
		n = snprintf(msg + len, sizeof(msg) - len, " %s",
		    argv[i]);
		if (n < 0 || (size_t)n >= sizeof(msg) - len)
			return 2;
		len += (size_t)n;
	}
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    sendto(fd, msg, len, 0, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		perror("fast-virsh: cannot tell the benchmark");
		return 1;
	}
	close(fd);
	return 0;
}
