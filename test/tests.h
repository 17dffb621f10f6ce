/*
 * tests.h: the suites of the Check test runner (test/check_main.c) and
 * the helpers they share (test/helpers.c).
 */
#ifndef USBSERVER_TESTS_H
#define USBSERVER_TESTS_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One suite per area, most basic first. */
Suite *parse_suite(void);	/* test_common.c: validators, line parser, assembly */
Suite *text_suite(void);	/* test_common.c: XML, reply and escaping text */
Suite *virsh_suite(void);	/* test_virsh.c: the daemon's virsh runner and XML file */
Suite *client_suite(void);	/* test_client.c: usbctl's parsing and the client live */
Suite *daemon_suite(void);	/* test_daemon.c: the daemon live over its socket */
Suite *load_suite(void);	/* test_load.c: hundreds of clients, and faults */
Suite *e2e_suite(void);		/* test_e2e.c: real libvirtd, QEMU guest, virsh */
/* The hostile peer's attacks are one test case of the load and faults
 * suite; the files that hold a test's helpers add their part to it. */
void	daemon_attacks(TCase *);	/* test_daemon.c */
void	client_attacks(TCase *);	/* test_client.c */

/* ------------------------------------------------------------------ */
/* helpers.c: one test's world, rebuilt for every test (Check forks).  */

#define WAIT_MS		10000	/* generous bound on any awaited event */


/* Lines from a descriptor, read with a deadline. */
struct reader {
	int	fd;
	size_t	len;
	char	buf[8192];
};

struct world {
	char		dir[64];	/* the test's, in scratch_dir() */
	char		sock[108];	/* the daemon's socket: fits sun_path */
	char		virsh[128];	/* the fake virsh script */
	char		xmldir[128];	/* where the daemon writes XML */
	char		config[128];	/* the daemon's --config: empty */
	char		qemu_run[128];	/* its --qemu-run-dir (libvirt's pid
					 * files), unless empty */
	bool		chown_only;	/* start it with CAP_CHOWN alone */
	const char	*prefix[8];	/* run it under these (NULL-ended) */
	const char	*env[4];	/* more environment, "NAME=VALUE" */
	int		listen_fd;	/* pass it this socket as systemd does */
	const char	*ready;		/* the log line to wait for at start */
	struct reader	events;		/* fake virsh: "start|end ID VM VERB" */
	int		gate;		/* a "gate*" VM's virsh waits for a line here */
	int		libvirt;	/* the fake virsh event's stream: write
					 * event lines here; close it to end it */
	char		ledger[160];	/* the daemon's --ledger */
	pid_t		daemon;
	struct reader	log;		/* the daemon's stderr (--debug) */
};

extern struct world w;

/* The runner's temporary directory (made on first use), which holds each
 * test's; scratch_remove() removes it whole. */
const char *scratch_dir(void);
void	scratch_remove(void);
void	remove_tree(const char *);

void	world_setup(void);
void	world_teardown(void);

/* Says "SKIP what: why" and returns true; fails the test instead when
 * USBSERVER_REQUIRE is set (CI: everything must run there). */
bool	test_skips(const char *, const char *);

/* Reads one line (without '\n') within timeout_ms: 1, 0 at EOF, -1 on
 * timeout. */
int	reader_line(struct reader *, char *, size_t, int);
/* Reads lines until one contains needle; copies it to line. */
bool	reader_wait(struct reader *, const char *, char *, size_t);

/* Starts the daemon with --debug, the world's socket, XML dir and fake
 * virsh (none if w.virsh is empty), the empty configuration file
 * w.config, the pid file directory w.qemu_run (if not empty), then the
 * extra arguments
 * (NULL-terminated); returns once it listens. It dies with the test. */
void	daemon_start(const char *, ...);
/* SIGTERM, then waits for it: its wait status. */
int	daemon_stop(void);
bool	log_wait(const char *, char *, size_t);
/* Is the log line want, alone or with the peer's tag " (peer pid P uid U)"
 * after it? P, 0 without a tag, -1 if it is another line. */
long	log_peer(const char *, const char *);

struct client {
	struct reader	r;
};
void	client_open(struct client *);
void	client_send(struct client *, const char *);
void	client_sendn(struct client *, const void *, size_t);
/* The next reply line within WAIT_MS; fails the test on EOF or timeout. */
void	client_reply(struct client *, char *, size_t);
/* A USB device in a sysfs tree of the test's, root/PORT: its ids
 * (hex), bus and device number. */
void	sysfs_device(const char *, const char *, const char *, const char *,
	    int, int);
/* The next reply line is want; fails the test otherwise. */
void	expect_reply(struct client *, const char *);
void	client_close(struct client *);

/* Spawns argv (looked up on PATH) with stdout and stderr captured into out
 * (NUL-terminated, cut to size) and stdin from in (NULL: /dev/null); its
 * wait status, or -1 if it did not run or was killed at timeout_ms. */
int	spawn_capture(char *const [], const char *, char *, size_t, int);
/* Starts argv (looked up on PATH) with its standard input, output and
 * error on these descriptors (-1: the runner's own); its pid. */
pid_t	spawn_fds(char *const [], int, int, int);
/* The same within WAIT_MS, failing the test when it cannot. */
int	run(char *const [], const char *, char *, size_t);
/* The names in dir but "." and "..", each followed by a space. */
void	dir_list(const char *, char *, size_t);
/* Writes text as the whole file path, made with mode if it is new. */
void	write_file(const char *, const char *, mode_t);
/* Reads a whole small file into buf; its length or -1. */
ssize_t	slurp(const char *, char *, size_t);
/* The runner as "peer SOCKET [--pidfile PATH] [--as UID:GID] ARGS...",
 * as "nopidfd PROGRAM ARGS...": see helpers.c; as "enter OUTER PROGRAM
 * ARGS...": see test_e2e.c. */
int	peer_main(int, char *[]);
int	nopidfd_main(int, char *[]);
int	enter_main(int, char *[]);		/* test_e2e.c */
/* Waits for an "end" event of the fake virsh for vm; fills id. */
void	event_wait(const char *, const char *, char *, size_t);
/* A recorded file of the fake virsh call id: "args", "env", "xml", "fds". */
ssize_t	call_file(const char *, const char *, char *, size_t);

#endif
