/*
 * usbserver: moves host USB devices into and out of libvirt domains on
 * request. Reads "VM attach|detach VID:PID[@PORT]" lines on a Unix
 * socket, writes the hostdev XML, and runs virsh. It gives back by
 * itself what it attached when the domain crashes, pauses or sleeps, or
 * its guest's lease ("VM alive SECONDS") lapses, and on "release".
 *
 * Every request, whatever its source, becomes a struct command and takes
 * one path (command_do): who asks was identified when its connection
 * opened (or it is the daemon itself); then authorize, queue (one at a
 * time per domain, in arrival order; domains in parallel), run, record
 * (the ledger of what is attached), and answer, where one function
 * writes the log line and the reply. A new source of actions (libvirt's
 * events, a lapsed lease) produces commands and nothing else. What a
 * connection may take (descriptors, a thread) is decided once, when it
 * is accepted.
 *
 * The sections, in the order data meets them:
 *	Declarations: limits, options, the command, shared state
 *	Logging
 *	The listening socket: made, inherited from systemd, watched
 *	Admission: accepting a connection only with room for it
 *	Connections: bytes in, lines out, replies back
 *	Commands: the one path
 *	Identify: who is on the other end
 *	Authorize: who may move what
 *	Queue: one command at a time per domain
 *	Run: a device by its port, the XML file, virsh
 *	Record: the ledger of what we attached
 *	Switches: a line for each, to the host clients that watch
 *	Give back: libvirt's events, a source of commands; release
 *	Follow: devices that leave the host and come back
 *	Leases: a guest's heartbeat, and the clock that lets it lapse;
 *	status, what the ledger and the leases hold
 *	Answer: the log line and the reply
 *	systemd's notifications
 *	Start-up: options, the configuration file, main
 */
#define _GNU_SOURCE

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/random.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <linux/close_range.h>
#include <linux/netlink.h>

#include <err.h>
#include <dirent.h>
#include <getopt.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <syslog.h>

#include "common.h"

/* ------------------------------------------------------------------ */
/* Declarations                                                        */

#define THREAD_STACK	(128 * 1024)	/* per connection thread */
#define OUTBOX_SIZE	4096		/* replies queued for a slow reader */
#define LINGER_MS	5000		/* flushing replies after the peer's EOF */
#define ACCEPT_BACKOFF_MS 100		/* after EMFILE and the like */
#define FDS_SPARE	5		/* descriptors of the daemon's own beside
					 * those open at start: a renewed socket,
					 * NSS, telling systemd */
#define FDS_PER_CONN	5		/* a connection's socket, and at most four
					 * more while it identifies its peer or
					 * runs virsh; one to spare */
#define LOG_MAX		(MAX_LINE * 4 + MAX_REASON + 128)
#define INVALID_LOGS	20		/* invalid, refused or failed lines logged
					 * per connection a minute */
#define INVALID_WINDOW_MS 60000
#define PEER_CONNS	8		/* connections one peer may hold: a guest
					 * needs one, a host client a few */
#define HOST_SHARE	8		/* 1/8 of the connections are the host
					 * clients' alone */
#define LINE_TIMEOUT	10		/* seconds a non-guest peer may leave a
					 * line unfinished */
#define QEMU_USERS	32		/* users QEMU ran as, remembered */
#define NSS_BUF		4096		/* getpwuid_r's and getgrgid_r's scratch;
					 * a larger entry is named by number */
#define WATCH_SETTLE_MS	1000		/* virsh event alive this long: it is
					 * connected (it says nothing until an
					 * event comes) */
#define WATCH_BACKOFF_MS 500		/* the first wait before watching again,
					 * doubled each time it fails, */
#define WATCH_BACKOFF_MAX_MS 5000	/* up to this */
#define GIVEBACK_MAX	4		/* domains given back at once */
#define FDS_WATCH	(4 + GIVEBACK_MAX * 4 + 1)	/* the watcher's pipes,
					 * its virsh's pidfd; each give-back's
					 * virsh; the ledger being written */
#define SHELLS		4		/* resident virsh shells at most */
#define DOMSTATE_MAX	256		/* what we keep of "virsh domstate" */
#define FDS_SHELLS	(SHELLS * 3)	/* their stdin, stdout and stderr */
#define FDS_FOLLOW	3		/* the uevents socket, its stop pipe */
#define WATCHERS_MAX	8		/* connections told of each switch */
#define WATCHERS_PER_UID 4		/* of them one user's, but root's */
#define FDS_WATCHERS	(WATCHERS_MAX * 2)	/* a pipe each */
#define SWITCHES_PIPE	4096		/* bytes of switch lines a watcher's
					 * pipe holds: a page, its least */
#define DEFAULT_SOCKET_MODE 0600
#define DEFAULT_LEDGER	"/run/usbserver/ledger"
#define DEFAULT_QEMU_RUN_DIR "/run/libvirt/qemu"	/* libvirt's NAME.pid files */

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD	77		/* Linux 6.5; older headers lack it */
#endif

static struct {
	const char	*socket;
	const char	*xml_dir;
	const char	*virsh;		/* a path, or a name to find on SAFE_PATH */
	const char	*connect;
	const char	*config;
	bool		 config_given;	/* a missing file is then an error */
	const char	*qemu_run_dir;	/* libvirt's QEMU pid files */
	const char	*sysfs;		/* the host's USB devices, by port */
	const char	*ledger;	/* the ledger's file; "": none */
	const char	*uevents;	/* tests: uevents from here, not the
					 * kernel */
	int		 timeout;
	int		 line_timeout;	/* seconds, for non-guest peers */
	bool		 debug;
	bool		 guest_attach;	/* guests may attach to their own domain */
	bool		 one_shot;	/* virsh once per command, no shells */
	mode_t		 socket_mode;
	uid_t		 socket_uid;	/* (uid_t)-1: the daemon's own */
	uid_t		 socket_owner;	/* as it is, once we listen */
	gid_t		 socket_gid;	/* (gid_t)-1: the daemon's own; with a
					 * socket from systemd, its file's */
	bool		 socket_gid_given;
} opt = {
	.socket = DEFAULT_SOCKET,
	.config = DEFAULT_CONFIG,
	.qemu_run_dir = DEFAULT_QEMU_RUN_DIR,
	.sysfs = SYSFS_USB,
	.ledger = DEFAULT_LEDGER,
	.socket_mode = DEFAULT_SOCKET_MODE,
	.socket_uid = (uid_t)-1,
	.socket_gid = (gid_t)-1,
	.xml_dir = DEFAULT_XML_DIR,
	.virsh = DEFAULT_VIRSH,
	.timeout = VIRSH_TIMEOUT,
	.line_timeout = LINE_TIMEOUT,
};

static char	*virsh_env[5];		/* fixed environment of every virsh */

/* Our socket file as we made it, or as systemd made it for us. */
static struct {
	dev_t	dev;
	ino_t	ino;
	bool	inherited;	/* systemd's: never renewed nor removed */
	uid_t	uid;		/* its owner, group and mode as last seen */
	gid_t	gid;
	mode_t	mode;
	uid_t	given_uid;	/* and as it was given to us */
	gid_t	given_gid;
	mode_t	given_mode;
} sock;

/* What a peer is, by libvirt's records and its credentials, never by
 * what it says of itself (peer_identify). */
enum peer_kind {
	PEER_HOST,		/* a host client, by its credentials */
	PEER_GUEST,		/* the QEMU of a domain, by its pid file */
	PEER_UNKNOWN,		/* cannot be told, or may not act: closed */
};

/* Who is on the other end of a connection, as of its connect(). */
struct peer {
	pid_t		pid;
	uid_t		uid;
	gid_t		gid;
	enum peer_kind	kind;
	const char	*how;			/* what told us the kind */
	char		vm[MAX_VM_NAME + 1];	/* PEER_GUEST: its domain */
	char		tag[80];		/* "(peer pid P uid U)" */
	bool		unsure;			/* short of descriptors or memory
						 * to tell: asked again at its
						 * next line */
};

/* The daemon itself, acting on libvirt's events: a host client, which
 * may give back whatever the ledger says it attached. */
static const struct peer self_peer = {
	.kind = PEER_HOST,
	.how = "the daemon itself",
	.tag = "(usbserver)",
};

/* What an "alive" line did to its domain's lease. */
enum lease_change {
	LEASE_NEW,		/* there was none */
	LEASE_CHANGED,		/* it runs for another number of seconds */
	LEASE_SAME,		/* renewed, as a guest's timer does */
	LEASE_ENDED,		/* "alive 0" ended it */
	LEASE_NONE,		/* "alive 0", and there was none */
	LEASE_FULL,		/* no room for one more */
};

/* What became of a command. */
enum outcome {
	OUT_PENDING,		/* nothing yet: answered as a failure */
	OUT_OK,			/* virsh did it */
	OUT_FAILED,		/* it, or what it needs, failed: why */
	OUT_DENIED,		/* not allowed: why, the rule */
	OUT_INVALID,		/* not a command at all: why; the line */
};

struct conn;

/* The log budget of one peer identity, a guest's domain or a uid: how
 * many lines it can provoke (invalid, refused, failed) are logged in a
 * minute, whatever the number of its connections. */
struct budget {
	char		who[MAX_VM_NAME + 24];	/* "uid 0", "the guest of vm" */
	unsigned	refs;		/* its connections */
	int64_t		since;		/* this minute's start */
	unsigned	logged;		/* lines logged in it */
	unsigned long	unlogged;	/* and not, past the budget */
	unsigned long	closed;		/* its connections closed at admission */
	int64_t		tokens;		/* a guest's commands it may have run,
					 * in thousandths */
	int64_t		filled;		/* when they were counted */
	bool		rate_said;	/* that its rate bit, this minute */
};

/*
 * One request from any source, on its way down the one path: what is
 * asked, who asks (and so what it may do), where the answer goes, and
 * what came of it. A line that is not a command travels too, as
 * OUT_INVALID with its text, so that the same function answers it.
 */
struct command {
	struct request		 req;
	const struct peer	*who;
	struct conn		*from;	/* its reply and log budget; NULL: none */
	const char		*cause;	/* a give-back's: why, as "win10 CAUSE:
					 * gave back device ..."; NULL: none */
	bool			 forget; /* only struck from the ledger: its
					 * domain stopped, QEMU let it go */
	long long		 since;	/* a give-back's: its entry's, so that
					 * a newer one of that device stays */
	bool			 recorded;	/* in the ledger, while its
						 * domain's turn was held */
	bool			 placed;	/* where the device sat is known: */
	struct usb_addr		 addr;		/* its bus and device number, */
	char			 at[PORT_MAX + 1];	/* its port ("": not known) */
	unsigned long long	 serial;	/* its serial_hash(); 0: none */
	bool			 follow;	/* the daemon's, for a device
						 * replugged: see Follow */
	const char		*assigned;	/* the daemon's, for an
						 * assign line: why now */
	int			 switched;	/* its domain's first device in
						 * (1), or its last out (-1) */
	bool			 named;		/* an attach's ledger entry is */
	struct usb_device	 name;		/* under this, not req.device */
	size_t			 given;	/* release: devices given back */
	char			*report; /* status: its lines, to free */
	enum lease_change	 lease;	/* alive: what became of the lease */
	enum outcome		 outcome;
	char			 why[MAX_REASON + 1];	/* unless OUT_OK */
	int64_t			 began;		/* when it took the path */
	const char		*text;	/* OUT_INVALID: the line as read, */
	size_t			 textlen;	/* what is kept of it, */
	size_t			 total;		/* and its whole length */
};

/* A connection: its peer, its input, its queued replies, its log budget. */
struct conn {
	int		fd;
	unsigned long	id;		/* names it in the debug log */
	struct peer	peer;
	bool		reply;		/* the peer said "reply on" */
	bool		eof;
	size_t		outlen;		/* replies not yet sent */
	unsigned long	dropped;	/* replies lost to a peer that does not read */
	struct budget	*budget;	/* its peer identity's log budget */
	int		switches;	/* "watch on": its switch lines come
					 * here (see Switches); -1: none */
	size_t		swlen;		/* and wait here to be queued whole */
	char		sw[MAX_LINE + 1];
	bool		sw_lost;	/* dropped as a watcher: it is told
					 * after the lines before */
	unsigned long long accepted;	/* when: clock ticks since boot */
	int64_t		partial_since;	/* an unfinished line's first byte */
	struct linebuf	in;
	char		out[OUTBOX_SIZE];
};

static pthread_mutex_t	conn_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned		conn_live;
static unsigned		conn_max = MAX_CONNS;	/* as descriptors allow */
static unsigned long	conn_count;	/* connections accepted so far */
static int		conn_wake = -1;	/* written when a connection ends */

#define MAX_ASSIGN	64		/* the configuration file's assign lines */

/* "assign VM DEVICE": the device belongs to VM whenever VM runs. */
struct assignment {
	char			vm[MAX_VM_NAME + 1];
	struct usb_device	device;
};

/* The allow list: the --allow flags' entries, then the configuration
 * file's, which SIGHUP reads again while connections read the list; and
 * the file's assignments, read with it. */
static struct {
	pthread_mutex_t		lock;
	struct usb_device	list[MAX_ALLOW];
	size_t			flags;	/* entries from --allow */
	size_t			count;	/* none: every device may move */
	struct assignment	assign[MAX_ASSIGN];
	size_t			nassign;
} allow = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* What libvirt's pid files say of a peer. */
struct qemu_scan {
	bool	found;		/* the pid is a QEMU's: name is its domain */
	bool	uid_runs;	/* a running QEMU runs as the uid */
	bool	gid_runs;	/* or with the gid */
};

static void	qemu_pid_files(pid_t, uid_t, gid_t, char [MAX_VM_NAME + 1],
		    struct qemu_scan *, bool *);
static void	conn_reply(struct conn *, const char *, int);
static struct budget *budget_get(const struct peer *);
static void	budget_put(struct budget *);
static bool	budget_may_log(struct budget *);
static unsigned	budget_conns(struct budget *);
static bool	budget_take(struct budget *);
static void	budget_closed(struct budget *, const char *);
static void	command_do(struct command *);
static void	peer_identify(int, struct peer *, unsigned long long);
static unsigned long long boot_ticks(void);
static const char *peer_kind(const struct peer *);
static const char *policy_denies(const struct peer *, const struct request *);
static void	command_run(struct command *);
static int	virsh_argv(char [PATH_MAX], char *[8], const char *const *);
static void	ledger_record(struct command *);
static void	ledger_where(struct command *);
static void	vm_stop(void);
static int	config_load(bool);
static void	answer(struct command *);
static void	answer_command(struct command *);
static void	answer_give_back(struct command *);
static void	answer_follow(struct command *);
static void	answer_assigned(struct command *);
static void	assign_due(const char *, const struct uevent *, const char *);
static void	release_run(struct command *);
static void	lease_run(struct command *);
static void	status_run(struct command *);
static void	domains_run(struct command *);
static void	switches_join(struct command *);
static int	switch_check_locked(const char *, const char *,
		    const struct usb_device *);
static void	switch_log(const char *, int, const char *);
static bool	switch_note_locked(const char *, bool);
static const char *switch_reason(const struct command *);
static void	lease_renew_of(const char *);
static bool	lease_end(const char *);

/* ------------------------------------------------------------------ */
/* Logging                                                             */

static void log_msg(int, const char *, ...) __attribute__((format(printf, 2, 3)));

static void
log_msg(int prio, const char *fmt, ...)
{
	char buf[LOG_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf) - 1)
		n = sizeof(buf) - 2;	/* cut: still one whole line */
	if (opt.debug) {
		buf[n++] = '\n';
		(void)!write(STDERR_FILENO, buf, (size_t)n);
	} else
		syslog(prio, "%s", buf);
}

#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARNING, __VA_ARGS__)
/* What each connection does, for --debug only: never in syslog. */
#define log_debug(...)	do { if (opt.debug) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

static const char *
errstr(int e, char *buf, size_t size)
{
	return strerror_r(e, buf, size);	/* the GNU one: thread-safe */
}

/* Did a call fail for want of descriptors or memory, which may be free
 * again soon? Admission (serve_accept) alone asks. */
static bool
short_of_resources(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOMEM || e == ENOBUFS;
}

static void reasonf(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats a failure reason. It is read by people only, so cutting it
 * short to fit is fine. */
static void
reasonf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ */
/* The listening socket                                                */

static void
listen_record(const struct stat *st)
{
	sock.dev = st->st_dev;
	sock.ino = st->st_ino;
	sock.uid = sock.given_uid = st->st_uid;
	sock.gid = sock.given_gid = st->st_gid;
	sock.mode = sock.given_mode = st->st_mode & 07777;
}

/* "user:group mode" of a socket file, by name where there is one, for a
 * log line: cut short if need be. */
static const char *
listen_owner(char *buf, size_t size, uid_t uid, gid_t gid, mode_t mode)
{
	char pwbuf[NSS_BUF], grbuf[NSS_BUF], un[32], gn[32];
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;

	(void)getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &pwp);
	(void)getgrgid_r(gid, &gr, grbuf, sizeof(grbuf), &grp);
	snprintf(un, sizeof(un), "%lu", (unsigned long)uid);
	snprintf(gn, sizeof(gn), "%lu", (unsigned long)gid);
	snprintf(buf, size, "%s:%s %04o", pwp != NULL ? pwp->pw_name : un,
	    grp != NULL ? grp->gr_name : gn, (unsigned)mode);
	return buf;
}

/*
 * Our socket file's owner, group or mode changed: say so when they are no
 * longer what we were given, and when they are again. libvirt's DAC
 * driver re-owns a chardev socket to QEMU's user and group when a domain
 * that connects to it starts, unless the domain's <source> says
 * <seclabel model='dac' relabel='no'/>: host clients that reached it
 * through its group then cannot; and when that domain stops, libvirt
 * gives it to root:root, which no guest of QEMU's user can reach.
 */
static void
listen_attrs(const struct stat *st)
{
	char was[160], now[160];
	mode_t mode = st->st_mode & 07777;

	if (st->st_uid == sock.uid && st->st_gid == sock.gid &&
	    mode == sock.mode)
		return;		/* a timestamp or an extended attribute */
	sock.uid = st->st_uid;
	sock.gid = st->st_gid;
	sock.mode = mode;
	listen_owner(was, sizeof(was), sock.given_uid, sock.given_gid,
	    sock.given_mode);
	listen_owner(now, sizeof(now), st->st_uid, st->st_gid, mode);
	if (st->st_uid == sock.given_uid && st->st_gid == sock.given_gid &&
	    mode == sock.given_mode)
		log_info("[VMusb] our socket %s is %s again", opt.socket, now);
	else
		log_warn("[VMusb] our socket %s is now %s, not %s: whoever "
		    "reached it through that may no longer connect. libvirt "
		    "does this for a domain whose serial <source> lacks "
		    "<seclabel model='dac' relabel='no'/>", opt.socket, now,
		    was);
}

static int	listen_bind(const struct sockaddr_un *, char *, size_t);

/*
 * What is at our socket's path sa before we start: nothing, or a stale
 * socket of an earlier run, which goes. A live server there, or anything
 * else, stops the start.
 */
static void
listen_stale(const struct sockaddr_un *sa)
{
	const char *path = sa->sun_path;
	struct stat st;
	int probe, e;

	if (lstat(path, &st) == -1) {
		if (errno != ENOENT)
			err(1, "%s", path);
		return;
	}
	if (!S_ISSOCK(st.st_mode))
		errx(1, "%s exists and is not a socket; not touching it", path);
	if ((probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		err(1, "socket");
	e = connect(probe, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ? 0 :
	    errno;
	/* libvirt gave our old socket to the QEMU user, and we may lack
	 * CAP_DAC_OVERRIDE (the unit): take it back to look. */
	if (e == EACCES && lchown(path, geteuid(), getegid()) == 0) {
		e = connect(probe, (const struct sockaddr *)sa, sizeof(*sa)) ==
		    0 ? 0 : errno;
		if (e != ECONNREFUSED)
			(void)!lchown(path, st.st_uid, st.st_gid);
	}
	if (e == 0)
		errx(1, "another server is listening on %s; not taking it over",
		    path);
	if (e != ECONNREFUSED) {
		errno = e;
		err(1, "cannot check %s", path);
	}
	close(probe);
	if (unlink(path) == -1 && errno != ENOENT)
		err(1, "cannot remove stale socket %s", path);
}

/* Our own listening socket at path, in place of a stale one. */
static int
listen_on(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char why[PATH_MAX + 256];
	int fd;

	if (fit(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path),
	    sizeof(sa.sun_path)) < 0)
		errx(1, "socket path too long (limit %zu bytes): %s",
		    sizeof(sa.sun_path) - 1, path);
	listen_stale(&sa);
	if ((fd = listen_bind(&sa, why, sizeof(why))) == -1)
		errx(1, "%s", why);
	return fd;
}

/*
 * A new listening socket at sa's path, where nothing is: born with our
 * mode and group, before anyone can connect. Non-blocking, so that a
 * queue can be emptied. Records its inode as ours; -1 with a reason.
 */
static int
listen_bind(const struct sockaddr_un *sa, char *why, size_t whysz)
{
	const char *path = sa->sun_path, *what;
	char eb[128];
	struct stat st;
	int fd, e;

	what = "cannot create a socket for";
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1)
		goto fail;
	/* Born srwx------ (main's umask 077; changing it here would race
	 * with virsh being spawned). Group, then mode: nobody can connect
	 * before listen() anyway. */
	what = "cannot bind";
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) == -1)
		goto fail;
	what = "cannot give the socket its owner and group:";
	if ((opt.socket_uid != (uid_t)-1 || opt.socket_gid != (gid_t)-1) &&
	    lchown(path, opt.socket_uid, opt.socket_gid) == -1)
		goto fail_unlink;
	what = "cannot set the mode of";
	if (fchmodat(AT_FDCWD, path, opt.socket_mode, AT_SYMLINK_NOFOLLOW) == -1)
		goto fail_unlink;
	what = "cannot listen on";
	if (listen(fd, SOMAXCONN) == -1 || lstat(path, &st) == -1)
		goto fail_unlink;
	listen_record(&st);
	return fd;
fail_unlink:
	e = errno;
	unlink(path);
	errno = e;
fail:
	reasonf(why, whysz, "%s %s: %s", what, path, errstr(errno, eb,
	    sizeof(eb)));
	if (fd != -1)
		close(fd);
	return -1;
}

/* Watches our socket file: libvirt re-owning it, someone removing it or
 * moving it away, all show as an event here. */
static void
listen_watch(int watchfd, const char *path)
{
	char eb[128];

	if (inotify_add_watch(watchfd, path, IN_ATTRIB | IN_DELETE_SELF |
	    IN_MOVE_SELF | IN_DONT_FOLLOW) == -1)
		log_warn("[VMusb] cannot watch %s (%s): changes to it go "
		    "unseen", path, errstr(errno, eb, sizeof(eb)));
}

/*
 * Something happened to our socket file. If it is gone (removed, moved
 * away), a new socket takes its path so that clients find us again; the
 * old one stays open in *old until the connections queued on it are
 * accepted. Anything else that took the path is left alone. Returns
 * true when the path is free but a socket could not be made there yet
 * (no descriptors, say): the caller tries again after a pause, since no
 * event will come for it.
 */
static bool
listen_renew(int watchfd, int *lfd, int *old, bool again)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_Alignas(struct inotify_event) char buf[4096];
	char why[PATH_MAX + 256], eb[128];
	struct stat st;
	int fd;

	while (read(watchfd, buf, sizeof(buf)) > 0)
		;
	if (lstat(opt.socket, &st) == 0) {
		if (st.st_dev != sock.dev || st.st_ino != sock.ino) {
			if (!again)
				log_warn("[VMusb] something else took the place "
				    "of our socket %s: new clients cannot reach "
				    "us there", opt.socket);
		} else
			listen_attrs(&st);
		return false;
	}
	if (errno != ENOENT) {
		log_warn("[VMusb] cannot check our socket %s: %s", opt.socket,
		    errstr(errno, eb, sizeof(eb)));
		return false;
	}
	if (sock.inherited) {
		/* systemd's to make again: a restart of the socket unit. */
		log_warn("[VMusb] systemd's socket %s was removed: new clients "
		    "cannot reach us until usbserver.socket is restarted",
		    opt.socket);
		return false;
	}
	/* The path fit at start-up, and has not changed since. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", opt.socket);
	if ((fd = listen_bind(&sa, why, sizeof(why))) == -1) {
		if (!again)
			log_warn("[VMusb] our socket %s was removed, and %s; "
			    "trying again", opt.socket, why);
		return true;
	}
	/* A second removal before the first socket's queue was taken:
	 * those few clients are cut off, and may connect again. */
	if (*old != -1)
		close(*old);
	*old = *lfd;
	*lfd = fd;
	listen_watch(watchfd, opt.socket);
	log_warn("[VMusb] our socket %s was removed; listening there again",
	    opt.socket);
	return false;
}

/* Is there a socket from systemd for us (the sd_listen_fds protocol:
 * LISTEN_PID is ours, LISTEN_FDS counts descriptors from 3)? Exactly
 * one is what we take. */
static bool
listen_fds(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char *end;
	long v;

	if (pid == NULL || fds == NULL)
		return false;
	errno = 0;
	v = strtol(pid, &end, 10);
	if (errno != 0 || end == pid || *end != '\0' || v != (long)getpid())
		return false;		/* meant for another process */
	v = strtol(fds, &end, 10);
	if (end == fds || *end != '\0' || v != 1)
		errx(1, "LISTEN_FDS=%s: expected exactly one socket", fds);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return true;
}

/*
 * The listening socket systemd passed us, or -1. It is systemd's to
 * create and to remove, with its owner, group and mode: it outlives us,
 * and so do the guests' connections to it. Fills path with its name.
 */
static int
listen_inherited(char *path, size_t size)
{
	const size_t at = offsetof(struct sockaddr_un, sun_path);
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa), olen = sizeof(int);
	int type = 0, listening = 0, flags;

	if (!listen_fds())
		return -1;
	memset(&sa, 0, sizeof(sa));
	if (getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &olen) == -1 ||
	    type != SOCK_STREAM ||
	    getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen) == -1 ||
	    !listening || getsockname(3, (struct sockaddr *)&sa, &len) == -1 ||
	    sa.sun_family != AF_UNIX)
		errx(1, "descriptor 3 from systemd is not a listening Unix "
		    "stream socket");
	/* Non-blocking, as our own: accept() must never wait. */
	if (fcntl(3, F_SETFD, FD_CLOEXEC) == -1 || (flags = fcntl(3,
	    F_GETFL)) == -1 || fcntl(3, F_SETFL, flags | O_NONBLOCK) == -1)
		err(1, "fcntl");
	if (len > sizeof(sa))
		len = sizeof(sa);
	if (len <= at || sa.sun_path[0] == '\0')
		snprintf(path, size, "(an abstract or unnamed socket)");
	else
		snprintf(path, size, "%.*s", (int)(len - at), sa.sun_path);
	return 3;
}

/* "members of group G", or "nobody else" without a group. */
static const char *
listen_group(char *buf, size_t size)
{
	char grbuf[NSS_BUF];
	struct group gr, *grp = NULL;

	if (opt.socket_gid == (gid_t)-1)
		return "nobody else";
	(void)getgrgid_r(opt.socket_gid, &gr, grbuf, sizeof(grbuf), &grp);
	if (grp != NULL)
		snprintf(buf, size, "members of group %s", grp->gr_name);
	else
		snprintf(buf, size, "members of group %lu",
		    (unsigned long)opt.socket_gid);
	return buf;
}

/*
 * The host clients' group of a socket from systemd: its file's, as
 * SocketGroup= made it, unless --socket-group says otherwise. A file
 * whose group is that of a running QEMU was relabelled by libvirt (a
 * domain whose serial port lacks <seclabel model='dac' relabel='no'/>):
 * that group is QEMU's, and its members are no host clients.
 */
static void
listen_adopt(const struct stat *st)
{
	char name[MAX_VM_NAME + 1], now[160];
	struct qemu_scan scan;
	bool retry = false;

	qemu_pid_files(-1, (uid_t)-1, st->st_gid, name, &scan, &retry);
	if (opt.socket_gid_given)
		return;
	if (!scan.gid_runs && !retry) {
		opt.socket_gid = st->st_gid;
		return;
	}
	log_warn("[VMusb] our socket %s is %s, the group of a running QEMU "
	    "(or we cannot tell): libvirt relabelled it for a domain whose "
	    "serial <source> lacks <seclabel model='dac' relabel='no'/>. No "
	    "group's members are host clients until usbserver.socket is "
	    "restarted", opt.socket, listen_owner(now, sizeof(now), st->st_uid,
	    st->st_gid, st->st_mode & 07777));
}

/*
 * The listening socket: the one systemd passed us, or our own at
 * --socket. systemd's file tells who the host clients are
 * (listen_adopt). Either file is watched from before anyone is told that
 * we listen: for a change of its owner or mode, and, when it is ours,
 * for its removal. *watchfd is -1 if it cannot be.
 */
static int
listen_start(char *inherited, size_t size, int *watchfd)
{
	char eb[128], name[MAX_VM_NAME + 1];
	struct qemu_scan scan;
	struct stat st;
	bool named = true, retry = false;
	int lfd;

	if ((lfd = listen_inherited(inherited, size)) != -1) {
		sock.inherited = true;
		named = inherited[0] == '/' && lstat(inherited, &st) == 0 &&
		    S_ISSOCK(st.st_mode);
		if (named) {
			opt.socket = inherited;
			listen_record(&st);
			listen_adopt(&st);
		}
	} else
		lfd = listen_on(opt.socket);
	/* Who QEMU runs as, from the start (qemu_users); and the socket's
	 * owner, QEMU's user as the units make it: whom a peer gone before
	 * we looked must not be taken for. */
	qemu_pid_files(-1, (uid_t)-1, (gid_t)-1, name, &scan, &retry);
	opt.socket_owner = named ? sock.given_uid : 0;
	if (named && (*watchfd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1)
		log_warn("[VMusb] inotify: %s: changes to our socket %s go "
		    "unseen", errstr(errno, eb, sizeof(eb)), opt.socket);
	else if (named)
		listen_watch(*watchfd, opt.socket);
	return lfd;
}

/* Says that we listen, once everything that admits clients is set: the
 * tests take the line as the sign that we are. */
static void
listen_announce(const char *inherited)
{
	char who[160];

	if (sock.inherited)
		log_info("[VMusb] listening on %s (from systemd); host clients: "
		    "root, and %s", inherited, listen_group(who, sizeof(who)));
	else
		log_info("[VMusb] listening on %s", opt.socket);
}

/* Removes the socket file, if it is still the one we made. */
static void
listen_remove(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0 && st.st_dev == sock.dev &&
	    st.st_ino == sock.ino)
		unlink(path);
}

/* At exit: our own socket file goes (systemd's stays), once. */
static void
listen_cleanup(void)
{
	static bool done;

	if (!done && !sock.inherited && sock.ino != 0)
		listen_remove(opt.socket);
	done = true;
}

/* ------------------------------------------------------------------ */
/* Admission: a connection is accepted only with room for it           */

/*
 * How many connections may live at once: MAX_CONNS, or fewer when the
 * descriptor limit leaves no room for FDS_PER_CONN each beside our own.
 * This is where running short is decided, with serve_accept(): past it,
 * a connection has what it needs to identify its peer and run virsh,
 * and more clients wait, unaccepted, in the listening socket's queue.
 */
static void
admission_init(void)
{
	struct rlimit rl;
	struct dirent *de;
	rlim_t own = FDS_SPARE + FDS_WATCH + FDS_SHELLS + FDS_FOLLOW +
	    FDS_WATCHERS, room;
	DIR *d;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return;
	/* Ours: those open now (the sockets, syslog, any we inherited),
	 * less the one reading the directory, and a few to spare. */
	if ((d = opendir("/proc/self/fd")) == NULL)
		err(1, "/proc/self/fd");
	while ((de = readdir(d)) != NULL)
		own += de->d_name[0] != '.';
	closedir(d);
	own--;
	if (rl.rlim_cur < own + FDS_PER_CONN)
		errx(1, "the descriptor limit, %lu, leaves no room for a "
		    "connection beside our own %lu", (unsigned long)rl.rlim_cur,
		    (unsigned long)own);
	room = (rl.rlim_cur - own) / FDS_PER_CONN;
	if (room < MAX_CONNS)
		conn_max = (unsigned)room;
}

/* Says, once we listen, when there is room for fewer connections than
 * MAX_CONNS. */
static void
admission_say(void)
{
	struct rlimit rl;

	if (conn_max < MAX_CONNS && getrlimit(RLIMIT_NOFILE, &rl) == 0)
		log_warn("[VMusb] %lu descriptors leave room for %u "
		    "connection%s at once, not %d: more clients wait",
		    (unsigned long)rl.rlim_cur, conn_max, conn_max == 1 ? "" :
		    "s", MAX_CONNS);
}

static bool
admission_full(void)
{
	bool full;

	pthread_mutex_lock(&conn_lock);
	full = conn_live >= conn_max;
	pthread_mutex_unlock(&conn_lock);
	return full;
}

static void	*conn_main(void *);

/* A thread for the accepted connection fd: 0, or -1 with errno when
 * there is no memory or thread for it. */
static int
conn_start(int fd, pthread_attr_t *attr)
{
	struct conn *c;
	pthread_t t;
	int e;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	c->fd = fd;
	c->switches = -1;
	c->accepted = boot_ticks();
	pthread_mutex_lock(&conn_lock);
	conn_live++;
	c->id = ++conn_count;
	pthread_mutex_unlock(&conn_lock);
	if ((e = pthread_create(&t, attr, conn_main, c)) != 0) {
		pthread_mutex_lock(&conn_lock);
		conn_live--;
		pthread_mutex_unlock(&conn_lock);
		free(c);
		errno = e;
		return -1;
	}
	return 0;
}

/* Short of descriptors, threads or memory (what says which), or not any
 * more: each said once, as it begins and as it ends. */
static void
admission_starved(bool *starved, const char *what, int e)
{
	char eb[128];

	if (what != NULL && !*starved)
		log_warn("[VMusb] %s: %s; new clients wait until some are free",
		    what, errstr(e, eb, sizeof(eb)));
	else if (what == NULL && *starved)
		log_info("[VMusb] accepting clients again");
	*starved = what != NULL;
}

/*
 * Accepts one connection from lfd and starts its thread. 0, or -1 when
 * nothing was waiting. Short of descriptors, memory or a thread, *starved
 * says so: the caller stops accepting for a while, and the clients wait
 * in the queue (one that could not be given a thread is closed).
 */
static int
serve_accept(int lfd, pthread_attr_t *attr, bool *starved)
{
	int fd;

	if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1) {
		if (errno == EAGAIN) {
			admission_starved(starved, NULL, 0);
			return -1;
		}
		if (short_of_resources(errno))
			admission_starved(starved, "cannot accept", errno);
		else if (errno != EINTR && errno != ECONNABORTED &&
		    errno != EPROTO && errno != EPERM)
			err(1, "accept");
		return 0;
	}
	if (conn_start(fd, attr) == -1) {
		admission_starved(starved, "cannot serve a client (it is "
		    "closed)", errno);
		close(fd);
		return 0;
	}
	admission_starved(starved, NULL, 0);
	return 0;
}

/* The listening sockets, for serve(). */
struct listening {
	int	fd;		/* ours, or systemd's */
	int	old;		/* a removed socket's, until its queue is empty */
	int	watch;		/* inotify on the socket file, or -1 */
	bool	renew;		/* its path is free: a new socket is due */
	bool	starved;	/* short of descriptors, threads or memory */
};

/* One accept a pass, from the socket, else from a removed one's queue
 * until it is empty; p is their poll entries. */
static void
serve_one(struct listening *l, const struct pollfd p[2], bool retry,
    pthread_attr_t *attr)
{
	if ((retry || (p[0].revents & POLLIN)) &&
	    serve_accept(l->fd, attr, &l->starved) == 0)
		return;
	if (l->old != -1 && !l->starved && (retry || (p[1].revents & POLLIN)) &&
	    serve_accept(l->old, attr, &l->starved) == -1) {
		close(l->old);
		l->old = -1;
	}
}

/* Waits for what serve() acts on: a signal (p[0]), a connection's end
 * (p[1]), a change to our socket file (p[2]), clients (p[3], p[4]).
 * Starved, we try again when a connection of ours ends, or after a
 * pause: others may free some. Full, only a connection's end can help. */
static void
serve_wait(const struct listening *l, int sigfd, int wakefd, bool full,
    struct pollfd p[5])
{
	bool idle = full || l->starved;

	p[0] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = wakefd, .events = POLLIN };
	p[2] = (struct pollfd){ .fd = l->watch, .events = POLLIN };
	p[3] = (struct pollfd){ .fd = idle ? -1 : l->fd, .events = POLLIN };
	p[4] = (struct pollfd){ .fd = idle ? -1 : l->old, .events = POLLIN };
	while (poll(p, 5, (l->starved && !full) || l->renew ?
	    ACCEPT_BACKOFF_MS : -1) == -1)
		if (errno != EINTR)
			err(1, "poll");
}

/* A signal for us on sigfd: true for SIGTERM or SIGINT, which stop us;
 * SIGHUP reads the allow list again. */
static bool
serve_signal(int sigfd)
{
	struct signalfd_siginfo si;

	if (read(sigfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return false;
	if (si.ssi_signo != SIGHUP)
		return true;
	if (config_load(false) == 0)
		log_info("[VMusb] SIGHUP: the allow list read again from %s, "
		    "%zu entries, and %zu assignment%s", opt.config, allow.count,
		    allow.nassign, allow.nassign == 1 ? "" : "s");
	return false;
}

/* Accepts until SIGTERM or SIGINT arrives on sigfd. watchfd (-1: none)
 * tells of changes to our socket file: when it is removed, a new socket
 * is made (listen_renew). Returns the socket we listen on then. */
static int
serve(int lfd, int sigfd, int wakefd, int watchfd)
{
	struct listening l = { .fd = lfd, .old = -1, .watch = watchfd };
	pthread_attr_t attr;
	struct pollfd p[5];
	char junk[64];

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	/* Removed between listen() and the watch, it sent no event. */
	if (l.watch != -1)
		l.renew = listen_renew(l.watch, &l.fd, &l.old, false);
	for (;;) {
		bool full = admission_full(), retry = l.starved;

		serve_wait(&l, sigfd, wakefd, full, p);
		if (p[0].revents != 0 && serve_signal(sigfd))
			break;
		while (p[1].revents != 0 && read(wakefd, junk, sizeof(junk)) > 0)
			;
		if (p[2].revents != 0 || l.renew)
			l.renew = listen_renew(l.watch, &l.fd, &l.old, l.renew);
		if ((p[3].revents | p[4].revents) & (POLLERR | POLLNVAL))
			errx(1, "the listening socket broke");
		if (!full)
			serve_one(&l, p + 3, retry, &attr);
	}
	if (l.old != -1)
		close(l.old);
	pthread_attr_destroy(&attr);
	return l.fd;
}

/* ------------------------------------------------------------------ */
/* Connections: bytes in, lines out, replies back                      */

/* Sends what the peer will take now, never waiting. */
static void
conn_flush(struct conn *c)
{
	ssize_t n;

	while (c->outlen > 0) {
		n = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			memmove(c->out, c->out + n, c->outlen - (size_t)n);
			c->outlen -= (size_t)n;
		} else if (n == -1 && errno == EINTR)
			continue;
		else if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		else {
			c->outlen = 0;		/* the peer is gone */
			return;
		}
	}
}

/* Queues one line whole, or drops it whole. */
static void
conn_send(struct conn *c, const char *line, int len)
{
	if (len < 0)
		return;
	if ((size_t)len > sizeof(c->out) - c->outlen) {
		if (c->dropped++ == 0)
			log_warn("[VMusb] client does not read its replies; "
			    "dropping them");
		return;
	}
	memcpy(c->out + c->outlen, line, (size_t)len);
	c->outlen += (size_t)len;
	conn_flush(c);
}

/* Queues a reply, if the peer asked for them. */
static void
conn_reply(struct conn *c, const char *line, int len)
{
	if (c->reply)
		conn_send(c, line, len);
}

static void	switches_leave(struct conn *);

/* Whether switch lines, or the word that they were lost, wait for room
 * in the outbox. */
static bool
conn_switches_wait(const struct conn *c)
{
	return c->sw_lost || memchr(c->sw, '\n', c->swlen) != NULL;
}

/* Moves the whole switch lines read into the outbox, as many as it takes,
 * then the word that lines were lost if it is owed: a line is never cut,
 * nor a reply put inside one. What does not fit waits for POLLOUT. */
static void
conn_switches_queue(struct conn *c)
{
	static const char lost[] = "error watch on: switch lines were lost "
	    "(this client did not read them)\n";
	const char *nl;
	size_t len;

	conn_flush(c);
	while ((nl = memchr(c->sw, '\n', c->swlen)) != NULL &&
	    (len = (size_t)(nl - c->sw) + 1) <= sizeof(c->out) - c->outlen) {
		memcpy(c->out + c->outlen, c->sw, len);
		c->outlen += len;
		memmove(c->sw, c->sw + len, c->swlen - len);
		c->swlen -= len;
	}
	if (c->sw_lost && c->swlen == 0 &&
	    sizeof(lost) - 1 <= sizeof(c->out) - c->outlen) {
		memcpy(c->out + c->outlen, lost, sizeof(lost) - 1);
		c->outlen += sizeof(lost) - 1;
		c->sw_lost = false;
	}
	conn_flush(c);
}

/* Reads the connection's pipe of switch lines while there is room for
 * them; the rest wait in the pipe. At the pipe's end (the daemon dropped
 * this watcher: it did not read), the peer is told. */
static void
conn_switches(struct conn *c)
{
	ssize_t n = read(c->switches, c->sw + c->swlen,
	    sizeof(c->sw) - c->swlen);

	if (n > 0)
		c->swlen += (size_t)n;
	else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
		switches_leave(c);
		c->sw_lost = true;
	}
	conn_switches_queue(c);
}


/* A line that is not a command, on its way to be answered as such:
 * total is its whole length, of which text holds textlen bytes. */
static void
conn_invalid(struct conn *c, const char *text, size_t textlen, size_t total,
    const char *why)
{
	struct command cmd = { .who = &c->peer, .from = c,
	    .outcome = OUT_INVALID, .text = text, .textlen = textlen,
	    .total = total };

	snprintf(cmd.why, sizeof(cmd.why), "%s", why);
	command_do(&cmd);
}

/* A line from the connection: a control line, or a request, which goes
 * down the one path as a command. */
static void
conn_line(struct conn *c, const char *line, size_t len)
{
	struct command cmd = { .who = &c->peer, .from = c };
	char text[REQUEST_TEXT];
	const char *why = "";

	switch (parse_line(line, len, &cmd.req, &why)) {
	case PARSE_EMPTY:
		break;
	case PARSE_REPLY_ON:
		c->reply = true;
		break;
	case PARSE_REPLY_OFF:
		c->reply = false;
		break;
	case PARSE_ERROR:
		conn_invalid(c, line, len, len, why);
		break;
	case PARSE_COMMAND:
		log_debug("[VMusb] connection %lu: %s", c->id,
		    request_text(text, &cmd.req));
		/* Who it is could not be told: ask once more, now. */
		if (c->peer.unsure) {
			budget_put(c->budget);
			peer_identify(c->fd, &c->peer, c->accepted);
			c->budget = budget_get(&c->peer);
		}
		command_do(&cmd);
		break;
	}
}

static void
conn_event(struct conn *c, enum line_event ev)
{
	/* Any line of a guest's, even one that is no command, says that it
	 * lives: its lease runs anew. */
	if (ev != LINE_MORE && c->peer.kind == PEER_GUEST)
		lease_renew_of(c->peer.vm);
	if (ev == LINE_READY)
		conn_line(c, c->in.buf, c->in.len);
	else if (ev == LINE_OVERLONG)
		conn_invalid(c, c->in.buf, c->in.len, c->in.total,
		    "line too long");
}

static void
conn_input(struct conn *c, const char *p, size_t n)
{
	while (n > 0)
		conn_event(c, line_feed(&c->in, &p, &n));
	if (c->eof)
		conn_event(c, line_finish(&c->in));
}

/* After the peer's EOF: send what is queued, within LINGER_MS. */
static void
conn_linger(struct conn *c)
{
	int64_t deadline = now_ms() + LINGER_MS;
	struct pollfd p = { .fd = c->fd, .events = POLLOUT };

	conn_flush(c);
	while (c->outlen > 0) {
		int64_t left = deadline - now_ms();

		if (left <= 0 || poll(&p, 1, (int)left) == -1 ||
		    (p.revents & (POLLERR | POLLHUP)))
			break;
		conn_flush(c);
	}
}

/* After the peer's EOF: the replies left, the logs owed, and room for
 * the next connection (serve() waits on conn_wake for it). */
static void
conn_end(struct conn *c)
{
	switches_leave(c);
	conn_linger(c);
	close(c->fd);
	log_debug("[VMusb] connection %lu closed", c->id);
	budget_put(c->budget);
	if (c->dropped > 1)
		log_warn("[VMusb] %lu replies dropped for a client that did "
		    "not read them", c->dropped);
	free(c);

	pthread_mutex_lock(&conn_lock);
	conn_live--;
	pthread_mutex_unlock(&conn_lock);
	(void)!write(conn_wake, "", 1);
}

/*
 * May the connection stay, now that we know who is there? A peer that is
 * neither a guest we can name nor a host client may do nothing: it goes
 * at once. One peer holds PEER_CONNS at most (root and our own user, who
 * could stop us anyway, as many as they like), and the last 1/HOST_SHARE
 * of the connections are the host clients' alone, so that no guest, nor
 * any one client, can keep the host out. A cap that bites is logged once
 * for the peer, with a count later.
 */
static bool
conn_admit(struct conn *c)
{
	const char *why = NULL;
	unsigned live, host_only = conn_max / HOST_SHARE > 0 ?
	    conn_max / HOST_SHARE : 1;

	pthread_mutex_lock(&conn_lock);
	live = conn_live;
	pthread_mutex_unlock(&conn_lock);
	if (c->peer.kind == PEER_UNKNOWN && !c->peer.unsure)
		why = "it may do nothing";
	else if (c->peer.uid != 0 && c->peer.uid != geteuid() &&
	    budget_conns(c->budget) > PEER_CONNS)
		why = "it holds the most connections one peer may";
	else if (c->peer.kind != PEER_HOST && live + host_only > conn_max)
		why = "the last connections are the host's";
	if (why == NULL)
		return true;
	budget_closed(c->budget, why);
	return false;
}

/* How long to wait for the peer: for a non-guest peer with a line left
 * unfinished, until its LINE_TIMEOUT; else for as long as it likes. */
static int
conn_wait(const struct conn *c)
{
	int64_t left;

	if (c->peer.kind == PEER_GUEST || c->partial_since == 0)
		return -1;
	left = c->partial_since + (int64_t)opt.line_timeout * 1000 - now_ms();
	return left > 0 ? (int)(left > INT_MAX ? INT_MAX : left) : 0;
}

/* True when a line was left unfinished too long: the connection goes,
 * the line with it, unparsed (a guest's never: that would cut its serial
 * connection). */
static bool
conn_unfinished(struct conn *c)
{
	if (conn_wait(c) != 0)
		return false;
	if (budget_may_log(c->budget))
		log_warn("[VMusb] a line left unfinished for %d s: connection "
		    "closed %s", opt.line_timeout, c->peer.tag);
	return true;
}

/* A connection's thread: who is there, then its lines until EOF. */
static void *
conn_main(void *arg)
{
	struct conn *c = arg;
	const struct peer *who = &c->peer;
	char buf[4096];
	ssize_t n;

	/* Named, for top -H and for the tests' count of them. */
	(void)pthread_setname_np(pthread_self(), CONN_THREAD);
	peer_identify(c->fd, &c->peer, c->accepted);
	c->budget = budget_get(&c->peer);
	log_debug("[VMusb] connection %lu opened by pid %ld (uid %lu gid %lu), "
	    "%s%s (%s)", c->id, (long)who->pid, (unsigned long)who->uid,
	    (unsigned long)who->gid, peer_kind(who), who->vm, who->how);
	line_clear(&c->in);
	if (!conn_admit(c)) {
		conn_end(c);
		return NULL;
	}
	while (!c->eof) {
		/* Switch lines are read while they have room. */
		struct pollfd p[2] = {
			{ .fd = c->fd, .events = POLLIN | (c->outlen > 0 ||
			  conn_switches_wait(c) ? POLLOUT : 0) },
			{ .fd = c->swlen < sizeof(c->sw) ? c->switches : -1,
			  .events = POLLIN },
		};
		int r = poll(p, 2, conn_wait(c));

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 || (r == 0 && conn_unfinished(c)))
			break;
		if (p[0].revents & POLLOUT)
			conn_switches_queue(c);	/* flushes, and queues more */
		if (p[1].revents != 0)
			conn_switches(c);
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(c->fd, buf, sizeof(buf));
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			c->eof = true;	/* EOF, or the peer reset us */
		conn_input(c, buf, n > 0 ? (size_t)n : 0);
		if (c->in.total == 0 || c->in.done)
			c->partial_since = 0;
		else if (c->partial_since == 0)
			c->partial_since = now_ms();
	}
	conn_end(c);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Commands: the one path                                              */

/* The commands on the path, from authorize to their answer: SIGTERM lets
 * them end, answered and logged, and lets no new one in. */
static struct {
	pthread_mutex_t	lock;
	pthread_cond_t	idle;
	unsigned	running;
	bool		stopping;
} inflight = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0,
    false };

static bool
path_enter(void)
{
	bool open;

	pthread_mutex_lock(&inflight.lock);
	if ((open = !inflight.stopping))
		inflight.running++;
	pthread_mutex_unlock(&inflight.lock);
	return open;
}

static void
path_leave(void)
{
	pthread_mutex_lock(&inflight.lock);
	if (--inflight.running == 0)
		pthread_cond_broadcast(&inflight.idle);
	pthread_mutex_unlock(&inflight.lock);
}

/* Once, on SIGTERM: new commands are turned away at once (a give-back's
 * too), and those waiting for their domain give up. */
static void
path_close(void)
{
	pthread_mutex_lock(&inflight.lock);
	inflight.stopping = true;
	pthread_mutex_unlock(&inflight.lock);
	vm_stop();
}

/* Then: those running end with their answer. */
static void
path_drain(void)
{
	pthread_mutex_lock(&inflight.lock);
	while (inflight.running > 0)
		pthread_cond_wait(&inflight.idle, &inflight.lock);
	pthread_mutex_unlock(&inflight.lock);
}

/* What came of cmd, and why. */
static void
command_done(struct command *cmd, enum outcome o, const char *why)
{
	cmd->outcome = o;
	snprintf(cmd->why, sizeof(cmd->why), "%s", why != NULL ? why : "");
}

/*
 * The one path of every command, whatever its source. Who asks was
 * identified with its source (a connection's peer); here the command is
 * authorized, queued for its domain and run, then answered. A line that
 * is not a command comes only to be answered.
 */
static void
command_do(struct command *cmd)
{
	const char *why;
	bool entered = path_enter();

	cmd->began = now_ms();
	if (cmd->outcome == OUT_INVALID)
		;
	else if (!entered)
		command_done(cmd, OUT_FAILED, "shutting down");
	else if (cmd->who->unsure)
		command_done(cmd, OUT_FAILED, "busy (short of descriptors or "
		    "memory to tell who asks); try again");
	else if ((why = policy_denies(cmd->who, &cmd->req)) != NULL)
		command_done(cmd, OUT_DENIED, why);
	else if (cmd->who->kind == PEER_GUEST && cmd->from != NULL &&
	    !budget_take(cmd->from->budget))
		command_done(cmd, OUT_FAILED, "more than 4 commands a second");
	else
		command_run(cmd);
	if (!cmd->recorded)
		ledger_record(cmd);
	answer(cmd);
	if (entered)
		path_leave();
}

/* ------------------------------------------------------------------ */
/* Identify: who is on the other end                                   */

/* The real uid and gid of process pid, from /proc/PID/status (its owner
 * there is root for a process that is not dumpable); -1 if unknown. */
static int
proc_ids(pid_t pid, uid_t *uid, gid_t *gid, bool *scarce)
{
	char path[32], buf[2048], *u, *g;
	unsigned long uv, gv;
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		if ((n = read(fd, buf, sizeof(buf) - 1)) == -1 &&
		    short_of_resources(errno))
			*scarce = true;
		close(fd);
	} else if (short_of_resources(errno))
		*scarce = true;
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if ((u = strstr(buf, "\nUid:")) == NULL || (g = strstr(buf,
	    "\nGid:")) == NULL || sscanf(u + 5, "%lu", &uv) != 1 ||
	    sscanf(g + 5, "%lu", &gv) != 1)
		return -1;
	*uid = (uid_t)uv;
	*gid = (gid_t)gv;
	return 0;
}

/*
 * The users QEMU has run as since we started, as libvirt's pid files
 * showed them. A peer that was gone before we could look at it may have
 * been one of those QEMUs, so its credentials alone never make it a host
 * client. Past QEMU_USERS of them, no gone peer does.
 */
static struct {
	pthread_mutex_t	lock;
	uid_t		uid[QEMU_USERS];
	size_t		n;
	bool		overflow;
} qemu_users = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void
qemu_users_add(uid_t uid)
{
	size_t i;

	pthread_mutex_lock(&qemu_users.lock);
	for (i = 0; i < qemu_users.n && qemu_users.uid[i] != uid; i++)
		;
	if (i == qemu_users.n) {
		if (qemu_users.n < QEMU_USERS)
			qemu_users.uid[qemu_users.n++] = uid;
		else
			qemu_users.overflow = true;
	}
	pthread_mutex_unlock(&qemu_users.lock);
}

static bool
qemu_users_has(uid_t uid)
{
	bool has;

	pthread_mutex_lock(&qemu_users.lock);
	has = qemu_users.overflow;
	for (size_t i = 0; i < qemu_users.n && !has; i++)
		has = qemu_users.uid[i] == uid;
	pthread_mutex_unlock(&qemu_users.lock);
	return has;
}

/* The pid in pid file name of the directory dfd, if it is a file we can
 * trust (file_trust) and holds one; -1 otherwise. */
static long
pid_file_read(int dfd, const char *name, bool *scarce)
{
	char buf[24], *end;
	struct stat st;
	ssize_t got;
	long v;
	int fd;

	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY);
	if (fd == -1) {
		if (short_of_resources(errno))
			*scarce = true;
		return -1;
	}
	got = fstat(fd, &st) == 0 && file_trust(&st, S_IFREG) == TRUSTED ?
	    read(fd, buf, sizeof(buf) - 1) : -1;
	close(fd);
	if (got <= 0)
		return -1;
	buf[got] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || (*end != '\0' && *end != '\n') ||
	    v <= 0 || v > INT_MAX)
		return -1;
	return v;
}

/*
 * Reads libvirt's pid files (NAME.pid, root's, in a root-only directory):
 * is pid a QEMU that libvirt started (fills name)? Does any of them run as uid, or with gid
 * (QEMU's helpers run as that user too)? Each QEMU's user is remembered
 * (qemu_users). pid -1 matches none.
 */
static void
qemu_pid_files(pid_t pid, uid_t uid, gid_t gid, char name[MAX_VM_NAME + 1],
    struct qemu_scan *s, bool *scarce)
{
	struct dirent *de;
	DIR *d;

	s->found = s->uid_runs = s->gid_runs = false;
	if ((d = opendir(opt.qemu_run_dir)) == NULL) {
		if (short_of_resources(errno))
			*scarce = true;
		return;
	}
	/* A failed read of the directory must not pass for its end: a pid
	 * file missed would make a guest a host client, or QEMU's user
	 * unknown to peer_by_credentials. */
	for (errno = 0; (de = readdir(d)) != NULL; errno = 0) {
		size_t n = strlen(de->d_name);
		uid_t quid;
		gid_t qgid;
		long v;

		if (n < 5 || n - 4 > MAX_VM_NAME ||
		    strcmp(de->d_name + n - 4, ".pid") != 0 ||
		    !valid_vm_name(de->d_name, n - 4) ||
		    (v = pid_file_read(dirfd(d), de->d_name, scarce)) == -1)
			continue;
		if (v == (long)pid && !s->found) {
			memcpy(name, de->d_name, n - 4);
			name[n - 4] = '\0';
			s->found = true;
		}
		if (proc_ids((pid_t)v, &quid, &qgid, scarce) == 0) {
			qemu_users_add(quid);
			s->uid_runs = s->uid_runs || quid == uid;
			s->gid_runs = s->gid_runs || qgid == gid;
		}
	}
	if (errno != 0)
		*scarce = true;
	closedir(d);
}

/* Was the peer in group gid when it connected (SO_PEERGROUPS)? */
static bool
peer_in_group(int fd, gid_t primary, gid_t gid)
{
	gid_t small[64], *groups = small;
	socklen_t len = sizeof(small);
	bool in = false;

	if (gid == (gid_t)-1)
		return false;
	if (primary == gid)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == -1) {
		/* ERANGE: len is now what it takes, at most NGROUPS_MAX. */
		if (errno != ERANGE || len > NGROUPS_MAX * sizeof(gid_t) ||
		    (groups = malloc(len)) == NULL)
			return false;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == -1)
			len = 0;
	}
	for (size_t i = 0; i < len / sizeof(gid_t) && !in; i++)
		in = groups[i] == gid;
	if (groups != small)
		free(groups);
	return in;
}

/*
 * Is the process pid there, and the peer that connected before since
 * (clock ticks since boot, as /proc gives a start time), not another that
 * took its pid? Without a pidfd (Linux before 6.5), this is how we know
 * that a pid file names the peer and not a new process: one that started
 * after we accepted the connection cannot be it. A zombie is gone.
 */
static bool
peer_alive(pid_t pid, unsigned long long since, bool *scarce)
{
	char path[32], buf[1024], state;
	unsigned long long start;
	const char *rp;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (short_of_resources(errno))
			*scarce = true;
		return false;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* "PID (COMM) STATE ..."; COMM may hold ") ", the last one ends it.
	 * The start time is the 22nd field, the 20th after COMM. */
	if ((rp = strrchr(buf, ')')) == NULL || sscanf(rp + 1, " %c %*s %*s "
	    "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
	    "%*s %llu", &state, &start) != 2)
		return false;
	return state != 'Z' && start <= since;
}

/* Clock ticks since boot, as /proc counts a process's start time. */
static unsigned long long
boot_ticks(void)
{
	struct timespec ts;
	long hz = sysconf(_SC_CLK_TCK);

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (unsigned long long)ts.tv_sec * (unsigned long long)hz +
	    (unsigned long long)ts.tv_nsec / (1000000000ULL / (unsigned long long)hz);
}

/*
 * A peer that names no domain is a host client by its credentials alone,
 * as SO_PEERCRED and SO_PEERGROUPS took them at connect(): root, our own
 * user, or a member of the socket's group; but not a user that a running
 * QEMU of libvirt's runs as (QEMU's helpers, or a QEMU that libvirt did
 * not start), which may reach the socket through its group too. These
 * hold whether or not the peer still exists, so that a client that wrote
 * its line and left at once is served; but a peer that was gone before we
 * looked may have been a QEMU that wrote and exited, so it is none if QEMU
 * has run as its user since we started, or if its user owns the socket
 * (QEMU's, as the units make it). Root and our own user are host clients
 * gone or not: a QEMU that runs as root could keep a child alive, which
 * would be root's client anyway, so refusing the gone would keep out only
 * the host's own fire-and-forget clients.
 */
static void
peer_by_credentials(int fd, struct peer *p, bool qemu_user, bool there)
{
	bool ours = p->uid == 0 || p->uid == geteuid();

	if (ours)
		return;
	if (!there && (qemu_users_has(p->uid) || p->uid == opt.socket_owner)) {
		p->kind = PEER_UNKNOWN;
		p->how = "gone before we looked, and QEMU runs as its user";
	} else if (!peer_in_group(fd, p->gid, opt.socket_gid)) {
		p->kind = PEER_UNKNOWN;
		p->how = "neither root nor in the socket's group";
	} else if (qemu_user) {
		p->kind = PEER_UNKNOWN;
		p->how = "a user QEMU runs as";
	}
}

/* A pidfd of the peer (Linux 6.5), which tells afterwards whether the
 * pid we looked at was still the peer's; -1 without one (older kernels).
 * False when the peer cannot be looked at: it is gone, or in a pid
 * namespace we cannot see into (pid 0). */
static bool
peer_pidfd(int fd, pid_t pid, int *pidfd, bool *scarce)
{
	socklen_t len = sizeof(*pidfd);

	*pidfd = -1;
	if (pid <= 0)
		return false;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, pidfd, &len) == 0)
		return true;
	*pidfd = -1;
	if (short_of_resources(errno))
		*scarce = true;
	return errno == ENOPROTOOPT;
}

/* Has the process of pidfd ended (so the pid may name another now)?
 * Closes pidfd. */
static bool
peer_ended(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	bool ended = poll(&p, 1, 0) != 0;

	close(pidfd);
	return ended;
}

/*
 * Reads the peer's credentials and decides what it is:
 *   - a QEMU that libvirt started, by libvirt's own record, its pid file:
 *     the guest of that domain. Never by what a process says of itself
 *     (a QEMU can fork, and a child can write any command line). The pid
 *     must still be the peer's: a pidfd says so (Linux 6.5), else its
 *     start time, which must come before we accepted (since);
 *   - otherwise, also when it has gone before we could look, what its
 *     credentials make it (peer_by_credentials): a host client, or
 *     PEER_UNKNOWN, which may do nothing. So is a peer we could not tell
 *     for want of descriptors or memory.
 */
static void
peer_identify(int fd, struct peer *p, unsigned long long since)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct qemu_scan scan;
	bool there, held, scarce = false;
	int pidfd;

	memset(p, 0, sizeof(*p));
	p->kind = PEER_UNKNOWN;
	p->uid = (uid_t)-1;
	p->gid = (gid_t)-1;
	snprintf(p->tag, sizeof(p->tag), "(peer unknown)");
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		p->how = "no credentials";
		return;
	}
	p->pid = cred.pid;
	p->uid = cred.uid;
	p->gid = cred.gid;
	snprintf(p->tag, sizeof(p->tag), "(peer pid %ld uid %lu)",
	    (long)cred.pid, (unsigned long)cred.uid);
	there = peer_pidfd(fd, cred.pid, &pidfd, &scarce) && (pidfd != -1 ||
	    peer_alive(cred.pid, since, &scarce));
	/* The pid files are read even for a peer that is gone: they also
	 * say which users QEMU runs as. */
	qemu_pid_files(there ? cred.pid : -1, cred.uid, (gid_t)-1, p->vm, &scan,
	    &scarce);
	held = pidfd != -1;
	if (held && peer_ended(pidfd))
		there = false;		/* what we read may be another's */
	if (scan.found && there) {
		p->kind = PEER_GUEST;
		p->how = held ? "libvirt's pid file, held by a pidfd" :
		    "libvirt's pid file, started before we accepted";
	} else {
		p->kind = PEER_HOST;
		p->vm[0] = '\0';
		p->how = there ? "its credentials" : "its credentials: it was "
		    "gone before we looked";
		peer_by_credentials(fd, p, scan.uid_runs, there);
	}
	if (scarce) {
		p->kind = PEER_UNKNOWN;
		p->how = "short of descriptors or memory to tell";
		p->unsure = true;
	}
}

/* What the peer was taken for, for the debug log; a guest's name follows. */
static const char *
peer_kind(const struct peer *p)
{
	return p->kind == PEER_HOST ? "a host client" : p->kind == PEER_GUEST ?
	    "the guest of " : "unidentified, may do nothing";
}

/* ------------------------------------------------------------------ */
/* Authorize: who may move what                                        */

/* Adds device to list[0..*n) unless an entry already allows it; false
 * when the list is full. */
static bool
allow_add(struct usb_device *list, size_t *n, const struct usb_device *device)
{
	for (size_t i = 0; i < *n; i++)
		if (device_covers(&list[i], device))
			return true;
	if (*n == MAX_ALLOW)
		return false;
	list[(*n)++] = *device;
	return true;
}

/* May device move: there is no list, or an entry allows it (one without
 * a port at any port, one with a port only there). */
static bool
allow_permits(const struct usb_device *device)
{
	bool ok;

	pthread_mutex_lock(&allow.lock);
	ok = allow.count == 0;
	for (size_t i = 0; i < allow.count && !ok; i++)
		ok = device_covers(&allow.list[i], device);
	pthread_mutex_unlock(&allow.lock);
	return ok;
}

/* Why req from peer p must not run, or NULL if it may. */
static const char *
policy_denies(const struct peer *p, const struct request *req)
{
	if (p == &self_peer)
		return NULL;
	switch (p->kind) {
	case PEER_UNKNOWN:
		return "neither a host client nor a guest we can name";
	case PEER_GUEST:
		if (req->action == ACT_RELEASE)
			return "a guest may not release (it detaches)";
		if (req->action == ACT_STATUS)
			return "a guest may not ask for the host's status";
		if (req->action == ACT_DOMAINS)
			return "a guest may not ask which domains run";
		if (req->action == ACT_WATCH)
			return "a guest may not watch the host's switches";
		if (strcmp(req->vm, p->vm) != 0)
			return "a guest may only act on its own domain";
		if (req->action == ACT_ATTACH && !opt.guest_attach)
			return "a guest may not attach devices (see "
			    "--guest-attach)";
		break;
	case PEER_HOST:
		break;
	}
	if ((req->action == ACT_ATTACH || req->action == ACT_DETACH) &&
	    !allow_permits(&req->device))
		return "the device is not on the allow list";
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Queue: one command at a time per domain, in arrival order           */

/* A domain's queue: two lines of tickets, the host clients' and the
 * guests', each in arrival order; a host client's command goes before
 * any guest's that waits, so that a guest's flood delays the host by one
 * virsh run at most. */
enum vm_class {
	QUEUE_HOST,
	QUEUE_GUEST,
};

struct vm_queue {
	struct vm_queue	*next;
	unsigned long	 next_ticket[2];	/* by its class */
	unsigned long	 serving[2];		/* the next to run, of each */
	bool		 busy;			/* one of them runs */
	unsigned	 users;
	pthread_cond_t	 turn;
	char		 name[MAX_VM_NAME + 1];
};

static pthread_mutex_t	vm_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vm_queue	*vm_queues;
static bool		vm_stopping;	/* shutting down: run nothing new */

/* Gives the turn to the next; frees the queue when unused. Called with
 * vm_lock held. */
static void
vm_pass_locked(struct vm_queue *q)
{
	struct vm_queue **pp;

	q->busy = false;
	if (--q->users > 0) {
		pthread_cond_broadcast(&q->turn);
		return;
	}
	for (pp = &vm_queues; *pp != q; pp = &(*pp)->next)
		;
	*pp = q->next;
	pthread_cond_destroy(&q->turn);
	free(q);
}

/* The queue of domain name, made if it is new; NULL without memory.
 * Called with vm_lock held. */
static struct vm_queue *
vm_queue_of(const char *name)
{
	struct vm_queue *q;

	for (q = vm_queues; q != NULL; q = q->next)
		if (strcmp(q->name, name) == 0)
			return q;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	pthread_cond_init(&q->turn, NULL);
	snprintf(q->name, sizeof(q->name), "%s", name);
	q->next = vm_queues;
	vm_queues = q;
	return q;
}

/* Is it ticket's turn in its line? Nothing runs, it is next in its
 * line, and a guest's waits while a host client's does. */
static bool
vm_turn(const struct vm_queue *q, enum vm_class line, unsigned long ticket)
{
	return !q->busy && q->serving[line] == ticket && (line == QUEUE_HOST ||
	    q->serving[QUEUE_HOST] == q->next_ticket[QUEUE_HOST]);
}

/* Waits for this domain's turn, in line. -1 with errno ENOMEM, or
 * ECANCELED when the daemon is shutting down. */
static int
vm_enter(const char *name, enum vm_class line, struct vm_queue **qp)
{
	struct vm_queue *q;
	unsigned long ticket;

	pthread_mutex_lock(&vm_lock);
	if ((q = vm_queue_of(name)) == NULL) {
		pthread_mutex_unlock(&vm_lock);
		errno = ENOMEM;
		return -1;
	}
	q->users++;
	ticket = q->next_ticket[line]++;
	while (!vm_turn(q, line, ticket))
		pthread_cond_wait(&q->turn, &vm_lock);
	q->serving[line]++;
	q->busy = true;
	if (vm_stopping) {
		vm_pass_locked(q);
		pthread_mutex_unlock(&vm_lock);
		errno = ECANCELED;
		return -1;
	}
	pthread_mutex_unlock(&vm_lock);
	*qp = q;
	return 0;
}

static void
vm_leave(struct vm_queue *q)
{
	pthread_mutex_lock(&vm_lock);
	vm_pass_locked(q);
	pthread_mutex_unlock(&vm_lock);
}

/* On SIGTERM: commands still waiting for their domain's turn start
 * nothing, and are answered "shutting down". */
static void
vm_stop(void)
{
	pthread_mutex_lock(&vm_lock);
	vm_stopping = true;
	pthread_mutex_unlock(&vm_lock);
}

/* ------------------------------------------------------------------ */
/* Run: a device by its port, the XML file, virsh                      */

/*
 * The bus and device number of the device at d's port, read from sysfs
 * now (they change when it is plugged in again). Refuses when another
 * device, or none, is there. The port passed validation: the path is
 * exactly SYSFS/PORT.
 */
static int
usb_at_port(const struct usb_device *d, struct usb_addr *addr,
    unsigned long long *serial, char *why, size_t whysz)
{
	char dir[PATH_MAX], dev[DEVICE_TEXT];
	struct usb_device there;
	long bus = -1, num = -1;
	bool ids = false;
	int dfd;

	if (fit(snprintf(dir, sizeof(dir), "%s/%s", opt.sysfs, d->port),
	    sizeof(dir)) >= 0 && (dfd = sysfs_dir(AT_FDCWD, dir)) != -1) {
		ids = sysfs_ids(dfd, &there) && device_ids_equal(&there, d);
		bus = sysfs_attr_number(dfd, "busnum", 10, 255);
		num = sysfs_attr_number(dfd, "devnum", 10, 255);
		if (serial != NULL)
			*serial = sysfs_serial(dfd);
		close(dfd);
	}
	if (!ids || bus < 1 || num < 1) {
		reasonf(why, whysz, "no %.9s at port %s", device_text(d, dev),
		    d->port);
		return -1;
	}
	addr->bus = (unsigned)bus;
	addr->dev = (unsigned)num;
	return 0;
}

/* The serial number of the device at port, as the ledger keeps it
 * (serial_hash()); 0 when it has none, or there is none there. */
static unsigned long long
usb_serial(const char *port)
{
	char dir[PATH_MAX];
	unsigned long long h = 0;
	int dfd;

	if (fit(snprintf(dir, sizeof(dir), "%s/%s", opt.sysfs, port),
	    sizeof(dir)) >= 0 && (dfd = sysfs_dir(AT_FDCWD, dir)) != -1) {
		h = sysfs_serial(dfd);
		close(dfd);
	}
	return h;
}

/* 1-2 before 1-10. */
static int
port_order(const void *a, const void *b)
{
	return strverscmp(a, b);
}

/* The ports of the devices with d's ids, sorted, at most PORTS_LISTED
 * (*more says there were others): how many. */
static size_t
usb_ports_of(const struct usb_device *d, char ports[PORTS_LISTED][PORT_MAX + 1],
    bool *more)
{
	struct usb_device there;
	struct dirent *de;
	size_t n = 0;
	DIR *dir;
	int dfd;

	*more = false;
	if ((dir = opendir(opt.sysfs)) == NULL)
		return 0;
	while ((de = readdir(dir)) != NULL) {
		size_t nlen = strlen(de->d_name);

		if (!valid_port(de->d_name, nlen) ||
		    (dfd = sysfs_dir(dirfd(dir), de->d_name)) == -1)
			continue;
		if (sysfs_ids(dfd, &there) && device_ids_equal(&there, d)) {
			if (n < PORTS_LISTED)
				memcpy(ports[n++], de->d_name, nlen + 1);
			else
				*more = true;
		}
		close(dfd);
	}
	closedir(dir);
	qsort(ports, n, sizeof(ports[0]), port_order);
	return n;
}

/*
 * libvirt refused a device by its ids alone because more than one has
 * them: reason gets the ports that carry them, and the form to use, so
 * that the user can say which.
 */
static void
usb_name_ports(const struct usb_device *d, char *reason, size_t size)
{
	char ports[PORTS_LISTED][PORT_MAX + 1];
	bool more;
	size_t n = usb_ports_of(d, ports, &more);

	reason_add_ports(reason, size, d, (const char (*)[PORT_MAX + 1])ports,
	    n, more);
}

/* Where cmd's device sits, for the ledger, once it is attached: at the
 * port it was named by, or the one port that has its ids. */
static void
usb_place(struct command *cmd)
{
	char ports[PORTS_LISTED][PORT_MAX + 1], why[MAX_REASON];
	struct usb_device at = cmd->req.device;
	bool more;

	if (!device_has_port(&at)) {
		if (usb_ports_of(&at, ports, &more) != 1 || more)
			return;
		memcpy(at.port, ports[0], sizeof(at.port));
	}
	if (usb_at_port(&at, &cmd->addr, &cmd->serial, why, sizeof(why)) == 0) {
		memcpy(cmd->at, at.port, sizeof(cmd->at));
		cmd->placed = true;
	}
}

/*
 * Is the file at path one we wrote and nobody changed: a regular file of
 * ours, with one link, writable by nobody else, holding exactly doc? Then
 * virsh may read it again. Nobody else can swap it before virsh does: the
 * directory is root's or ours, and not writable by others unless sticky
 * (check_xml_dir), which is also what a freshly written file relies on.
 */
static bool
xml_is_ours(const char *path, const char *doc, size_t len)
{
	char buf[XML_MAX];
	struct stat st;
	bool same;
	int fd;

	/* O_NONBLOCK: a FIFO planted there must not hang us. */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC)) == -1)
		return false;
	same = fstat(fd, &st) == 0 && file_trust(&st, S_IFREG) == TRUSTED &&
	    st.st_uid == geteuid() && st.st_nlink == 1 &&
	    st.st_size == (off_t)len && len <= sizeof(buf) &&
	    read(fd, buf, sizeof(buf)) == (ssize_t)len &&
	    memcmp(buf, doc, len) == 0;
	close(fd);
	return same;
}

/* Gives path DIR/device-VID:PID.xml, written anew unless it is already
 * ours (an earlier command's). If something we cannot replace sits there
 * (a directory, say), path is our own uniquely named file instead, and
 * *temporary tells the caller to remove it after use. On failure returns
 * -1 with a reason in why. */
static int
xml_write(const struct usb_device *device, const struct usb_addr *addr,
    char *path, size_t pathsz, bool *temporary, char *why, size_t whysz)
{
	char tmp[PATH_MAX], doc[XML_MAX], e[128], dev[DEVICE_TEXT];
	int fd = -1, len, rc = -1;
	ssize_t w;

	len = xml_format(doc, sizeof(doc), device, addr);
	device_text(device, dev);
	if (fit(snprintf(path, pathsz, "%s/device-%s.xml", opt.xml_dir, dev),
	    pathsz) < 0 || fit(snprintf(tmp, sizeof(tmp),
	    "%s/.device-%s.xml.XXXXXX", opt.xml_dir, dev), sizeof(tmp)) < 0 ||
	    len < 0) {
		reasonf(why, whysz, "XML file name too long");
		return -1;
	}
	*temporary = false;
	if (xml_is_ours(path, doc, (size_t)len))
		return 0;
	/* A fresh name, created with O_EXCL: never a file someone left. */
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		reasonf(why, whysz, "cannot create a file in %s: %s",
		    opt.xml_dir, errstr(errno, e, sizeof(e)));
		return -1;
	}
	w = write(fd, doc, (size_t)len);
	if (w != len) {
		reasonf(why, whysz, "cannot write %s: %s", tmp,
		    w < 0 ? errstr(errno, e, sizeof(e)) : "short write");
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		reasonf(why, whysz, "cannot write %s: %s", tmp,
		    errstr(errno, e, sizeof(e)));
		goto out;
	}
	fd = -1;
	/* rename() replaces whatever sits at path, a symlink included,
	 * without following it. */
	if (rename(tmp, path) == -1) {
		log_warn("[VMusb] cannot replace %s (%s); using %s", path,
		    errstr(errno, e, sizeof(e)), tmp);
		if (fit(snprintf(path, pathsz, "%s", tmp), pathsz) < 0) {
			reasonf(why, whysz, "XML file name too long");
			goto out;
		}
		*temporary = true;
	}
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	if (rc == -1)
		unlink(tmp);
	return rc;
}

/* The program to run: --virsh as given when it names a path, else that
 * name (by default "virsh") looked up on SAFE_PATH only, never in our
 * working directory or the caller's PATH. */
static int
virsh_path(char *buf, size_t size)
{
	const char *p, *end;

	if (strchr(opt.virsh, '/') != NULL)
		return fit(snprintf(buf, size, "%s", opt.virsh), size) < 0 ? -1 : 0;
	for (p = SAFE_PATH; *p != '\0'; p = *end ? end + 1 : end) {
		end = strchrnul(p, ':');
		if (fit(snprintf(buf, size, "%.*s/%s", (int)(end - p), p,
		    opt.virsh), size) >= 0 && access(buf, X_OK) == 0)
			return 0;
	}
	errno = ENOENT;
	snprintf(buf, size, "%s", opt.virsh);
	return -1;
}

/* ------------------------------------------------------------------ */
/* Shells: virsh kept running                                          */

/*
 * Starting virsh costs more than what it is asked to do (about 45 ms
 * against 2 ms, and far more under emulation), so commands go to a
 * "virsh -q" shell that stays running, one command at a time, delimited
 * by markers (common.h). A small pool lets domains run in parallel;
 * with every shell busy, or none to be had, a command runs virsh once,
 * as it always could. A command past its deadline kills its shell; the
 * next use starts another. Shells that keep dying are rested, said
 * once: virsh runs once per command until the rest is over.
 */
#define SHELL_FAILS	3		/* shells in a row that die unasked */
#define SHELL_REST_MS	60000		/* then one-shot runs this long */
#define SHELL_STOP_MS	2000		/* a shell's time to leave at our exit */
#define SHELL_LINE_MAX	(4 * PATH_MAX)	/* what we write for one command */

struct shell {
	pid_t	pid;			/* 0: none running */
	int	in, out, err;		/* our ends of its stdin, stdout, stderr */
	bool	busy;
	bool	reaped;			/* it ended, and was waited for */
	int	status;			/* then its wait status */
};

static struct {
	pthread_mutex_t	lock;
	struct shell	sh[SHELLS];
	char		tag[17];	/* markers no input can hold */
	unsigned long	serial;
	unsigned	fails;		/* in a row */
	int64_t		rest_until;	/* one-shot runs until then */
	bool		stopped;
} shells = { .lock = PTHREAD_MUTEX_INITIALIZER };

static char	*shell_env[8];		/* virsh_env, and readline tamed */

/* Whether a shell's tokenizer takes arg, quoted, as it is: printable
 * ASCII without a quote. What our validators pass always is; the rest
 * goes to virsh as an argument of its own (a one-shot run). */
static bool
shell_quotable(const char *arg)
{
	return is_text(arg, strlen(arg)) && strchr(arg, '\'') == NULL;
}

static void
fd_close(int *fd)
{
	if (*fd != -1)
		close(*fd);
	*fd = -1;
}

/* Starts sh: [-c URI] -q, its three pipes ours. 0, or -1 with why. */
static int
shell_spawn(struct shell *sh, char *why, size_t whysz)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t sa;
	char prog[PATH_MAX], *argv[8], eb[128];
	const char *const args[] = { "-q", NULL };
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, e;

	if (virsh_argv(prog, argv, args) == -1) {
		reasonf(why, whysz, "%s not found", opt.virsh);
		return -1;
	}
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1 ||
	    pipe2(err, O_CLOEXEC) == -1 ||
	    fcntl(in[1], F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(out[0], F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(err[0], F_SETFL, O_NONBLOCK) == -1)
		e = errno;
	else if ((e = posix_spawnattr_init(&sa)) == 0) {
		if ((e = posix_spawn_file_actions_init(&fa)) == 0) {
			if ((e = run_spawn_attrs(&sa, true)) == 0 &&
			    (e = posix_spawn_file_actions_adddup2(&fa, in[0],
			    STDIN_FILENO)) == 0 &&
			    (e = posix_spawn_file_actions_adddup2(&fa, out[1],
			    STDOUT_FILENO)) == 0 &&
			    (e = posix_spawn_file_actions_adddup2(&fa, err[1],
			    STDERR_FILENO)) == 0)
				e = posix_spawn(&sh->pid, prog, &fa, &sa, argv,
				    shell_env);
			posix_spawn_file_actions_destroy(&fa);
		}
		posix_spawnattr_destroy(&sa);
	}
	/* Its ends are its own; ours are kept if it runs. */
	fd_close(&in[0]);
	fd_close(&out[1]);
	fd_close(&err[1]);
	if (e != 0) {
		fd_close(&in[1]);
		fd_close(&out[0]);
		fd_close(&err[0]);
		sh->pid = 0;
		reasonf(why, whysz, "cannot run %s: %s", prog,
		    errstr(e, eb, sizeof(eb)));
		return -1;
	}
	sh->in = in[1];
	sh->out = out[0];
	sh->err = err[0];
	sh->reaped = false;
	return 0;
}

/* Ends sh, by SIGKILL to its group unless it left (or leaves within ms
 * of its stdin's end), and reaps it: its wait status. */
static int
shell_end(struct shell *sh, int ms)
{
	struct pollfd p = { .fd = sh->out, .events = POLLIN };
	int64_t deadline = now_ms() + ms, left;
	char buf[256];
	int status = 0;
	ssize_t n;

	close(sh->in);
	while ((left = deadline - now_ms()) > 0 && poll(&p, 1, (int)left) > 0)
		if ((n = read(sh->out, buf, sizeof(buf))) == 0 ||
		    (n == -1 && errno != EAGAIN && errno != EINTR))
			break;
	if (sh->reaped)
		status = sh->status;
	else if (waitpid(sh->pid, &status, WNOHANG) != sh->pid) {
		if (kill(-sh->pid, SIGKILL) == -1)
			kill(sh->pid, SIGKILL);
		while (waitpid(sh->pid, &status, 0) == -1 && errno == EINTR)
			;
	}
	close(sh->out);
	close(sh->err);
	sh->pid = 0;
	sh->in = sh->out = sh->err = -1;
	return status;
}

/* Whether idle sh still runs, its stdout and stderr open (something it
 * left behind may hold them: it is waited for too). */
static bool
shell_alive(struct shell *sh)
{
	struct pollfd p[2] = {
		{ .fd = sh->out, .events = POLLIN },
		{ .fd = sh->err, .events = POLLIN },
	};

	if (waitpid(sh->pid, &sh->status, WNOHANG) == sh->pid) {
		sh->reaped = true;
		return false;
	}
	return poll(p, 2, 0) >= 0 && !(p[0].revents & (POLLHUP | POLLERR)) &&
	    !(p[1].revents & (POLLHUP | POLLERR));
}

/* A shell of our own for a command (*fresh: just started), or NULL: all
 * busy, resting, or none could start. */
static struct shell *
shell_take(bool *fresh, char *why, size_t whysz)
{
	struct shell *sh = NULL;

	pthread_mutex_lock(&shells.lock);
	if (shells.stopped || (shells.rest_until != 0 &&
	    now_ms() < shells.rest_until)) {
		pthread_mutex_unlock(&shells.lock);
		return NULL;
	}
	shells.rest_until = 0;
	for (int i = 0; i < SHELLS && sh == NULL; i++)
		if (!shells.sh[i].busy && shells.sh[i].pid != 0) {
			if (shell_alive(&shells.sh[i]))
				sh = &shells.sh[i];
			else
				shell_end(&shells.sh[i], 0);
		}
	*fresh = sh == NULL;
	for (int i = 0; i < SHELLS && sh == NULL; i++)
		if (!shells.sh[i].busy)
			sh = &shells.sh[i];
	if (sh != NULL)
		sh->busy = true;
	pthread_mutex_unlock(&shells.lock);
	if (sh != NULL && *fresh && shell_spawn(sh, why, whysz) == -1) {
		pthread_mutex_lock(&shells.lock);
		sh->busy = false;
		pthread_mutex_unlock(&shells.lock);
		return NULL;
	}
	return sh;
}

/* Gives sh (if any) back to the pool; counts a shell that failed us
 * (why), and rests them all after SHELL_FAILS in a row, said once. */
static void
shell_give(struct shell *sh, bool failed, const char *why)
{
	char esc[MAX_REASON * 4 + 1];
	bool rest = false;

	pthread_mutex_lock(&shells.lock);
	if (sh != NULL)
		sh->busy = false;
	if (!failed)
		shells.fails = 0;
	else if (++shells.fails >= SHELL_FAILS) {
		shells.fails = 0;
		shells.rest_until = now_ms() + SHELL_REST_MS;
		rest = true;
	}
	pthread_mutex_unlock(&shells.lock);
	if (rest) {
		escape_text(esc, sizeof(esc), why, strlen(why));
		log_warn("[VMusb] virsh's shell keeps failing (%s): running "
		    "virsh once per command for %d s", esc, SHELL_REST_MS / 1000);
	}
}

/* Writes buf[0..len) to sh by the deadline: how much it took. */
static size_t
shell_write(struct shell *sh, const char *buf, size_t len, int64_t deadline)
{
	size_t sent = 0;
	int64_t left;

	while (sent < len) {
		ssize_t n = write(sh->in, buf + sent, len - sent);
		struct pollfd p = { .fd = sh->in, .events = POLLOUT };

		if (n > 0)
			sent += (size_t)n;
		else if (n == -1 && errno != EAGAIN && errno != EINTR)
			break;
		else if ((left = deadline - now_ms()) <= 0 ||
		    (poll(&p, 1, (int)left) == -1 && errno != EINTR))
			break;
	}
	return sent;
}

/* Reads what sh wrote on fd into s: false at its end. */
static bool
shell_read(int fd, struct shell_reply *s, bool out)
{
	char buf[SHELL_CHUNK];

	for (int i = 0; i < RUN_READS; i++) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n > 0 && out)
			shell_feed_out(s, buf, (size_t)n);
		else if (n > 0)
			shell_feed_err(s, buf, (size_t)n);
		else if (n == 0)
			return false;
		else if (errno != EINTR)
			return errno == EAGAIN;
	}
	return true;
}

/*
 * What idle sh wrote since its last command, read and set aside: the
 * prompt, and what virsh says of its own accord (that it lost libvirtd,
 * say), which is no command's. Its stderr lines are logged.
 */
static void
shell_drain(struct shell *sh)
{
	char buf[SHELL_CHUNK], esc[MAX_LINE * 4 + 1];
	struct linebuf lb;
	const char *p, *l;
	ssize_t n;
	size_t len, left;

	for (int i = 0; i < RUN_READS &&
	    (n = read(sh->out, buf, sizeof(buf))) > 0; i++)
		;
	line_clear(&lb);
	for (int i = 0; i < RUN_READS &&
	    (n = read(sh->err, buf, sizeof(buf))) > 0; i++)
		for (p = buf, left = (size_t)n; left > 0; )
			if (line_feed(&lb, &p, &left) != LINE_MORE &&
			    (len = line_trim(lb.buf, lb.len, &l)) > 0) {
				escape_text(esc, sizeof(esc), l, len);
				log_info("[VMusb] virsh said: %s", esc);
			}
}

enum shell_outcome {
	SHELL_ANSWERED,		/* r holds what came of the command */
	SHELL_UNASKED,		/* the command never reached virsh */
	SHELL_DIED,		/* the shell ended: r says how */
};

/*
 * Runs args (a virsh command and its arguments) in sh, reading its
 * answer into r by the deadline; a fresh shell says hello first. Past
 * the deadline, or out of step, the shell is ended.
 */
static enum shell_outcome
shell_run(struct shell *sh, bool fresh, char *const args[], int timeout_s,
    struct run *r)
{
	struct shell_reply *s;
	char id[40], hello[40], *buf;
	size_t len = 0, sent;
	unsigned long serial;
	int64_t deadline = now_ms() + (int64_t)timeout_s * 1000, left = 1;
	bool out_open = true, err_open = true;
	enum shell_outcome o = SHELL_ANSWERED;

	if ((s = malloc(sizeof(*s))) == NULL ||
	    (buf = malloc(SHELL_LINE_MAX)) == NULL) {
		free(s);
		return SHELL_UNASKED;
	}
	pthread_mutex_lock(&shells.lock);
	serial = shells.serial += 2;
	pthread_mutex_unlock(&shells.lock);
	snprintf(id, sizeof(id), "%s-%lu", shells.tag, serial);
	snprintf(hello, sizeof(hello), "%s-%lu", shells.tag, serial - 1);
	if (fresh)
		len = (size_t)shell_marker_lines(buf, SHELL_LINE_MAX, hello);
	for (char *const *a = args; *a != NULL && len < SHELL_LINE_MAX; a++)
		len += (size_t)snprintf(buf + len, SHELL_LINE_MAX - len,
		    a == args ? "%s" : " '%s'", *a);
	if (len < SHELL_LINE_MAX)
		len += (size_t)snprintf(buf + len, SHELL_LINE_MAX - len, "\n");
	if (len >= SHELL_LINE_MAX || shell_marker_lines(buf + len,
	    SHELL_LINE_MAX - len, id) < 0 || shell_reply_start(s, r, id,
	    fresh ? hello : NULL) == -1) {
		free(buf);
		free(s);
		return SHELL_UNASKED;
	}
	len += strlen(buf + len);
	if (!fresh)
		shell_drain(sh);
	if ((sent = shell_write(sh, buf, len, deadline)) < len) {
		/* Gone, or not reading: if it took none of it, it never saw
		 * the command. */
		out_open = err_open = false;
	}
	while ((out_open || err_open) && !shell_reply_done(s) &&
	    s->out != SHELL_LOST && (left = deadline - now_ms()) > 0) {
		struct pollfd p[2] = {
			{ .fd = out_open ? sh->out : -1, .events = POLLIN },
			{ .fd = err_open ? sh->err : -1, .events = POLLIN },
		};

		if (poll(p, 2, (int)(left > INT_MAX ? INT_MAX : left)) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents != 0)
			out_open = shell_read(sh->out, s, true);
		if (p[1].revents != 0)
			err_open = shell_read(sh->err, s, false);
	}
	if (shell_reply_done(s))
		r->outcome = s->failed ? RUN_FAILED : RUN_OK;
	else if (s->out == SHELL_LOST) {
		shell_end(sh, 0);
		r->outcome = RUN_FAILED;
		o = SHELL_DIED;
		snprintf(r->reason, sizeof(r->reason), "virsh's shell fell "
		    "out of step");
	} else if (left <= 0) {
		shell_end(sh, 0);
		r->outcome = RUN_TIMED_OUT;
		snprintf(r->reason, sizeof(r->reason), "timed out");
		/* Its output ended, its errors never did: the shell, not the
		 * command, is at fault, and counts as failing. */
		if (s->out == SHELL_DONE)
			o = SHELL_DIED;
	} else {
		int status = shell_end(sh, 0);

		/* Before its hello, it never read the command. */
		o = (fresh && s->out == SHELL_HELLO) || sent == 0 ?
		    SHELL_UNASKED : SHELL_DIED;
		r->outcome = RUN_FAILED;
		run_reason(r, status);
	}
	if (r->outcome == RUN_FAILED && o == SHELL_ANSWERED)
		snprintf(r->reason, sizeof(r->reason), "%s", r->error);
	free(buf);
	free(s);
	return o;
}

/* The markers' tag: random, so that no output of virsh holds one. */
static void
shells_init(void)
{
	unsigned char b[8];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		err(1, "getrandom");
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(shells.tag + 2 * i, 3, "%02x", b[i]);
}

/* At exit, with no command running: each shell is told to leave, then
 * made to. */
static void
shells_stop(void)
{
	pthread_mutex_lock(&shells.lock);
	shells.stopped = true;
	for (int i = 0; i < SHELLS; i++)
		if (shells.sh[i].pid != 0 && !shells.sh[i].busy)
			shell_end(&shells.sh[i], SHELL_STOP_MS);
	pthread_mutex_unlock(&shells.lock);
}

/* Runs argv (virsh's) in a shell, or once if none serves: what came of
 * it in r. */
static void
virsh_exec(char *const argv[], struct run *r)
{
	char *const *args = argv + (opt.connect != NULL ? 3 : 1);
	char why[MAX_REASON + 1] = "";
	struct shell *sh = NULL;
	enum shell_outcome o;
	bool fresh, quotable = true;

	for (char *const *a = args; *a != NULL; a++)
		quotable = quotable && shell_quotable(*a);
	if (!opt.one_shot && quotable &&
	    (sh = shell_take(&fresh, why, sizeof(why))) != NULL) {
		o = shell_run(sh, fresh, args, r->timeout_s, r);
		shell_give(sh, o != SHELL_ANSWERED, r->reason[0] != '\0' ?
		    r->reason : "it ended");
		if (o != SHELL_UNASKED)
			return;
	} else if (why[0] != '\0')
		shell_give(NULL, true, why);
	run_program(r);
}

/* Runs argv as virsh: the fixed environment, the --timeout deadline,
 * what it writes read for its reason. */
static void
virsh_run(char *const argv[], int timeout_s, struct run *r)
{
	memset(r, 0, sizeof(*r));
	r->argv = argv;
	r->envp = virsh_env;
	r->timeout_s = timeout_s;
	virsh_exec(argv, r);
}

/* How virsh is run for a command. */
struct virsh_call {
	char	prog[PATH_MAX];
	char	verb[16];
	char	*argv[10];
};

/* virsh's program and arguments for req with the XML file at path. Every
 * field passed validation; every parameter is named. -1 with why when
 * there is no virsh to run. */
static int
virsh_call(struct virsh_call *v, const struct request *req, char *path,
    char *why, size_t whysz)
{
	char eb[128];
	int argc = 0;

	if (virsh_path(v->prog, sizeof(v->prog)) == -1) {
		reasonf(why, whysz, "cannot run %s: not found in %s", v->prog,
		    SAFE_PATH);
		return -1;
	}
	/* posix_spawn reports a failed exec on glibc, not everywhere (nor
	 * under valgrind); this says why in plain words on every libc. */
	if (access(v->prog, X_OK) == -1) {
		reasonf(why, whysz, "cannot run %s: %s", v->prog,
		    errstr(errno, eb, sizeof(eb)));
		return -1;
	}
	snprintf(v->verb, sizeof(v->verb), "%s-device", action_name(req->action));
	v->argv[argc++] = v->prog;
	if (opt.connect != NULL) {
		v->argv[argc++] = (char *)"-c";
		v->argv[argc++] = (char *)opt.connect;
	}
	v->argv[argc++] = v->verb;
	v->argv[argc++] = (char *)"--domain";
	v->argv[argc++] = (char *)req->vm;
	v->argv[argc++] = (char *)"--file";
	v->argv[argc++] = path;
	v->argv[argc] = NULL;
	return 0;
}

/* virsh's arguments: [-c URI] then the verb's, in argv (room for 8). */
static int
virsh_argv(char prog[PATH_MAX], char *argv[8], const char *const *args)
{
	int argc = 0;

	if (virsh_path(prog, PATH_MAX) == -1)
		return -1;
	argv[argc++] = prog;
	if (opt.connect != NULL) {
		argv[argc++] = (char *)"-c";
		argv[argc++] = (char *)opt.connect;
	}
	while (*args != NULL && argc < 7)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	return 0;
}

/* Runs virsh with args (after -c URI), what it prints into out, of
 * size bytes with room for a NUL: false when there is no virsh to run. */
static bool
virsh_query(const char *const *args, char *out, size_t size, struct run *r)
{
	char prog[PATH_MAX], *argv[8];

	if (virsh_argv(prog, argv, args) == -1)
		return false;
	memset(r, 0, sizeof(*r));
	r->argv = argv;
	r->envp = virsh_env;
	r->timeout_s = opt.timeout;
	r->out = out;
	r->outsize = size - 1;
	virsh_exec(argv, r);
	r->argv = NULL;		/* argv was ours */
	return true;
}

/*
 * vm's state, as "virsh domstate" says it, its first line trimmed, into
 * state: true when virsh said one (r says how it went, RUN_NORUN when
 * there is no virsh to run).
 */
static bool
domain_state(const char *vm, char state[DOMSTATE_MAX], struct run *r)
{
	const char *args[] = { "domstate", "--domain", vm, NULL };
	const char *s;
	char out[DOMSTATE_MAX];
	size_t n;

	state[0] = '\0';
	if (!virsh_query(args, out, sizeof(out), r)) {
		r->outcome = RUN_NORUN;
		return false;
	}
	if (r->outcome != RUN_OK)
		return false;
	out[r->outlen] = '\0';
	n = line_trim(out, strcspn(out, "\n"), &s);
	memcpy(state, s, n);
	state[n] = '\0';
	return true;
}

/*
 * vm's USB hostdevs, as "virsh dumpxml" says, into devs[0..max): how
 * many, or -1 when it cannot tell (no XML, or more hostdevs than max).
 */
static int
domain_hostdevs(const char *vm, struct hostdev *devs, int max)
{
	const char *args[] = { "dumpxml", "--domain", vm, NULL };
	struct run r;
	char *xml;
	int n = -1;

	if ((xml = malloc(XML_READ_MAX + 1)) == NULL)
		return -1;
	if (virsh_query(args, xml, XML_READ_MAX + 1, &r) &&
	    r.outcome == RUN_OK && r.outlen < XML_READ_MAX) {
		xml[r.outlen] = '\0';
		if ((n = domain_hostdevs_parse(xml, r.outlen, devs, max)) == max)
			n = -1;
	}
	free(xml);
	return n;
}

/*
 * Where vm holds a device with d's ids, as its XML says ("virsh
 * dumpxml"), when exactly one of its USB hostdevs has them: after a
 * replug the device has another address on the host, and libvirt
 * detaches only by the one it holds.
 */
static bool
usb_held_at(const char *vm, const struct usb_device *d, struct usb_addr *addr)
{
	struct hostdev devs[32];
	int n = domain_hostdevs(vm, devs, 32), found = 0;

	for (int i = 0; i < n; i++)
		if (device_ids_equal(&devs[i].device, d) && devs[i].bus > 0 &&
		    found++ == 0) {
			addr->bus = (unsigned)devs[i].bus;
			addr->dev = (unsigned)devs[i].dev;
		}
	return found == 1;
}

/* The XML file for cmd's device at addr (NULL: by its ids alone), then
 * virsh with it: what came of cmd. */
static void
virsh_device_at(struct command *cmd, const struct usb_addr *addr)
{
	const struct usb_device *d = &cmd->req.device;
	char path[PATH_MAX];
	struct virsh_call v;
	struct run r;
	bool temporary = false;

	cmd->outcome = OUT_FAILED;
	if (xml_write(d, addr, path, sizeof(path), &temporary, cmd->why,
	    sizeof(cmd->why)) == -1)
		return;
	if (virsh_call(&v, &cmd->req, path, cmd->why, sizeof(cmd->why)) == 0) {
		virsh_run(v.argv, opt.timeout, &r);
		if (r.outcome == RUN_FAILED && !device_has_port(d) &&
		    strstr(r.reason, LIBVIRT_MULTIPLE) != NULL)
			usb_name_ports(d, r.reason, sizeof(r.reason));
		command_done(cmd, r.outcome == RUN_OK ? OUT_OK : OUT_FAILED,
		    r.reason);
	}
	if (temporary)
		unlink(path);
}

/*
 * cmd's device, by the address the domain holds it at when that is
 * known (a detach of what the ledger has, a give-back), else at its port
 * now, else by its ids alone; then virsh: what came of cmd. A detach
 * that libvirt refuses is tried once more at the address the domain's
 * XML holds, if that is another: the device was replugged.
 */
static void
virsh_device(struct command *cmd)
{
	const struct usb_device *d = &cmd->req.device;
	struct usb_addr addr, held;
	const struct usb_addr *at = NULL;

	cmd->outcome = OUT_FAILED;
	if (cmd->placed && cmd->req.action == ACT_DETACH)
		at = &cmd->addr;
	else if (device_has_port(d) && usb_at_port(d, &addr, NULL, cmd->why,
	    sizeof(cmd->why)) == 0)
		at = &addr;
	else if (device_has_port(d) && cmd->req.action == ACT_ATTACH)
		return;
	/* A device gone from the port named is never looked for by its ids
	 * alone: its twin may be what they find. */
	if (at != NULL || !device_has_port(d))
		virsh_device_at(cmd, at);
	if (cmd->outcome != OUT_OK && cmd->req.action == ACT_DETACH &&
	    usb_held_at(cmd->req.vm, d, &held) && (at == NULL ||
	    held.bus != at->bus || held.dev != at->dev))
		virsh_device_at(cmd, &held);
	if (cmd->outcome == OUT_OK && cmd->req.action == ACT_ATTACH)
		usb_place(cmd);
}

/* Queued for its domain, one at a time, then run: what came of cmd. */
static void
command_run(struct command *cmd)
{
	struct vm_queue *q;

	/* These move nothing themselves: a release's give-backs are
	 * commands of their own, each queued for its domain. */
	switch (cmd->req.action) {
	case ACT_RELEASE:
		release_run(cmd);
		return;
	case ACT_ALIVE:
		lease_run(cmd);
		return;
	case ACT_STATUS:
		status_run(cmd);
		return;
	case ACT_DOMAINS:
		domains_run(cmd);
		return;
	case ACT_WATCH:
		switches_join(cmd);
		return;
	case ACT_ATTACH:
	case ACT_DETACH:
		break;
	}
	if (vm_enter(cmd->req.vm, cmd->who->kind == PEER_GUEST ? QUEUE_GUEST :
	    QUEUE_HOST, &q) == -1) {
		command_done(cmd, OUT_FAILED, errno == ECANCELED ?
		    "shutting down" : "out of memory");
		return;
	}
	if (cmd->forget)
		command_done(cmd, OUT_OK, NULL);
	else {
		if (cmd->req.action == ACT_DETACH && cmd->cause == NULL &&
		    !cmd->follow)
			ledger_where(cmd);
		virsh_device(cmd);
	}
	/* Recorded before the next command of the domain runs, so that the
	 * ledger follows the order in which they ran. */
	ledger_record(cmd);
	cmd->recorded = true;
	vm_leave(q);
}

/* ------------------------------------------------------------------ */
/* Record: the ledger of what we attached                              */

/*
 * Every device we attached and have not seen leave: the domain, the
 * device as asked for, where it sat and when. It is what a give-back
 * gives back, so that the way back never depends on the guest. Kept in
 * the file opt.ledger (written whole to a new file, then renamed over
 * the old), read back at start: a restart of the daemon forgets
 * nothing, and a reboot, which empties /run, starts clean.
 */
struct ledger_slot {
	struct ledger_entry	e;
	bool			giving_back;	/* a give-back is on its way */
	bool			forgetting;	/* and its striking out */
	bool			waiting;	/* it left the host: see Follow */
};

static struct {
	pthread_mutex_t		lock;
	struct ledger_slot	slot[LEDGER_MAX];
	size_t			n;
	bool			full_said;
	bool			save_failed;	/* said; said again when it works */
	/* The domains last said to hold devices (see Switches): each has
	 * an entry, or a follow that may bring it back. */
	char			guest[LEDGER_MAX][MAX_VM_NAME + 1];
	size_t			nguest;
} ledger = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Writes the ledger's file anew, with ledger.lock held. */
static void
ledger_save_locked(void)
{
	static char buf[LEDGER_MAX * LEDGER_LINE + sizeof(LEDGER_HEADER) + 1];
	char tmp[PATH_MAX], eb[128];
	size_t len;
	ssize_t w = -1;
	int fd, n;

	if (opt.ledger[0] == '\0')
		return;
	len = (size_t)snprintf(buf, sizeof(buf), "%s\n", LEDGER_HEADER);
	for (size_t i = 0; i < ledger.n; i++)
		if ((n = ledger_format(buf + len, sizeof(buf) - len,
		    &ledger.slot[i].e)) > 0)
			len += (size_t)n;
	errno = ENAMETOOLONG;
	if (fit(snprintf(tmp, sizeof(tmp), "%s.XXXXXX", opt.ledger),
	    sizeof(tmp)) < 0 || (fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		goto fail;
	w = write(fd, buf, len);
	if (w != (ssize_t)len || fsync(fd) == -1) {
		if (w >= 0 && w != (ssize_t)len)
			errno = ENOSPC;
		close(fd);
		unlink(tmp);
		goto fail;
	}
	if (close(fd) == -1 || rename(tmp, opt.ledger) == -1) {
		unlink(tmp);
		goto fail;
	}
	if (ledger.save_failed)
		log_info("[VMusb] ledger %s written again", opt.ledger);
	ledger.save_failed = false;
	return;
fail:
	if (!ledger.save_failed)
		log_warn("[VMusb] cannot write the ledger %s (%s): a restart "
		    "would forget what is attached", opt.ledger,
		    errstr(errno, eb, sizeof(eb)));
	ledger.save_failed = true;
}

/* The slot of vm's device d as the ledger has it, or NULL. With lock. */
static struct ledger_slot *
ledger_find_locked(const char *vm, const struct usb_device *d)
{
	for (size_t i = 0; i < ledger.n; i++)
		if (strcmp(ledger.slot[i].e.vm, vm) == 0 &&
		    device_equal(&ledger.slot[i].e.device, d))
			return &ledger.slot[i];
	return NULL;
}

/* Does a detach of d take the ledger's entry e (of its domain)? d names
 * it as it was asked for, or by its ids, or by the port it sat at. */
static bool
ledger_detach_takes(const struct usb_device *d, const struct ledger_entry *e)
{
	return device_ids_equal(d, &e->device) && (!device_has_port(d) ||
	    strcmp(d->port, e->device.port) == 0 || strcmp(d->port, e->at) == 0);
}

/* Adds e, or replaces the entry of its device; false when full. With
 * lock. */
static bool
ledger_put_locked(const struct ledger_entry *e)
{
	struct ledger_slot *s = ledger_find_locked(e->vm, &e->device);

	if (s == NULL) {
		if (ledger.n == LEDGER_MAX)
			return false;
		s = &ledger.slot[ledger.n++];
	}
	s->e = *e;
	s->giving_back = s->forgetting = s->waiting = false;
	return true;
}

static void
ledger_drop_locked(size_t i)
{
	ledger.slot[i] = ledger.slot[--ledger.n];
}

/*
 * The record step of the one path: an attach that worked is written
 * down, a detach that worked (or a give-back, or a stopped domain's
 * forgetting) struck out; a give-back that failed may be tried again.
 */
static void
ledger_record(struct command *cmd)
{
	const struct request *req = &cmd->req;
	struct ledger_entry e = { .since = (long long)time(NULL) };
	struct ledger_slot *s;
	bool changed = false, full = false;
	char dev[DEVICE_TEXT];

	if (cmd->outcome == OUT_INVALID || (req->action != ACT_ATTACH &&
	    req->action != ACT_DETACH))
		return;
	pthread_mutex_lock(&ledger.lock);
	if (cmd->outcome != OUT_OK) {
		if (cmd->cause != NULL && (s = ledger_find_locked(req->vm,
		    &req->device)) != NULL)
			s->giving_back = s->forgetting = false;
	} else if (req->action == ACT_ATTACH) {
		memcpy(e.vm, req->vm, sizeof(e.vm));
		e.device = cmd->named ? cmd->name : req->device;
		if (cmd->placed) {
			memcpy(e.at, cmd->at, sizeof(e.at));
			e.addr = cmd->addr;
			e.serial = cmd->serial;
		}
		full = !(changed = ledger_put_locked(&e)) && !ledger.full_said;
		ledger.full_said |= full;
	} else if (cmd->cause != NULL || cmd->follow) {
		if ((s = ledger_find_locked(req->vm, &req->device)) != NULL &&
		    s->e.since == cmd->since) {
			ledger_drop_locked((size_t)(s - ledger.slot));
			changed = true;
		}
	} else
		for (size_t i = ledger.n; i-- > 0; )
			if (strcmp(ledger.slot[i].e.vm, req->vm) == 0 &&
			    ledger_detach_takes(&req->device,
			    &ledger.slot[i].e)) {
				ledger_drop_locked(i);
				changed = true;
			}
	if (changed) {
		ledger.full_said = ledger.full_said && ledger.n == LEDGER_MAX;
		ledger_save_locked();
		/* A follow's detach of the stale device switches nothing:
		 * its attach comes next (follow_run settles it). */
		if (!(cmd->follow && req->action == ACT_DETACH))
			cmd->switched = switch_check_locked(req->vm,
			    switch_reason(cmd), req->action == ACT_ATTACH ?
			    &e.device : &req->device);
	}
	pthread_mutex_unlock(&ledger.lock);
	if (full)
		log_warn("[VMusb] the ledger is full (%d devices): %s %s is "
		    "not in it, and will not be given back by itself", LEDGER_MAX,
		    req->vm, device_text(&req->device, dev));
}

/* Where the domain holds the device a client's detach names, if the
 * ledger knows: exactly one entry of its domain is taken by it, and
 * where it sat is known. A replug since has not moved it in libvirt's
 * eyes. */
static void
ledger_where(struct command *cmd)
{
	const struct ledger_entry *found = NULL;
	size_t n = 0;

	pthread_mutex_lock(&ledger.lock);
	for (size_t i = 0; i < ledger.n; i++)
		if (strcmp(ledger.slot[i].e.vm, cmd->req.vm) == 0 &&
		    ledger_detach_takes(&cmd->req.device, &ledger.slot[i].e)) {
			found = &ledger.slot[i].e;
			n++;
		}
	if (n == 1 && found->addr.bus != 0) {
		cmd->placed = true;
		cmd->addr = found->addr;
		memcpy(cmd->at, found->at, sizeof(cmd->at));
	}
	pthread_mutex_unlock(&ledger.lock);
}

/*
 * Takes for a give-back the ledger's entries of vm (of every domain if
 * vm is NULL) that no give-back has taken yet, or for a forgetting
 * (forget) those none has: at most max, into out. How many. So each
 * entry is in one job of each kind at most, and their queue is bounded.
 */
static size_t
ledger_take(const char *vm, bool forget, struct ledger_entry *out,
    size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&ledger.lock);
	for (size_t i = 0; i < ledger.n && n < max; i++) {
		struct ledger_slot *s = &ledger.slot[i];

		if ((vm == NULL || strcmp(s->e.vm, vm) == 0) &&
		    !(forget ? s->forgetting : s->giving_back)) {
			s->giving_back = true;
			s->forgetting |= forget;
			out[n++] = s->e;
		}
	}
	pthread_mutex_unlock(&ledger.lock);
	return n;
}

/* The domains the ledger names, each once, into vms: how many. */
static size_t
ledger_domains(char (*vms)[MAX_VM_NAME + 1], size_t max)
{
	size_t n = 0, j;

	pthread_mutex_lock(&ledger.lock);
	for (size_t i = 0; i < ledger.n && n < max; i++) {
		for (j = 0; j < n && strcmp(vms[j], ledger.slot[i].e.vm) != 0;
		    j++)
			;
		if (j == n)
			memcpy(vms[n++], ledger.slot[i].e.vm, MAX_VM_NAME + 1);
	}
	pthread_mutex_unlock(&ledger.lock);
	return n;
}

/*
 * Reads the ledger back at start. It decides what we detach, so it must
 * be a regular file of ours (or root's) that nobody else may write, in
 * a directory like it; we make the directory if it is missing. A line
 * that is not an entry (a file cut short, or written by someone else)
 * is skipped, and the count said.
 */
static void
ledger_load(void)
{
	static char buf[LEDGER_MAX * LEDGER_LINE + sizeof(LEDGER_HEADER) + 1];
	char dir[PATH_MAX], eb[128], *slash;
	struct ledger_entry e;
	struct stat st;
	size_t at = 0, llen, bad = 0, lineno = 0, first_bad = 0;
	const char *line;
	ssize_t len;

	if (opt.ledger[0] == '\0')
		return;
	snprintf(dir, sizeof(dir), "%s", opt.ledger);
	if ((slash = strrchr(dir, '/')) != NULL)
		slash[slash == dir] = '\0';	/* "/ledger": the directory is "/" */
	if (slash != NULL && mkdir(dir, 0700) == -1 && errno != EEXIST)
		log_warn("[VMusb] cannot make %s for the ledger: %s", dir,
		    errstr(errno, eb, sizeof(eb)));
	if (slash != NULL && stat(dir, &st) == 0 &&
	    file_trust(&st, S_IFDIR) != TRUSTED) {
		log_warn("[VMusb] %s may be written by others: no ledger is "
		    "kept there; a restart would forget what is attached", dir);
		opt.ledger = "";
		return;
	}
	if ((len = file_read(opt.ledger, buf, sizeof(buf), &st, true)) == -1) {
		if (errno != ENOENT)
			log_warn("[VMusb] cannot read the ledger %s: %s; it "
			    "starts empty", opt.ledger,
			    errstr(errno, eb, sizeof(eb)));
		return;
	}
	if (file_trust(&st, S_IFREG) != TRUSTED) {
		log_warn("[VMusb] the ledger %s is not ours alone: ignored",
		    opt.ledger);
		return;
	}
	pthread_mutex_lock(&ledger.lock);
	while (text_line(buf, (size_t)len, &at, &line, &llen)) {
		lineno++;
		if (llen > 0 && line[0] == '#')
			continue;
		/* Ours end in '\n': a line without one was cut short. */
		if (at > (size_t)len || !ledger_parse(line, llen, &e) ||
		    !ledger_put_locked(&e)) {
			if (bad++ == 0)
				first_bad = lineno;
		}
	}
	/* Its domains switched before we started: told to no one. */
	for (size_t i = 0; i < ledger.n; i++)
		switch_note_locked(ledger.slot[i].e.vm, true);
	pthread_mutex_unlock(&ledger.lock);
	if (bad > 0)
		log_warn("[VMusb] ledger %s: %zu line%s skipped, the first line "
		    "%zu: not an entry, or too many", opt.ledger, bad,
		    bad == 1 ? "" : "s", first_bad);
	if (ledger.n > 0)
		log_info("[VMusb] ledger %s: %zu device%s attached before we "
		    "started", opt.ledger, ledger.n, ledger.n == 1 ? "" : "s");
}

/* ------------------------------------------------------------------ */
/* Switches: a line for each, to the host clients that watch           */

/*
 * A domain switches to the guest when its first device goes into the
 * ledger, and back to the host when its last one leaves it, whatever
 * moved them. The host clients that said "watch on" (WATCHERS_MAX of
 * them, WATCHERS_PER_UID of one user but root) are each sent a line
 * (common.h's switch_format), in the order of the ledger's changes: it
 * is written, with ledger.lock held, to a pipe of the connection's,
 * whose own thread queues it as it queues a reply. A watcher that lets
 * its pipe fill (SWITCHES_PIPE, once its socket and outbox are full) is
 * dropped, and told so at the pipe's end: no one waits for a client that
 * does not read.
 */
static struct {
	pthread_mutex_t	lock;
	struct switch_watcher {
		const struct conn	*c;
		int			fd;	/* the pipe's end we write */
		uid_t			uid;
	}		w[WATCHERS_MAX];
	size_t		n;
} switches = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The word a switch line gives for what moved cmd's device. */
static const char *
switch_reason(const struct command *cmd)
{
	static const struct { const char *cause, *reason; } causes[] = {
		{ "crashed", "crashed" }, { "paused", "paused" },
		{ "suspended", "suspended" }, { "stopped", "stopped" },
		{ "is gone", "gone" }, { "holds it no more", "gone" },
		{ "released", "release" }, { "lease lapsed", "lease" },
	};

	if (cmd->follow)
		return "replug";
	if (cmd->assigned != NULL)
		return "assign";
	if (cmd->cause != NULL) {
		for (size_t i = 0; i < sizeof(causes) / sizeof(causes[0]); i++)
			if (strcmp(cmd->cause, causes[i].cause) == 0)
				return causes[i].reason;
		return "daemon";
	}
	return cmd->who->kind == PEER_GUEST ? "guest" : "client";
}

/* Notes that vm holds devices now (guest) or none: true if that is a
 * switch. With ledger.lock. */
static bool
switch_note_locked(const char *vm, bool guest)
{
	size_t i;

	for (i = 0; i < ledger.nguest && strcmp(ledger.guest[i], vm) != 0;
	    i++)
		;
	if (guest == (i < ledger.nguest))
		return false;
	if (!guest) {
		if (i != --ledger.nguest)
			memcpy(ledger.guest[i], ledger.guest[ledger.nguest],
			    sizeof(ledger.guest[i]));
	} else if (ledger.nguest < LEDGER_MAX)
		snprintf(ledger.guest[ledger.nguest++], sizeof(ledger.guest[0]),
		    "%s", vm);
	return true;
}

/* Drops watcher i, with switches.lock: its connection reads to the
 * pipe's end. */
static void
switches_drop_locked(size_t i)
{
	close(switches.w[i].fd);
	switches.w[i] = switches.w[--switches.n];
}

/* The log line of a switch (1: to the guest, -1: to the host), which
 * follows its command's. */
static void
switch_log(const char *vm, int switched, const char *reason)
{
	if (switched != 0)
		log_info("[VMusb] %s switched to the %s (%s)", vm, switched > 0 ?
		    "guest" : "host", reason);
}

/* Tells every watcher of the switch ev. */
static void
switches_tell(const struct switch_event *ev)
{
	char line[MAX_LINE + 1];
	int len = switch_format(line, sizeof(line), ev);

	pthread_mutex_lock(&switches.lock);
	for (size_t i = switches.n; len > 0 && i-- > 0; )
		/* Whole or not at all: the line is shorter than PIPE_BUF. */
		if (write(switches.w[i].fd, line, (size_t)len) != len) {
			log_warn("[VMusb] a client that watches the switches "
			    "does not read them: it watches no more");
			switches_drop_locked(i);
		}
	pthread_mutex_unlock(&switches.lock);
}

/* Whether vm switched, now that the ledger changed by d's move for
 * reason: 1 to the guest, -1 to the host, 0 not. If it did, the
 * watchers are told, with ledger.lock held, so that the lines go out in
 * the order of the changes. */
static int
switch_check_locked(const char *vm, const char *reason,
    const struct usb_device *d)
{
	struct switch_event ev = { .device = *d };
	bool holds = false;

	for (size_t i = 0; i < ledger.n && !holds; i++)
		holds = strcmp(ledger.slot[i].e.vm, vm) == 0;
	if (!switch_note_locked(vm, holds))
		return 0;
	snprintf(ev.vm, sizeof(ev.vm), "%s", vm);
	snprintf(ev.reason, sizeof(ev.reason), "%s", reason);
	ev.guest = holds;
	switches_tell(&ev);
	return holds ? 1 : -1;
}

/* The run step of "watch on", in the connection's thread: a pipe for it,
 * if there is room. */
static void
switches_join(struct command *cmd)
{
	struct conn *c = cmd->from;
	size_t mine = 0;
	char eb[128];
	int fds[2];

	if (c == NULL || c->switches != -1) {	/* none, or it watches */
		command_done(cmd, c == NULL ? OUT_FAILED : OUT_OK,
		    c == NULL ? "no connection" : NULL);
		return;
	}
	pthread_mutex_lock(&switches.lock);
	for (size_t i = 0; i < switches.n; i++)
		mine += switches.w[i].uid == c->peer.uid;
	if (switches.n == WATCHERS_MAX ||
	    (c->peer.uid != 0 && mine == WATCHERS_PER_UID))
		command_done(cmd, OUT_FAILED, "too many clients watch");
	else if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == -1)
		command_done(cmd, OUT_FAILED, errstr(errno, eb, sizeof(eb)));
	else {
		/* Less than the default 64 KiB: bounded per peer. */
		(void)fcntl(fds[1], F_SETPIPE_SZ, SWITCHES_PIPE);
		switches.w[switches.n++] = (struct switch_watcher){ .c = c,
		    .fd = fds[1], .uid = c->peer.uid };
		c->switches = fds[0];
		command_done(cmd, OUT_OK, NULL);
	}
	pthread_mutex_unlock(&switches.lock);
}

/* The connection watches no more: it ended, or its pipe did. */
static void
switches_leave(struct conn *c)
{
	if (c->switches == -1)
		return;
	pthread_mutex_lock(&switches.lock);
	for (size_t i = 0; i < switches.n; i++)
		if (switches.w[i].c == c) {
			switches_drop_locked(i);
			break;
		}
	pthread_mutex_unlock(&switches.lock);
	close(c->switches);
	c->switches = -1;
}

/* ------------------------------------------------------------------ */
/* Give back: libvirt's events, a source of commands                   */

/*
 * When a domain crashes, pauses or sleeps, its guest cannot give the
 * devices back, so we do: each ledger entry of that domain becomes a
 * detach command of ours, down the one path. When it stops, QEMU let
 * them go, and each entry becomes a command that only strikes it out.
 * A domain's give-back runs in a thread of its own, GIVEBACK_MAX at
 * once, so that a virsh that hangs for one domain holds up no other.
 */
struct giveback_job {
	struct giveback_job	*next;	/* waiting for a thread */
	const char		*cause;
	bool			forget;
	bool			follow;	/* not a give-back: e[0] came back at
					 * port, at addr (see Follow) */
	bool			assign;	/* nor this: e[0]'s device is to be
					 * attached to e[0]'s domain, for cause */
	bool			if_running;	/* if the domain runs */
	char			port[PORT_MAX + 1];
	size_t			n;
	struct ledger_entry	e[LEDGER_MAX];
};

/* The give-backs' threads, and the jobs that wait for one: whoever
 * hands in a job never waits. */
static struct {
	pthread_mutex_t		lock;
	pthread_cond_t		idle;
	unsigned		running;
	struct giveback_job	*head, *tail;
} giveback = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0,
    NULL, NULL };

/* Gives back the job's entries, each a detach command of ours down the
 * one path: how many were given back. */
static size_t
giveback_run(const struct giveback_job *job)
{
	size_t given = 0;

	for (size_t i = 0; i < job->n; i++) {
		const struct ledger_entry *e = &job->e[i];
		struct command cmd = {
			.req = { .action = ACT_DETACH, .device = e->device },
			.who = &self_peer,
			.cause = job->cause,
			.forget = job->forget,
			.since = e->since,
			.placed = e->addr.bus != 0,
			.addr = e->addr,
		};

		memcpy(cmd.req.vm, e->vm, sizeof(cmd.req.vm));
		memcpy(cmd.at, e->at, sizeof(cmd.at));
		command_do(&cmd);
		given += cmd.outcome == OUT_OK;
	}
	return given;
}

static void	follow_run(const struct giveback_job *);
static bool	domain_runs(const char *);
static void	assign_run(const struct giveback_job *);

/* A give-back's thread: its job, then those that wait, until none. */
static void *
giveback_main(void *arg)
{
	struct giveback_job *job = arg;

	while (job != NULL) {
		if (job->follow)
			follow_run(job);
		else if (job->assign)
			assign_run(job);
		else
			(void)giveback_run(job);
		free(job);
		pthread_mutex_lock(&giveback.lock);
		if ((job = giveback.head) != NULL) {
			if ((giveback.head = job->next) == NULL)
				giveback.tail = NULL;
		} else if (--giveback.running == 0)
			pthread_cond_broadcast(&giveback.idle);
		pthread_mutex_unlock(&giveback.lock);
	}
	return NULL;
}

/* At the end: waits for the give-backs' threads, which path_close has
 * left nothing to run. */
static void
giveback_wait(void)
{
	pthread_mutex_lock(&giveback.lock);
	while (giveback.running > 0)
		pthread_cond_wait(&giveback.idle, &giveback.lock);
	pthread_mutex_unlock(&giveback.lock);
}

/* Runs job in a thread of the give-backs', or queues it for the next
 * one free: never waits. */
static void
giveback_submit(struct giveback_job *job)
{
	pthread_attr_t attr;
	pthread_t t;
	bool threaded = false;

	pthread_mutex_lock(&giveback.lock);
	if (giveback.running == GIVEBACK_MAX) {
		if (giveback.tail != NULL)
			giveback.tail->next = job;
		else
			giveback.head = job;
		giveback.tail = job;
		job = NULL;
	} else
		giveback.running++;
	pthread_mutex_unlock(&giveback.lock);
	if (job == NULL)
		return;		/* a thread that ends its job takes it */
	if (pthread_attr_init(&attr) == 0) {
		threaded = pthread_attr_setdetachstate(&attr,
		    PTHREAD_CREATE_DETACHED) == 0 &&
		    pthread_attr_setstacksize(&attr, THREAD_STACK) == 0 &&
		    pthread_create(&t, &attr, giveback_main, job) == 0;
		pthread_attr_destroy(&attr);
	}
	if (!threaded)
		(void)giveback_main(job);	/* here, then: later, not lost */
}

/* Gives back every ledger device of vm (NULL: of every domain) for
 * cause; with forget, only strikes them from the ledger. */
static void
give_back(const char *vm, const char *cause, bool forget)
{
	struct giveback_job *job;

	if ((job = calloc(1, sizeof(*job))) == NULL) {
		log_warn("[VMusb] %s %s: out of memory to give its devices "
		    "back", vm != NULL ? vm : "every domain", cause);
		return;
	}
	if ((job->n = ledger_take(vm, forget, job->e, LEDGER_MAX)) == 0) {
		free(job);
		return;
	}
	job->cause = cause;
	job->forget = forget;
	giveback_submit(job);
}

/*
 * The run step of a host client's "release": every ledger device of its
 * domain (of every domain, for a bare "release") that no give-back holds
 * already is given back now, in this command's thread, so that the
 * answer says what came of it.
 */
static void
release_run(struct command *cmd)
{
	struct giveback_job *job;
	char why[MAX_REASON + 1];

	if ((job = calloc(1, sizeof(*job))) == NULL) {
		command_done(cmd, OUT_FAILED, "out of memory");
		return;
	}
	job->cause = "released";
	job->n = ledger_take(cmd->req.vm[0] != '\0' ? cmd->req.vm : NULL, false,
	    job->e, LEDGER_MAX);
	cmd->given = giveback_run(job);
	if (cmd->given == job->n)
		command_done(cmd, OUT_OK, NULL);
	else {
		reasonf(why, sizeof(why), "%zu of %zu devices could not be "
		    "given back (the log says why)", job->n - cmd->given, job->n);
		command_done(cmd, OUT_FAILED, why);
	}
	free(job);
}

/* vm's guest can give nothing back any more (cause): its lease, which has
 * nothing left to guard, ends, and its devices are given back (forget:
 * struck out). The watcher never waits here for a give-back to run. */
static void
watch_lost(const char *vm, const char *cause, bool forget)
{
	if (lease_end(vm))
		log_info("[VMusb] lease of %s ended: it %s", vm, cause);
	give_back(vm, cause, forget);
}

/* What virsh event's line asks of us, if anything. */
static void
watch_event(const char *line, size_t len)
{
	char vm[MAX_VM_NAME + 1];
	enum vm_event ev;

	if (!event_parse(line, len, vm, &ev))
		return;
	switch (ev) {
	case VM_EVENT_CRASHED:
		watch_lost(vm, "crashed", false);
		break;
	case VM_EVENT_SUSPENDED:
		watch_lost(vm, "paused", false);
		break;
	case VM_EVENT_PMSUSPENDED:
		watch_lost(vm, "suspended", false);
		break;
	case VM_EVENT_STOPPED:
		watch_lost(vm, "stopped", true);
		break;
	case VM_EVENT_STARTED:
		assign_due(vm, NULL, "it started");
		break;
	default:
		break;
	}
}


/*
 * What libvirt says of each domain in the ledger, when we start and
 * whenever its events come back: events missed meanwhile are made up
 * for. A domain that crashed, paused or sleeps gets its devices back; one
 * that stopped or is gone, its entries struck out, and so are the
 * devices a domain's XML no longer holds.
 */

/* Does the domain's XML still hold the ledger's device e? By its ids,
 * and by its bus and device number where both know them. */
static bool
watch_holds(const struct hostdev *devs, int n, const struct ledger_entry *e)
{
	for (int i = 0; i < n; i++)
		if (device_ids_equal(&devs[i].device, &e->device) &&
		    (e->addr.bus == 0 || devs[i].bus < 0 ||
		    ((unsigned)devs[i].bus == e->addr.bus &&
		    (unsigned)devs[i].dev == e->addr.dev)))
			return true;
	return false;
}

/*
 * The ledger's devices of vm that its XML ("virsh dumpxml") no longer
 * holds are struck out: it was started anew, or someone detached them
 * by hand, while we did not watch. An XML we cannot get changes nothing.
 */
static void
watch_reconcile_xml(const char *vm)
{
	static struct hostdev devs[LEDGER_MAX];	/* the watcher's alone */
	/* An entry made since the XML was read may be missing from it. */
	long long asked = (long long)time(NULL);
	struct giveback_job *job;
	int n;

	/* If it cannot tell, nothing is struck. */
	if ((n = domain_hostdevs(vm, devs, LEDGER_MAX)) < 0 ||
	    (job = calloc(1, sizeof(*job))) == NULL)
		return;
	pthread_mutex_lock(&ledger.lock);
	for (size_t i = 0; i < ledger.n; i++)
		if (strcmp(ledger.slot[i].e.vm, vm) == 0 &&
		    !ledger.slot[i].giving_back &&
		    ledger.slot[i].e.since < asked &&
		    !watch_holds(devs, n, &ledger.slot[i].e))
			job->e[job->n++] = ledger.slot[i].e;
	pthread_mutex_unlock(&ledger.lock);
	job->cause = "holds it no more";
	job->forget = true;
	(void)giveback_run(job);
	free(job);
}

static void
watch_reconcile(void)
{
	static char vms[LEDGER_MAX][MAX_VM_NAME + 1];
	static const struct { const char *state, *cause; bool forget; } acts[] = {
		{ "crashed", "crashed", false },
		{ "paused", "paused", false },
		{ "pmsuspended", "suspended", false },
		{ "shut off", "stopped", true },
	};
	char state[DOMSTATE_MAX];
	size_t n = ledger_domains(vms, LEDGER_MAX);
	struct run r;

	for (size_t i = 0; i < n; i++) {
		if (!domain_state(vms[i], state, &r) && r.outcome == RUN_NORUN)
			return;
		if (r.outcome == RUN_FAILED && (strstr(r.reason,
		    "failed to get domain") != NULL || strstr(r.reason,
		    "Domain not found") != NULL)) {
			watch_lost(vms[i], "is gone", true);
			continue;
		}
		if (r.outcome != RUN_OK)
			continue;
		if (strncmp(state, "shut off", 8) != 0)
			watch_reconcile_xml(vms[i]);
		for (size_t a = 0; a < sizeof(acts) / sizeof(acts[0]); a++)
			if (strncmp(state, acts[a].state,
			    strlen(acts[a].state)) == 0)
				watch_lost(vms[i], acts[a].cause,
				    acts[a].forget);
	}
}

static struct {
	pthread_t	thread;
	bool		started;
	int		stop[2];	/* written to stop the watcher */
	pthread_mutex_t	lock;
	pthread_cond_t	first;		/* its first virsh was started, or
					 * failed to: our descriptors are
					 * settled, and we may say we are ready */
	bool		tried;
} watch = { .stop = { -1, -1 }, .lock = PTHREAD_MUTEX_INITIALIZER,
    .first = PTHREAD_COND_INITIALIZER };

static void
watch_tried(void)
{
	pthread_mutex_lock(&watch.lock);
	watch.tried = true;
	pthread_cond_signal(&watch.first);
	pthread_mutex_unlock(&watch.lock);
}

/*
 * Starts the watcher's virsh, its output into outfd: as run_spawn does,
 * and so that it dies with its parent thread, the watcher (or with us,
 * however we end), for it would otherwise wait for an event for ever.
 * 0, or an errno value.
 */
static int
watch_spawn(char *const argv[], int outfd, pid_t *pid)
{
	static const int dfl[] = { SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGUSR1,
	    SIGUSR2, SIGALRM };
	struct sigaction sa = { .sa_handler = SIG_DFL };
	pid_t parent = getpid();
	sigset_t none;
	int null;

	if ((null = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)
		return errno;
	sigemptyset(&none);
	if ((*pid = fork()) == -1) {
		close(null);
		return errno;
	}
	if (*pid == 0) {
		/* Only async-signal-safe calls from here on. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 ||
		    getppid() != parent)
			_exit(127);
		for (size_t i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
			(void)sigaction(dfl[i], &sa, NULL);
		if (setpgid(0, 0) == -1 || dup2(null, STDIN_FILENO) == -1 ||
		    dup2(outfd, STDOUT_FILENO) == -1 ||
		    dup2(outfd, STDERR_FILENO) == -1 ||
		    sigprocmask(SIG_SETMASK, &none, NULL) == -1)
			_exit(127);
		execve(argv[0], argv, virsh_env);
		_exit(127);
	}
	close(null);
	return 0;
}

/* Has pid ended within WATCH_SETTLE_MS (its output closed: it is about
 * to)? Then it is reaped, and *status set. */
static bool
watch_ended(pid_t pid, int *status)
{
	int pidfd = pidfd_open(pid, 0);
	pid_t got = 0;

	if (pidfd != -1) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };

		while (poll(&p, 1, WATCH_SETTLE_MS) == -1 && errno == EINTR)
			;
		close(pidfd);
		got = waitpid(pid, status, WNOHANG);
	} else	/* before Linux 5.3, or under valgrind */
		for (int i = 0; i < WATCH_SETTLE_MS / 10 && got == 0; i++) {
			struct pollfd none = { .fd = -1 };

			if ((got = waitpid(pid, status, WNOHANG)) == 0)
				(void)poll(&none, 1, 10);
		}
	return got == pid;
}

/* Waits ms (-1: for ever) for fd, or for the watcher to be stopped:
 * 1 when fd is readable, 0 at the end of the wait, -1 when stopped. */
static int
watch_wait(int fd, int ms)
{
	struct pollfd p[2] = {
		{ .fd = watch.stop[0], .events = POLLIN },
		{ .fd = fd, .events = POLLIN },
	};
	int n;

	while ((n = poll(p, fd == -1 ? 1 : 2, ms)) == -1 && errno == EINTR)
		;
	if (n == -1 || p[0].revents != 0)
		return -1;
	return n > 0 && p[1].revents != 0 ? 1 : 0;
}

/*
 * One run of "virsh event --event lifecycle --loop": its lines until it
 * ends, or we stop (-1). It says nothing until an event comes, so once
 * it has lived WATCH_SETTLE_MS it is taken as connected (back, if it was
 * lost): *up is set, and the ledger reconciled. why gets its last
 * "error:" line or how it ended.
 */
static int
watch_stream(bool *up, bool lost, char *why, size_t whysz)
{
	/* Lifecycle events only: other events print text that a domain's
	 * owner chooses (disk paths, metadata URIs), which could hold a
	 * line that looks like another domain's crash. */
	static const char *const args[] = { "event", "--event", "lifecycle",
	    "--loop", NULL };
	char prog[PATH_MAX], buf[4096], *argv[8];
	int pipefd[2], status = 0, e, rc = 0, ready;
	int64_t settle = now_ms() + WATCH_SETTLE_MS;
	struct run r;
	pid_t pid;

	memset(&r, 0, sizeof(r));
	*up = false;
	if (virsh_argv(prog, argv, args) == -1) {
		reasonf(why, whysz, "cannot run %s: not found in %s", prog,
		    SAFE_PATH);
		return 0;
	}
	if (pipe2(pipefd, O_CLOEXEC) == -1) {
		reasonf(why, whysz, "pipe: %s", strerror(errno));
		return 0;
	}
	e = watch_spawn(argv, pipefd[1], &pid);
	close(pipefd[1]);
	watch_tried();
	if (e != 0) {
		reasonf(why, whysz, "cannot run %s: %s", prog, strerror(e));
		close(pipefd[0]);
		return 0;
	}
	line_clear(&r.line);
	for (;;) {
		int64_t left = settle - now_ms();
		ssize_t n;

		ready = watch_wait(pipefd[0], *up ? -1 : left > 0 ? (int)left :
		    0);
		if (ready == -1) {
			rc = -1;
			break;
		}
		if (ready == 0 && !*up) {
			*up = true;
			log_info("[VMusb] %s libvirt's events", lost ?
			    "back to watching" : "watching");
			watch_reconcile();
			continue;
		}
		if ((n = read(pipefd[0], buf, sizeof(buf))) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			break;
		}
		for (const char *p = buf; n > 0; ) {
			size_t left_n = (size_t)n;

			if (line_feed(&r.line, &p, &left_n) == LINE_READY) {
				if (strncmp(r.line.buf, "error: ", 7) == 0)
					run_line(&r);
				else
					watch_event(r.line.buf, r.line.len);
			}
			n = (ssize_t)left_n;
		}
	}
	close(pipefd[0]);
	/* Its status, if it ended by itself; else its group (virsh, and
	 * whatever it started) is killed. */
	if (rc == -1 || !watch_ended(pid, &status)) {
		if (kill(-pid, SIGKILL) == -1)
			kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
	}
	if (r.error[0] != '\0')
		reasonf(why, whysz, "%s", r.error);
	else if (WIFEXITED(status))
		reasonf(why, whysz, "virsh event exited with status %d",
		    WEXITSTATUS(status));
	else
		reasonf(why, whysz, "virsh event killed by signal %d",
		    WTERMSIG(status));
	return rc;
}

/*
 * The watcher: runs virsh event for as long as we serve, again after a
 * wait when it ends (WATCH_BACKOFF_MS, doubled up to
 * WATCH_BACKOFF_MAX_MS while it keeps failing). That it is lost and back
 * is logged once each time.
 */
static void *
watch_main(void *arg)
{
	char why[MAX_REASON + 1], esc[MAX_REASON * 4 + 1];
	int backoff = WATCH_BACKOFF_MS;
	bool up, lost = false;

	(void)arg;
	for (;;) {
		int rc = watch_stream(&up, lost, why, sizeof(why));

		watch_tried();	/* also when it could not even start one */
		if (rc == -1)
			break;
		if (up)
			backoff = WATCH_BACKOFF_MS;
		escape_text(esc, sizeof(esc), why, strlen(why));
		if (up || !lost)
			log_warn("[VMusb] %s libvirt's events: %s; trying again, "
			    "every %d s at most", up ? "lost" : "cannot watch",
			    esc, WATCH_BACKOFF_MAX_MS / 1000);
		lost = true;
		if (watch_wait(-1, backoff) == -1)
			break;
		backoff = backoff * 2 > WATCH_BACKOFF_MAX_MS ?
		    WATCH_BACKOFF_MAX_MS : backoff * 2;
	}
	return NULL;
}

/* Starts the watcher; without it, the daemon serves all the same. */
static void
watch_start(void)
{
	pthread_attr_t attr;
	char eb[128];
	int e = EAGAIN;

	if (pipe2(watch.stop, O_CLOEXEC) == -1) {
		log_warn("[VMusb] cannot watch libvirt's events: pipe: %s",
		    errstr(errno, eb, sizeof(eb)));
		return;
	}
	if (pthread_attr_init(&attr) == 0) {
		if ((e = pthread_attr_setstacksize(&attr, THREAD_STACK)) == 0)
			e = pthread_create(&watch.thread, &attr, watch_main,
			    NULL);
		pthread_attr_destroy(&attr);
	}
	if (!(watch.started = e == 0)) {
		log_warn("[VMusb] cannot watch libvirt's events: %s",
		    errstr(e, eb, sizeof(eb)));
		return;
	}
	pthread_mutex_lock(&watch.lock);
	while (!watch.tried)
		pthread_cond_wait(&watch.first, &watch.lock);
	pthread_mutex_unlock(&watch.lock);
}

/* Stops the watcher and its virsh, and waits for them. */
static void
watch_stop(void)
{
	if (watch.started) {
		(void)!write(watch.stop[1], "", 1);
		pthread_join(watch.thread, NULL);
		watch.started = false;
	}
}

/* ------------------------------------------------------------------ */
/* Follow: devices that leave the host and come back                   */

/*
 * The kernel says when a USB device comes and goes: a uevent on a
 * NETLINK_KOBJECT_UEVENT socket, taken from the kernel alone (sender 0)
 * and parsed strictly (common.h). A ledger device that leaves is marked
 * waiting: libvirt still holds it at its old address. When a device
 * with its ids and serial number comes (at its port, if it was named by
 * one), the daemon
 * detaches the stale hostdev from the domain, at the address libvirt
 * holds, then attaches the device where it is now: two commands of its
 * own, one after the other, through the one door, in a give-back's
 * thread. For tests, --uevents PATH reads the same messages from a
 * datagram socket at PATH instead.
 */
static struct {
	int		fd;		/* -1: not listening */
	bool		netlink;	/* the kernel's, not a test's */
	int		stop[2];	/* a byte on stop[1] ends the thread */
	pthread_t	thread;
	bool		running;
	bool		overflow_said;
} follow = { .fd = -1, .stop = { -1, -1 } };

/* Whether e is still in the ledger as it was, and no give-back has
 * taken it since the kernel spoke. */
static bool
follow_pending(const struct ledger_entry *e)
{
	struct ledger_slot *s;
	bool pending;

	pthread_mutex_lock(&ledger.lock);
	s = ledger_find_locked(e->vm, &e->device);
	pending = s != NULL && s->e.since == e->since && !s->giving_back;
	pthread_mutex_unlock(&ledger.lock);
	return pending;
}

/*
 * The re-attach of job->e[0], which came back at job->port: attached
 * there, and kept in the ledger under the name it had, so that it is
 * followed again wherever it comes back next. Nothing is done for an
 * entry a give-back took meanwhile, nor attached to a domain that no
 * longer runs (it crashed or paused since: its give-back ran first).
 */
static void
follow_run(const struct giveback_job *job)
{
	const struct ledger_entry *e = &job->e[0];
	struct command gone = {
		.req = { .action = ACT_DETACH, .device = e->device },
		.who = &self_peer,
		.follow = true,
		.since = e->since,
		.placed = e->addr.bus != 0,
		.addr = e->addr,
	};
	struct command back = {
		.req = { .action = ACT_ATTACH, .device = e->device },
		.who = &self_peer,
		.follow = true,
		.named = true,
		.name = e->device,
	};
	char dev[DEVICE_TEXT];
	int switched;

	if (!follow_pending(e))
		return;
	memcpy(gone.req.vm, e->vm, sizeof(gone.req.vm));
	memcpy(gone.at, e->at, sizeof(gone.at));
	command_do(&gone);
	/* Attached again whatever came of it (libvirt may have let the
	 * stale one go), if the domain runs. */
	if (!domain_runs(e->vm))
		log_info("[VMusb] %s: device %s is back, but the domain does "
		    "not run: it stays with the host", e->vm,
		    device_text(&e->device, dev));
	else {
		memcpy(back.req.vm, e->vm, sizeof(back.req.vm));
		memcpy(back.req.device.port, job->port,
		    sizeof(back.req.device.port));
		command_do(&back);
	}
	/* Its detach switched nothing: whether the domain holds devices
	 * still is settled now. */
	pthread_mutex_lock(&ledger.lock);
	switched = switch_check_locked(e->vm, "replug", &e->device);
	pthread_mutex_unlock(&ledger.lock);
	switch_log(e->vm, switched, "replug");
}

/*
 * Assignments: "assign VM DEVICE" in the configuration file gives the
 * device to VM whenever VM runs. When VM starts, and when the device
 * comes while VM runs (and VM has none with its ids), the daemon
 * attaches it: a command of its own, through the one door, in a
 * give-back's thread. One that came is attached at its port, so that a
 * twin is not taken for it.
 */

/* Does vm run, as virsh domstate says? */
static bool
domain_runs(const char *vm)
{
	char state[DOMSTATE_MAX];
	struct run r;

	return domain_state(vm, state, &r) && strcmp(state, "running") == 0;
}

/* Does the ledger have a device of vm with d's ids? */
static bool
ledger_has(const char *vm, const struct usb_device *d)
{
	bool has = false;

	pthread_mutex_lock(&ledger.lock);
	for (size_t i = 0; i < ledger.n && !has; i++)
		has = strcmp(ledger.slot[i].e.vm, vm) == 0 &&
		    device_ids_equal(&ledger.slot[i].e.device, d);
	pthread_mutex_unlock(&ledger.lock);
	return has;
}

/* The attach of job->e[0]'s device to its domain, for an assign line. */
static void
assign_run(const struct giveback_job *job)
{
	struct command cmd = {
		.req = { .action = ACT_ATTACH, .device = job->e[0].device },
		.who = &self_peer,
		.assigned = job->cause,
	};

	memcpy(cmd.req.vm, job->e[0].vm, sizeof(cmd.req.vm));
	/* One that came is attached where it came, and kept in the ledger
	 * under the assignment's name: it is followed wherever it goes. */
	if (job->port[0] != '\0') {
		cmd.named = true;
		cmd.name = job->e[0].device;
		memcpy(cmd.req.device.port, job->port,
		    sizeof(cmd.req.device.port));
	}
	if (job->if_running && !domain_runs(cmd.req.vm))
		return;
	command_do(&cmd);
}

/* The assignments due: of vm, which started; or of the device ev that
 * came, whatever its domain. */
static void
assign_due(const char *vm, const struct uevent *ev, const char *cause)
{
	struct assignment due[MAX_ASSIGN];
	struct giveback_job *job;
	char dev[DEVICE_TEXT];
	size_t n = 0;

	pthread_mutex_lock(&allow.lock);
	for (size_t i = 0; i < allow.nassign; i++) {
		const struct assignment *a = &allow.assign[i];

		if (vm != NULL ? strcmp(a->vm, vm) == 0 :
		    device_ids_equal(&a->device, &ev->device) &&
		    (!device_has_port(&a->device) ||
		    strcmp(a->device.port, ev->port) == 0))
			due[n++] = *a;
	}
	pthread_mutex_unlock(&allow.lock);
	for (size_t i = 0; i < n; i++) {
		if (ev != NULL && ledger_has(due[i].vm, &due[i].device))
			continue;
		if ((job = calloc(1, sizeof(*job))) == NULL) {
			log_warn("[VMusb] %s: out of memory to attach its "
			    "assigned device %s, as %s", due[i].vm,
			    device_text(&due[i].device, dev), cause);
			continue;
		}
		job->assign = true;
		job->if_running = ev != NULL;
		job->cause = cause;
		job->n = 1;
		memcpy(job->e[0].vm, due[i].vm, sizeof(job->e[0].vm));
		job->e[0].device = due[i].device;
		if (ev != NULL)
			memcpy(job->port, ev->port, sizeof(job->port));
		giveback_submit(job);
	}
}

/* Whether the device that left, ev, is the one entry e saw. */
static bool
follow_was(const struct ledger_entry *e, const struct uevent *ev)
{
	if (e->addr.bus != 0)
		return e->addr.bus == ev->addr.bus && e->addr.dev == ev->addr.dev;
	return e->at[0] != '\0' && strcmp(e->at, ev->port) == 0;
}

/* How closely waiting entry e names a device that came, where several
 * might take it: by the port it came at, by its serial, by its ids. */
static int
follow_claim(const struct ledger_entry *e)
{
	return (device_has_port(&e->device) ? 2 : 0) + (e->serial != 0);
}

/* What the kernel said of a USB device, ev, for the ledger. */
static void
follow_event(const struct uevent *ev)
{
	struct ledger_entry left[LEDGER_MAX];
	struct ledger_slot *came = NULL;
	struct giveback_job *job = NULL;
	size_t nleft = 0;
	char dev[DEVICE_TEXT];
	/* The one that came: its serial, to tell it from its twin. */
	unsigned long long serial = ev->action == UEVENT_ADD ?
	    usb_serial(ev->port) : 0;

	pthread_mutex_lock(&ledger.lock);
	for (size_t i = 0; i < ledger.n; i++) {
		struct ledger_slot *s = &ledger.slot[i];
		const struct ledger_entry *e = &s->e;

		if (!device_ids_equal(&e->device, &ev->device) ||
		    s->giving_back)
			continue;
		if (ev->action == UEVENT_REMOVE && !s->waiting &&
		    follow_was(e, ev)) {
			s->waiting = true;
			left[nleft++] = *e;
		} else if (ev->action == UEVENT_ADD && s->waiting &&
		    (e->serial == 0 || e->serial == serial) &&
		    (!device_has_port(&e->device) ||
		    strcmp(e->device.port, ev->port) == 0) &&
		    (came == NULL || follow_claim(e) > follow_claim(&came->e)))
			came = s;	/* one device came: one entry's */
	}
	if (came != NULL && (job = calloc(1, sizeof(*job))) != NULL) {
		came->waiting = false;
		job->follow = true;
		job->n = 1;
		job->e[0] = came->e;
		memcpy(job->port, ev->port, sizeof(job->port));
	}
	pthread_mutex_unlock(&ledger.lock);
	for (size_t i = 0; i < nleft; i++)
		log_info("[VMusb] %s: device %s left the host (port %s): "
		    "waiting for it to come back", left[i].vm,
		    device_text(&left[i].device, dev), ev->port);
	if (came != NULL && job == NULL)
		log_warn("[VMusb] out of memory to follow device %s",
		    device_text(&ev->device, dev));
	if (job != NULL)
		giveback_submit(job);
	if (ev->action == UEVENT_ADD && came == NULL)
		assign_due(NULL, ev, "the device came");
}

/* One message from the socket: a uevent of the kernel's, or nothing. */
static void
follow_read(void)
{
	static char buf[UEVENT_MAX + 1];
	struct sockaddr_nl nl;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr m = {
		.msg_name = follow.netlink ? &nl : NULL,
		.msg_namelen = follow.netlink ? sizeof(nl) : 0,
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	struct uevent ev;
	ssize_t n = recvmsg(follow.fd, &m, MSG_DONTWAIT);

	if (n == -1) {
		/* The kernel dropped some for want of room: said once. */
		if (errno == ENOBUFS && !follow.overflow_said) {
			follow.overflow_said = true;
			log_warn("[VMusb] the kernel's uevents came faster than "
			    "we read them: some were lost");
		}
		return;
	}
	if ((m.msg_flags & MSG_TRUNC) || (follow.netlink &&
	    (m.msg_namelen != sizeof(nl) || nl.nl_pid != 0)))
		return;		/* too long, or not the kernel's */
	if (uevent_parse(buf, (size_t)n, &ev))
		follow_event(&ev);
}

static void *
follow_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = follow.fd, .events = POLLIN },
			{ .fd = follow.stop[0], .events = POLLIN },
		};

		if (poll(p, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("[VMusb] following devices: poll: %m");
			break;
		}
		if (p[1].revents != 0)
			break;
		if (p[0].revents != 0)
			follow_read();
	}
	return NULL;
}

/* The socket the uevents come on: the kernel's, or --uevents PATH's. */
static int
follow_open(char *why, size_t whysz)
{
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int fd, size = 1 << 20;
	char eb[128];

	if (opt.uevents == NULL) {
		if ((fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
		    NETLINK_KOBJECT_UEVENT)) == -1 ||
		    bind(fd, (struct sockaddr *)&nl, sizeof(nl)) == -1) {
			reasonf(why, whysz, "%s", errstr(errno, eb, sizeof(eb)));
			if (fd != -1)
				close(fd);
			return -1;
		}
		/* Room for a hub's worth at once; more only as root. */
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size,
		    sizeof(size)) == -1)
			(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size,
			    sizeof(size));
		follow.netlink = true;
		return fd;
	}
	if (fit(snprintf(un.sun_path, sizeof(un.sun_path), "%s", opt.uevents),
	    sizeof(un.sun_path)) < 0) {
		reasonf(why, whysz, "%s: path too long", opt.uevents);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&un, sizeof(un)) == -1) {
		reasonf(why, whysz, "%s: %s", opt.uevents, errstr(errno, eb,
		    sizeof(eb)));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

/* Listens for devices that come and go; without, says so and goes on. */
static void
follow_start(void)
{
	char why[MAX_REASON + 1];

	if ((follow.fd = follow_open(why, sizeof(why))) == -1) {
		log_warn("[VMusb] cannot hear the kernel's uevents (%s): a "
		    "device replugged while attached is not attached again",
		    why);
		return;
	}
	if (pipe2(follow.stop, O_CLOEXEC) == -1 ||
	    (errno = pthread_create(&follow.thread, NULL, follow_main,
	    NULL)) != 0) {
		log_warn("[VMusb] cannot follow devices: %m");
		fd_close(&follow.fd);
		fd_close(&follow.stop[0]);
		fd_close(&follow.stop[1]);
		return;
	}
	follow.running = true;
}

static void
follow_stop(void)
{
	if (!follow.running)
		return;
	(void)!write(follow.stop[1], "", 1);
	pthread_join(follow.thread, NULL);
	follow.running = false;
	fd_close(&follow.fd);
	fd_close(&follow.stop[0]);
	fd_close(&follow.stop[1]);
	if (opt.uevents != NULL)
		unlink(opt.uevents);
}

/* ------------------------------------------------------------------ */
/* Leases: a guest's heartbeat, and the clock that lets it lapse       */

/*
 * A guest that says "VM alive SECONDS" takes a lease: if no line comes
 * from it for that long, it is taken for hung, and its devices are given
 * back as if it had crashed. Any line of its renews the lease; "alive 0"
 * ends it, and so does its domain's crash, pause, sleep or stop (its
 * devices come back then anyway). A guest that never says "alive" has
 * none. The table's functions are pure, the clock given: lease_main runs
 * them against the monotonic clock.
 */
struct lease {
	char		vm[MAX_VM_NAME + 1];
	unsigned	seconds;
	int64_t		deadline;	/* now_ms() when it lapses */
};

struct lease_table {
	struct lease	slot[LEASE_MAX];
	size_t		n;
};

static struct lease *
lease_find(struct lease_table *t, const char *vm)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->slot[i].vm, vm) == 0)
			return &t->slot[i];
	return NULL;
}

static void
lease_drop(struct lease_table *t, struct lease *l)
{
	*l = t->slot[--t->n];
}

/* Sets vm's lease to seconds from now (0 ends it): what changed. */
static enum lease_change
lease_set(struct lease_table *t, const char *vm, unsigned seconds,
    int64_t now)
{
	struct lease *l = lease_find(t, vm);
	enum lease_change was;

	if (seconds == 0) {
		if (l == NULL)
			return LEASE_NONE;
		lease_drop(t, l);
		return LEASE_ENDED;
	}
	if (l != NULL)
		was = l->seconds == seconds ? LEASE_SAME : LEASE_CHANGED;
	else if (t->n == LEASE_MAX)
		return LEASE_FULL;
	else {
		l = &t->slot[t->n++];
		snprintf(l->vm, sizeof(l->vm), "%s", vm);
		was = LEASE_NEW;
	}
	l->seconds = seconds;
	l->deadline = now + (int64_t)seconds * 1000;
	return was;
}

/* A line came from vm's guest at now: its lease, if it has one, runs
 * its whole length anew. */
static void
lease_renew(struct lease_table *t, const char *vm, int64_t now)
{
	struct lease *l = lease_find(t, vm);

	if (l != NULL)
		l->deadline = now + (int64_t)l->seconds * 1000;
}

/* A lease that has lapsed by now is taken out of the table into *out:
 * true. Else false, and *next is when the first one will lapse
 * (INT64_MAX: none runs). */
static bool
lease_lapsed(struct lease_table *t, int64_t now, struct lease *out,
    int64_t *next)
{
	*next = INT64_MAX;
	for (size_t i = 0; i < t->n; i++) {
		if (t->slot[i].deadline <= now) {
			*out = t->slot[i];
			lease_drop(t, &t->slot[i]);
			return true;
		}
		if (t->slot[i].deadline < *next)
			*next = t->slot[i].deadline;
	}
	return false;
}

static struct {
	pthread_mutex_t		lock;
	pthread_cond_t		changed;	/* on the monotonic clock */
	struct lease_table	table;
	bool			stopping;
	bool			started;
	pthread_t		thread;
} leases = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The run step of "VM alive SECONDS". */
static void
lease_run(struct command *cmd)
{
	bool clock;

	pthread_mutex_lock(&leases.lock);
	if ((clock = leases.started)) {
		cmd->lease = lease_set(&leases.table, cmd->req.vm,
		    cmd->req.lease, now_ms());
		pthread_cond_signal(&leases.changed);
	}
	pthread_mutex_unlock(&leases.lock);
	if (!clock)
		command_done(cmd, OUT_FAILED, "no lease clock (the daemon "
		    "could not start it; its log says why)");
	else if (cmd->lease == LEASE_FULL)
		command_done(cmd, OUT_FAILED, "too many leases");
	else
		command_done(cmd, OUT_OK, NULL);
}

/* A line from the guest of vm. */
static void
lease_renew_of(const char *vm)
{
	pthread_mutex_lock(&leases.lock);
	lease_renew(&leases.table, vm, now_ms());
	pthread_mutex_unlock(&leases.lock);
}

/* vm's devices come back, or it stopped: its lease, if any, ends. Did
 * it have one? */
static bool
lease_end(const char *vm)
{
	enum lease_change was;

	pthread_mutex_lock(&leases.lock);
	was = lease_set(&leases.table, vm, 0, 0);
	pthread_mutex_unlock(&leases.lock);
	return was == LEASE_ENDED;
}

/* The lease clock: sleeps until the first lease lapses, or the table
 * changes, and gives back the devices of each domain whose lease has. */
static void *
lease_main(void *arg)
{
	struct lease lapsed;
	struct timespec until;
	int64_t next;

	(void)arg;
	pthread_mutex_lock(&leases.lock);
	while (!leases.stopping) {
		if (lease_lapsed(&leases.table, now_ms(), &lapsed, &next)) {
			pthread_mutex_unlock(&leases.lock);
			log_warn("[VMusb] the guest of %s said nothing for %u s: "
			    "its lease lapsed", lapsed.vm, lapsed.seconds);
			give_back(lapsed.vm, "lease lapsed", false);
			pthread_mutex_lock(&leases.lock);
		} else if (next == INT64_MAX)
			pthread_cond_wait(&leases.changed, &leases.lock);
		else {
			until.tv_sec = (time_t)(next / 1000);
			until.tv_nsec = (long)(next % 1000) * 1000000;
			(void)pthread_cond_timedwait(&leases.changed,
			    &leases.lock, &until);
		}
	}
	pthread_mutex_unlock(&leases.lock);
	return NULL;
}

/* Starts the lease clock; without it, "alive" fails and says why. */
static void
lease_start(void)
{
	pthread_condattr_t ca;
	pthread_attr_t attr;
	char eb[128];
	int e;

	if ((e = pthread_condattr_init(&ca)) == 0) {
		if ((e = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0)
			e = pthread_cond_init(&leases.changed, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (e == 0 && (e = pthread_attr_init(&attr)) == 0) {
		if ((e = pthread_attr_setstacksize(&attr, THREAD_STACK)) == 0)
			e = pthread_create(&leases.thread, &attr, lease_main,
			    NULL);
		pthread_attr_destroy(&attr);
	}
	if (e != 0) {
		log_warn("[VMusb] cannot keep guests' leases: %s",
		    errstr(e, eb, sizeof(eb)));
		return;
	}
	pthread_mutex_lock(&leases.lock);
	leases.started = true;
	pthread_mutex_unlock(&leases.lock);
}

/* Stops the lease clock and waits for it. */
static void
lease_stop(void)
{
	bool started;

	pthread_mutex_lock(&leases.lock);
	if ((started = leases.started)) {
		leases.stopping = true;
		leases.started = false;
		pthread_cond_signal(&leases.changed);
	}
	pthread_mutex_unlock(&leases.lock);
	if (started)
		pthread_join(leases.thread, NULL);
}

/* Status: what the ledger and the leases hold, for a host client. */

/*
 * The run step of "status": the ledger's entries and the leases, as the
 * lines of its answer (common.h's STATUS_LEDGER and STATUS_LEASE), in
 * cmd->report.
 */
static void
status_run(struct command *cmd)
{
	/* Room for every line: each is shorter than LEDGER_LINE + 8. */
	size_t size = (size_t)(LEDGER_MAX + LEASE_MAX + MAX_ASSIGN) *
	    (LEDGER_LINE + 8), len = 0;
	struct assignment assign[MAX_ASSIGN];
	size_t nassign;
	struct ledger_entry e;
	int64_t now = now_ms();
	char *p;
	int n;

	if ((p = cmd->report = malloc(size)) == NULL) {
		command_done(cmd, OUT_FAILED, "out of memory");
		return;
	}
	pthread_mutex_lock(&ledger.lock);
	for (size_t i = 0; i < ledger.n; i++) {
		e = ledger.slot[i].e;
		len += (size_t)snprintf(p + len, size - len, STATUS_LEDGER);
		if ((n = ledger_format(p + len, size - len, &e)) > 0)
			len += (size_t)n;
	}
	pthread_mutex_unlock(&ledger.lock);
	pthread_mutex_lock(&leases.lock);
	for (size_t i = 0; i < leases.table.n; i++) {
		const struct lease *l = &leases.table.slot[i];
		int64_t left = (l->deadline - now + 999) / 1000;

		if ((n = lease_format(p + len, size - len, l->vm, l->seconds,
		    left < 0 ? 0 : (unsigned)left)) > 0)
			len += (size_t)n;
	}
	pthread_mutex_unlock(&leases.lock);
	pthread_mutex_lock(&allow.lock);
	nassign = allow.nassign;
	memcpy(assign, allow.assign, nassign * sizeof(assign[0]));
	pthread_mutex_unlock(&allow.lock);
	for (size_t i = 0; i < nassign; i++)
		if ((n = assign_format(p + len, size - len, assign[i].vm,
		    &assign[i].device, ledger_has(assign[i].vm,
		    &assign[i].device))) > 0)
			len += (size_t)n;
	p[len] = '\0';
	command_done(cmd, OUT_OK, NULL);
}

/*
 * Which domains run, as libvirt says through a shell of ours: usbctl
 * asks this rather than start a virsh of its own. A name that is not
 * printable ASCII is left out (usbctl says which names we would refuse
 * in a command). Its lines are in cmd->report.
 */
static void
domains_run(struct command *cmd)
{
	const char *args[] = { "list", "--state-running", "--name", NULL };
	const size_t dl = strlen(DOMAINS_LINE);
	/* Each name and its newline, at least two bytes, gain dl. */
	const size_t size = LIST_READ_MAX + LIST_READ_MAX / 2 * dl + 1;
	char *out = malloc(LIST_READ_MAX + 1), *p, *line, *save = NULL;
	size_t len = 0, n;
	struct run r;

	cmd->report = p = malloc(size);
	if (out == NULL || p == NULL) {
		free(out);
		command_done(cmd, OUT_FAILED, "out of memory");
		return;
	}
	if (!virsh_query(args, out, LIST_READ_MAX + 1, &r)) {
		free(out);
		command_done(cmd, OUT_FAILED, "virsh not found");
		return;
	}
	if (r.outcome != RUN_OK || r.outlen >= LIST_READ_MAX) {
		free(out);
		command_done(cmd, OUT_FAILED, r.outcome != RUN_OK ? r.reason :
		    "too many domains");
		return;
	}
	out[r.outlen] = '\0';
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		const char *name;

		if ((n = line_trim(line, strlen(line), &name)) > 0 &&
		    n <= MAX_VM_NAME && is_text(name, n))
			len += (size_t)snprintf(p + len, size - len,
			    DOMAINS_LINE "%.*s\n", (int)n, name);
	}
	p[len] = '\0';
	free(out);
	command_done(cmd, OUT_OK, NULL);
}

/* ------------------------------------------------------------------ */
/* Answer: the log line and the reply                                  */

/* Every peer identity with a live connection has a budget here: there
 * are never more of them than connections. */
static struct {
	pthread_mutex_t	lock;
	struct budget	slot[MAX_CONNS];
} budgets = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Reports the lines of who that were not logged. */
static void
budget_report(const char *who, unsigned long unlogged)
{
	if (unlogged > 0)
		log_warn("[VMusb] %lu more invalid, refused or failed lines "
		    "from %s were not logged", unlogged, who);
}

/* The budget of p's identity, shared by its connections; NULL in the
 * one case of more identities than slots, which logs everything. */
static struct budget *
budget_get(const struct peer *p)
{
	struct budget *b = NULL, *free_slot = NULL, *slot;
	char who[sizeof(b->who)];
	int64_t now = now_ms();

	if (p->kind == PEER_GUEST)
		snprintf(who, sizeof(who), "the guest of %s", p->vm);
	else
		snprintf(who, sizeof(who), "uid %lu", (unsigned long)p->uid);
	pthread_mutex_lock(&budgets.lock);
	/* Its own, also one its connections left this minute: a peer that
	 * connects anew does not start a new budget. */
	for (size_t i = 0; i < MAX_CONNS && b == NULL; i++) {
		slot = &budgets.slot[i];
		if (strcmp(slot->who, who) == 0 && (slot->refs > 0 ||
		    now - slot->since < INVALID_WINDOW_MS))
			b = slot;
		else if (slot->refs == 0 && free_slot == NULL)
			free_slot = slot;
	}
	if (b == NULL && (b = free_slot) != NULL) {
		memset(b, 0, sizeof(*b));
		memcpy(b->who, who, sizeof(who));
		b->since = b->filled = now;
		b->tokens = GUEST_BURST * 1000;
	}
	if (b != NULL)
		b->refs++;
	pthread_mutex_unlock(&budgets.lock);
	return b;
}

/* May b's identity (a guest) have one more command run now? A token
 * bucket: GUEST_BURST at once, then GUEST_RATE a second, so that one
 * guest cannot start hundreds of virsh a second. When it bites, that is
 * logged once a minute. */
static bool
budget_take(struct budget *b)
{
	int64_t now = now_ms();
	bool ok, say;

	if (b == NULL)
		return true;
	pthread_mutex_lock(&budgets.lock);
	b->tokens += (now - b->filled) * GUEST_RATE;
	if (b->tokens > GUEST_BURST * 1000)
		b->tokens = GUEST_BURST * 1000;
	b->filled = now;
	if ((ok = b->tokens >= 1000))
		b->tokens -= 1000;
	if ((say = !ok && !b->rate_said))
		b->rate_said = true;
	pthread_mutex_unlock(&budgets.lock);
	if (say)
		log_warn("[VMusb] %s asks for more than %d commands a second: "
		    "the rest are refused", b->who, GUEST_RATE);
	return ok;
}

/* How many connections b's identity holds, this one included. */
static unsigned
budget_conns(struct budget *b)
{
	unsigned n;

	if (b == NULL)
		return 0;
	pthread_mutex_lock(&budgets.lock);
	n = b->refs;
	pthread_mutex_unlock(&budgets.lock);
	return n;
}

/* One of b's connections was closed at admission, for why: said once
 * for the peer, and counted (budget_put reports the count). */
static void
budget_closed(struct budget *b, const char *why)
{
	bool first;

	if (b == NULL) {
		log_warn("[VMusb] a connection closed: %s", why);
		return;
	}
	pthread_mutex_lock(&budgets.lock);
	first = b->closed++ == 0;
	pthread_mutex_unlock(&budgets.lock);
	if (first)
		log_warn("[VMusb] connections of %s are closed at once: %s",
		    b->who, why);
}

/* A connection of b's identity ended: the last one reports what was not
 * logged, and how many of its connections were closed at admission. */
static void
budget_put(struct budget *b)
{
	char who[sizeof(b->who)];
	unsigned long unlogged = 0, closed = 0;

	if (b == NULL)
		return;
	pthread_mutex_lock(&budgets.lock);
	if (--b->refs == 0) {
		unlogged = b->unlogged;
		closed = b->closed;
		b->unlogged = b->closed = 0;
		memcpy(who, b->who, sizeof(who));
	}
	pthread_mutex_unlock(&budgets.lock);
	budget_report(who, unlogged);
	if (closed > 1)
		log_warn("[VMusb] %lu connections of %s were closed at once",
		    closed, who);
}

/* May one more line that b's identity provoked be logged? INVALID_LOGS
 * a minute; past that they are counted, and the count reported when the
 * minute ends or the identity's last connection does. */
static bool
budget_may_log(struct budget *b)
{
	char who[sizeof(b->who)];
	unsigned long unlogged = 0;
	int64_t now = now_ms();
	bool may;

	if (b == NULL)
		return true;
	pthread_mutex_lock(&budgets.lock);
	if (now - b->since >= INVALID_WINDOW_MS) {
		unlogged = b->unlogged;
		memcpy(who, b->who, sizeof(who));
		b->since = now;
		b->logged = 0;
		b->unlogged = 0;
		b->rate_said = false;
	}
	if ((may = b->logged < INVALID_LOGS))
		b->logged++;
	else
		b->unlogged++;
	pthread_mutex_unlock(&budgets.lock);
	budget_report(who, unlogged);
	return may;
}

/* Sends the reply buf (len from a formatter: -1 if it did not fit) to
 * the command's source, if it has one that asked for replies. */
static void
answer_reply(const struct command *cmd, const char *buf, int len)
{
	if (cmd->from != NULL)
		conn_reply(cmd->from, buf, len);
}

/* May a line that a peer can provoke be logged? A guest must not drown
 * the log (and the real messages in it) by flooding its port. */
static bool
answer_may_log(const struct command *cmd)
{
	return cmd->from == NULL || budget_may_log(cmd->from->budget);
}

/*
 * What the source may be told of a refusal or a failure. A host client
 * hears the reason. A guest hears "not allowed" (the allow list and the
 * rules for guests, decided before anything of the host is looked at)
 * or "failed", and no more, and no sooner than GUEST_ANSWER_MS after it
 * asked: neither libvirt's words (another domain's name, the host's
 * ports) nor how long the answer took may tell it what the host has. A
 * device that is not at the port named fails as any other failure does.
 */
static const char *
answer_told(const struct command *cmd)
{
	int64_t left;

	if (cmd->who->kind != PEER_GUEST)
		return cmd->outcome == OUT_DENIED ? "not allowed" : cmd->why;
	if ((left = cmd->began + GUEST_ANSWER_MS - now_ms()) > 0)
		(void)poll(NULL, 0, (int)left);
	return cmd->outcome == OUT_DENIED ? "not allowed" : "failed";
}

/* A line that was not a command: its text escaped for the log (an
 * overlong one, its start), the parser's reason in the reply. */
static void
answer_invalid(const struct command *cmd)
{
	char esc[MAX_LINE * 4 + 1], buf[MAX_LINE + 1];
	const char *text = cmd->text;
	size_t len = cmd->textlen;

	if (cmd->total > MAX_LINE) {
		escape_text(esc, 64 * 4 + 1, text, len < 64 ? len : 64);
		if (answer_may_log(cmd))
			log_warn("[VMusb] invalid action: line too long (%zu "
			    "bytes, limit %d), skipped: %s... %s", cmd->total,
			    MAX_LINE, esc, cmd->who->tag);
	} else if (answer_may_log(cmd)) {
		len = line_trim(text, len, &text);
		escape_text(esc, sizeof(esc), text, len);
		log_warn("[VMusb] invalid action: %s %s", esc, cmd->who->tag);
	}
	answer_reply(cmd, buf, reply_format_invalid(buf, sizeof(buf),
	    cmd->why));
}

/* A give-back's log line; it has no source to reply to. */
static void
answer_give_back(struct command *cmd)
{
	char esc[MAX_REASON * 4 + 1], dev[DEVICE_TEXT];
	const char *vm = cmd->req.vm;

	device_text(&cmd->req.device, dev);
	if (cmd->outcome == OUT_OK && cmd->forget)
		log_info("[VMusb] %s %s: device %s is the host's again", vm,
		    cmd->cause, dev);
	else if (cmd->outcome == OUT_OK)
		log_info("[VMusb] %s %s: gave back device %s", vm, cmd->cause,
		    dev);
	else {
		escape_text(esc, sizeof(esc), cmd->why, strlen(cmd->why));
		log_warn("[VMusb] %s %s: giving back device %s failed: %s", vm,
		    cmd->cause, dev, esc);
	}
}

/* What came of the daemon's own commands for a device that came back
 * (see Follow). */
static void
answer_follow(struct command *cmd)
{
	char esc[MAX_REASON * 4 + 1], dev[DEVICE_TEXT];
	const char *vm = cmd->req.vm;
	bool ok = cmd->outcome == OUT_OK;

	device_text(&cmd->req.device, dev);
	escape_text(esc, sizeof(esc), cmd->why, strlen(cmd->why));
	if (cmd->req.action == ACT_DETACH && ok)
		log_info("[VMusb] %s: device %s was replugged: detached it "
		    "where libvirt held it", vm, dev);
	else if (cmd->req.action == ACT_DETACH)
		log_warn("[VMusb] %s: device %s was replugged: detaching it "
		    "where libvirt held it failed: %s", vm, dev, esc);
	else if (ok)
		log_info("[VMusb] %s: device %s is back: attached it again",
		    vm, dev);
	else
		log_warn("[VMusb] %s: device %s is back: attaching it again "
		    "failed: %s", vm, dev, esc);
}

/* What came of the daemon's attach for an assign line. */
static void
answer_assigned(struct command *cmd)
{
	char esc[MAX_REASON * 4 + 1], dev[DEVICE_TEXT];

	device_text(&cmd->req.device, dev);
	if (cmd->outcome == OUT_OK) {
		log_info("[VMusb] %s: attached its assigned device %s, as %s",
		    cmd->req.vm, dev, cmd->assigned);
		return;
	}
	escape_text(esc, sizeof(esc), cmd->why, strlen(cmd->why));
	log_warn("[VMusb] %s: attaching its assigned device %s, as %s, "
	    "failed: %s", cmd->req.vm, dev, cmd->assigned, esc);
}

/* What came of a release, a lease or a status, which name no device. A
 * status is not logged: it changes nothing. */
static void
answer_domain(struct command *cmd)
{
	char esc[MAX_REASON * 4 + 1], buf[MAX_LINE + 1], text[REQUEST_TEXT];
	const struct request *req = &cmd->req;
	const char *vm = req->vm[0] != '\0' ? req->vm : "every domain";
	const char *tag = cmd->who->tag;

	request_text(text, req);
	if (cmd->outcome == OUT_PENDING)
		command_done(cmd, OUT_FAILED, "nothing came of it");
	/* A status's lines come first: its "ok" ends them. */
	for (const char *p = cmd->outcome == OUT_OK ? cmd->report : NULL,
	    *nl; p != NULL && (nl = strchr(p, '\n')) != NULL; p = nl + 1)
		answer_reply(cmd, p, (int)(nl - p + 1));
	free(cmd->report);
	cmd->report = NULL;
	if (cmd->outcome == OUT_OK && req->action == ACT_RELEASE)
		log_info("[VMusb] release of %s: gave back %zu device%s %s", vm,
		    cmd->given, cmd->given == 1 ? "" : "s", tag);
	else if (cmd->outcome == OUT_OK && req->action == ACT_ALIVE &&
	    answer_may_log(cmd)) {
		/* A guest's timer renews its lease every few seconds: only
		 * a change is logged, within the guest's budget. */
		if (cmd->lease == LEASE_NEW || cmd->lease == LEASE_CHANGED)
			log_info("[VMusb] lease of %s: %u s: its devices are "
			    "given back if its guest says nothing for that long "
			    "%s", vm, req->lease, tag);
		else if (cmd->lease == LEASE_ENDED)
			log_info("[VMusb] lease of %s ended %s", vm, tag);
	} else if (cmd->outcome != OUT_OK && answer_may_log(cmd)) {
		escape_text(esc, sizeof(esc), cmd->why, strlen(cmd->why));
		log_warn("[VMusb] %s %s: %s %s", text, cmd->outcome ==
		    OUT_DENIED ? "denied" : "failed", esc, tag);
	}
	answer_reply(cmd, buf, reply_format(buf, sizeof(buf), req,
	    cmd->outcome == OUT_OK ? NULL : answer_told(cmd)));
}

/*
 * The one place that says what came of a command: the log line (its
 * format, escaping, and the budget of lines a peer can provoke) and the
 * reply (what the source may be told). A success is always logged, and
 * then the switch it made, if it made one.
 */
static void
answer(struct command *cmd)
{
	answer_command(cmd);
	switch_log(cmd->req.vm, cmd->switched, switch_reason(cmd));
}

static void
answer_command(struct command *cmd)
{
	char esc[MAX_REASON * 4 + 1], buf[MAX_LINE + 1], dev[DEVICE_TEXT];
	const struct request *req = &cmd->req;
	const char *act = action_name(req->action), *tag = cmd->who->tag;

	if (cmd->cause != NULL) {
		answer_give_back(cmd);
		return;
	}
	if (cmd->follow) {
		answer_follow(cmd);
		return;
	}
	if (cmd->assigned != NULL) {
		answer_assigned(cmd);
		return;
	}
	if (cmd->outcome != OUT_INVALID && (req->action == ACT_RELEASE ||
	    req->action == ACT_ALIVE || req->action == ACT_STATUS ||
	    req->action == ACT_DOMAINS || req->action == ACT_WATCH)) {
		answer_domain(cmd);
		return;
	}
	device_text(&req->device, dev);
	switch (cmd->outcome) {
	case OUT_OK:
		log_info("[VMusb] %s %sed device %s %s", req->vm, act, dev, tag);
		answer_reply(cmd, buf, reply_format(buf, sizeof(buf), req,
		    NULL));
		break;
	case OUT_PENDING:	/* a path that forgot to say: not done */
		command_done(cmd, OUT_FAILED, "nothing came of it");
		/* FALLTHROUGH */
	case OUT_FAILED:
		escape_text(esc, sizeof(esc), cmd->why, strlen(cmd->why));
		if (answer_may_log(cmd))
			log_warn("[VMusb] %s %sing device %s failed: %s %s",
			    req->vm, act, dev, esc, tag);
		answer_reply(cmd, buf, reply_format(buf, sizeof(buf), req,
		    answer_told(cmd)));
		break;
	case OUT_DENIED:
		if (answer_may_log(cmd))
			log_warn("[VMusb] %s %sing device %s denied: %s %s",
			    req->vm, act, dev, cmd->why, tag);
		answer_reply(cmd, buf, reply_format(buf, sizeof(buf), req,
		    answer_told(cmd)));
		break;
	case OUT_INVALID:
		answer_invalid(cmd);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* systemd's notifications: the sd_notify datagram protocol            */

static struct sockaddr_un notify_addr;
static socklen_t	notify_len;		/* 0: nobody to tell */

/* Reads NOTIFY_SOCKET: a path, or "@name" for the abstract namespace. */
static void
notify_init(void)
{
	const char *v = getenv("NOTIFY_SOCKET");
	size_t n;

	if (v == NULL || (v[0] != '/' && v[0] != '@'))
		return;
	if ((n = strlen(v)) >= sizeof(notify_addr.sun_path))
		errx(1, "NOTIFY_SOCKET is too long");
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, v, n);
	if (v[0] == '@')
		notify_addr.sun_path[0] = '\0';
	notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	unsetenv("NOTIFY_SOCKET");
}

static void
notify(const char *state)
{
	char eb[128];
	int fd;

	if (notify_len == 0)
		return;
	/* MSG_DONTWAIT: a receiver that never reads must not hold us. */
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT,
	    (struct sockaddr *)&notify_addr, notify_len) == -1)
		log_warn("[VMusb] cannot notify systemd: %s", errstr(errno, eb,
		    sizeof(eb)));
	if (fd != -1)
		close(fd);
}

/* ------------------------------------------------------------------ */
/* Start-up: options, the configuration file, main                    */

/* A whole option argument as a number in base, from min to max. */
static bool
opt_number(const char *arg, int base, long min, long max, long *n)
{
	char *end;

	errno = 0;
	*n = strtol(arg, &end, base);
	return errno == 0 && end != arg && *end == '\0' && *n >= min &&
	    *n <= max;
}

/* The number of a user or group named by number; option names it in the
 * error. */
static unsigned long
id_number(const char *option, const char *what, const char *name)
{
	long n;

	if (!opt_number(name, 10, 0, (long)(uid_t)-1 - 1, &n))
		errx(2, "%s: no such %s: %s", option, what, name);
	return (unsigned long)n;
}

/* A group's name or number. */
static gid_t
group_id(const char *name)
{
	struct group *gr;

	if ((gr = getgrnam(name)) != NULL)
		return gr->gr_gid;
	return (gid_t)id_number("--socket-group", "group", name);
}

/* A user's name or number. */
static uid_t
user_id(const char *name)
{
	struct passwd *pw;

	if ((pw = getpwnam(name)) != NULL)
		return pw->pw_uid;
	return (uid_t)id_number("--socket-user", "user", name);
}

static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: usbserver [--socket PATH] [--socket-mode MODE]\n"
	    "                 [--socket-user USER] [--socket-group GROUP]\n"
	    "                 [--allow VID:PID[@PORT]]...\n"
	    "                 [--config FILE] [--guest-attach] [--qemu-run-dir DIR]\n"
	    "                 [--sysfs DIR] [--uevents PATH]\n"
	    "                 [--xml-dir DIR] [--virsh PATH] [--connect URI]\n"
	    "                 [--timeout SECONDS] [--line-timeout SECONDS]\n"
	    "                 [--one-shot] [--ledger FILE]\n"
	    "                 [--debug] [--help] [--version]\n"
	    "\n"
	    "Reads \"VM attach|detach VID:PID[@PORT]\" lines on a Unix socket and runs\n"
	    "virsh attach-device or detach-device for them.\n"
	    "\n"
	    "  -s, --socket PATH          listen here (default %s)\n"
	    "  -m, --socket-mode MODE     the socket's mode, octal (default 0600)\n"
	    "  -u, --socket-user USER     the socket's owner, a name or number\n"
	    "                             (QEMU's user, for guests)\n"
	    "  -g, --socket-group GROUP   the socket's group, a name or number:\n"
	    "                             its members are host clients\n"
	    "  -a, --allow VID:PID        only listed devices may move (repeatable)\n"
	    "  -C, --config FILE          \"allow VID:PID\" lines\n"
	    "                             (default %s)\n"
	    "      --guest-attach         a guest may attach devices to its own\n"
	    "                             domain (it may always detach them)\n"
	    "      --qemu-run-dir DIR     libvirt's QEMU pid files (default %s)\n"
	    "      --sysfs DIR            the host's USB devices, for VID:PID@PORT\n"
	    "                             (default %s; for tests)\n"
	    "      --uevents PATH         read uevents from a datagram socket\n"
	    "                             made here, not the kernel (for tests)\n"
	    "  -x, --xml-dir DIR          write device-VID:PID[@PORT].xml here\n"
	    "                             (default %s)\n"
	    "  -V, --virsh PATH           the virsh to run; a bare name is looked\n"
	    "                             up on %s\n"
	    "                             (default: virsh)\n"
	    "  -c, --connect URI          passed to virsh as -c URI\n"
	    "  -t, --timeout SECONDS      one virsh command's deadline (default %d)\n"
	    "      --one-shot             run virsh once per command, not in the\n"
	    "                             shells kept running\n"
	    "      --line-timeout SECONDS a client that is not a guest may leave a\n"
	    "                             line unfinished this long (default %d)\n"
	    "      --ledger FILE          what is attached, kept across restarts\n"
	    "                             (default %s; \"\": not kept)\n"
	    "  -d, --debug                log to standard error instead of syslog\n"
	    "  -h, --help                 show this help\n"
	    "  -v, --version              show the version\n",
	    DEFAULT_SOCKET, DEFAULT_CONFIG, DEFAULT_QEMU_RUN_DIR, SYSFS_USB,
	    DEFAULT_XML_DIR, SAFE_PATH, VIRSH_TIMEOUT, LINE_TIMEOUT,
	    DEFAULT_LEDGER);
	exit(status);
}

/* An octal --socket-mode that does not open the socket to everyone. */
static mode_t
opt_mode(const char *arg)
{
	long n;

	if (!opt_number(arg, 8, 0, 0777, &n))
		errx(2, "--socket-mode: expected an octal mode such as 0660, "
		    "got '%s'", arg);
	if (n & S_IWOTH)
		errx(2, "--socket-mode %s: every local user could move devices; "
		    "refusing", arg);
	return (mode_t)n;
}

/* Seconds for the option name, from 1 to MAX_TIMEOUT. */
static int
opt_seconds(const char *name, const char *arg)
{
	long n;

	if (!opt_number(arg, 10, 1, MAX_TIMEOUT, &n))
		errx(2, "%s: expected seconds from 1 to %d, got '%s'", name,
		    MAX_TIMEOUT, arg);
	return (int)n;
}

static void
opt_allow(const char *arg)
{
	struct usb_device d;

	if (!device_parse(arg, strlen(arg), &d))
		errx(2, "--allow: expected VID:PID, four hex digits each, or "
		    "VID:PID@PORT, got '%s'", arg);
	if (!allow_add(allow.list, &allow.flags, &d))
		errx(1, "more than %d allowed devices", MAX_ALLOW);
	allow.count = allow.flags;
}

static const struct option longopts[] = {
	{ "socket",	required_argument,	NULL, 's' },
	{ "socket-mode", required_argument,	NULL, 'm' },
	{ "socket-group", required_argument,	NULL, 'g' },
	{ "socket-user", required_argument,	NULL, 'u' },
	{ "allow",	required_argument,	NULL, 'a' },
	{ "config",	required_argument,	NULL, 'C' },
	{ "guest-attach", no_argument,		NULL, 'G' },
	{ "one-shot",	no_argument,		NULL, 'O' },
	{ "qemu-run-dir", required_argument,	NULL, 'Q' },
	{ "sysfs",	required_argument,	NULL, 'S' },
	{ "xml-dir",	required_argument,	NULL, 'x' },
	{ "virsh",	required_argument,	NULL, 'V' },
	{ "connect",	required_argument,	NULL, 'c' },
	{ "timeout",	required_argument,	NULL, 't' },
	{ "line-timeout", required_argument,	NULL, 'L' },
	{ "ledger",	required_argument,	NULL, 'l' },
	{ "uevents",	required_argument,	NULL, 'E' },
	{ "debug",	no_argument,		NULL, 'd' },
	{ "help",	no_argument,		NULL, 'h' },
	{ "version",	no_argument,		NULL, 'v' },
	{ NULL,		0,			NULL, 0 },
};

static void
parse_options(int argc, char *argv[])
{
	const struct opt_word words[] = {
		{ 's', &opt.socket }, { 'Q', &opt.qemu_run_dir },
		{ 'S', &opt.sysfs }, { 'x', &opt.xml_dir },
		{ 'V', &opt.virsh }, { 'c', &opt.connect },
		{ 'l', &opt.ledger }, { 'E', &opt.uevents },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "s:m:g:u:a:C:x:V:c:t:dhv", longopts,
	    NULL)) != -1) {
		if (opt_word(words, sizeof(words) / sizeof(words[0]), ch, optarg))
			continue;
		switch (ch) {
		case 'm':
			opt.socket_mode = opt_mode(optarg);
			break;
		case 'g':
			opt.socket_gid = group_id(optarg);
			opt.socket_gid_given = true;
			break;
		case 'u':
			opt.socket_uid = user_id(optarg);
			break;
		case 'a':
			opt_allow(optarg);
			break;
		case 'C':
			opt.config = optarg;
			opt.config_given = true;
			break;
		case 'G':
			opt.guest_attach = true;
			break;
		case 'O':
			opt.one_shot = true;
			break;
		case 't':
			opt.timeout = opt_seconds("--timeout", optarg);
			break;
		case 'L':
			opt.line_timeout = opt_seconds("--line-timeout", optarg);
			break;
		case 'd':
			opt.debug = true;
			break;
		case 'h':
			usage(0);
		case 'v':
			printf("usbserver %s\n", USBSERVER_VERSION);
			exit(0);
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);
}

/*
 * The configuration file's "allow VID:PID[@PORT]" lines, after those of
 * list[0..*n). The file decides what a guest can take, so it must be
 * root's (or ours) and writable by nobody else; a line we do not
 * understand refuses the whole file, naming it and the line. A missing
 * file has none unless it was named. 0, or -1 with why.
 */
static int
config_read(const char *path, bool given, struct usb_device *list,
    size_t *n, struct assignment *assign, size_t *nassign, char *why,
    size_t whysz)
{
	static char buf[FILE_MAX + 1];
	const char *line, *what = "";
	char vm[MAX_VM_NAME + 1];
	struct usb_device device;
	struct stat st;
	size_t at = 0, llen, lineno = 0;
	ssize_t len;

	if ((len = file_read(path, buf, sizeof(buf), &st, true)) == -1 &&
	    errno != EFBIG) {
		if (errno == ENOENT && !given)
			return 0;
		reasonf(why, whysz, errno == EINVAL ? "%s is not a regular file" :
		    "%s: %m", path);
		return -1;
	}
	/* Whose it is first, then what it holds. */
	switch (file_trust(&st, S_IFREG)) {
	case TRUSTED:
		break;
	case TRUST_OWNER:
		reasonf(why, whysz, "%s belongs to uid %u, not root; refusing it",
		    path, (unsigned)st.st_uid);
		return -1;
	default:
		reasonf(why, whysz, "%s is writable by group or others; "
		    "refusing it", path);
		return -1;
	}
	if (len == -1) {
		reasonf(why, whysz, "%s: larger than %d bytes", path, FILE_MAX);
		return -1;
	}
	while (text_line(buf, (size_t)len, &at, &line, &llen)) {
		lineno++;
		if (llen > MAX_CONFIG_LINE) {
			reasonf(why, whysz, "%s:%zu: line too long (limit %d "
			    "bytes)", path, lineno, MAX_CONFIG_LINE);
			return -1;
		}
		switch (config_line(line, llen, &device, vm, &what)) {
		case CONFIG_NOTHING:
			break;
		case CONFIG_ASSIGN:
			if (*nassign == MAX_ASSIGN) {
				reasonf(why, whysz, "%s:%zu: more than %d assign "
				    "lines", path, lineno, MAX_ASSIGN);
				return -1;
			}
			memcpy(assign[*nassign].vm, vm, sizeof(vm));
			assign[(*nassign)++].device = device;
			break;
		case CONFIG_ALLOW:
			if (allow_add(list, n, &device))
				break;
			reasonf(why, whysz, "%s:%zu: more than %d allowed devices",
			    path, lineno, MAX_ALLOW);
			return -1;
		case CONFIG_ERROR:
			reasonf(why, whysz, "%s:%zu: %s", path, lineno, what);
			return -1;
		}
	}
	return 0;
}

/* The allow list anew: the flags' entries, then the file's. At start a
 * bad file stops us; on SIGHUP it leaves the list as it was. */
static int
config_load(bool starting)
{
	static struct usb_device list[MAX_ALLOW];
	static struct assignment assign[MAX_ASSIGN];
	char why[PATH_MAX + 128];
	size_t n, nassign = 0;

	pthread_mutex_lock(&allow.lock);
	n = allow.flags;
	memcpy(list, allow.list, n * sizeof(list[0]));
	pthread_mutex_unlock(&allow.lock);
	if (config_read(opt.config, opt.config_given, list, &n, assign,
	    &nassign, why, sizeof(why)) == -1) {
		if (starting)
			errx(1, "%s", why);
		log_warn("[VMusb] %s: the allow list stays as it was", why);
		return -1;
	}
	pthread_mutex_lock(&allow.lock);
	memcpy(allow.list, list, n * sizeof(list[0]));
	allow.count = n;
	memcpy(allow.assign, assign, nassign * sizeof(assign[0]));
	allow.nassign = nassign;
	pthread_mutex_unlock(&allow.lock);
	return 0;
}

/* The XML directory must not let anyone else swap our files. */
static void
check_xml_dir(const char *dir)
{
	struct stat st;

	if (dir[0] != '/')
		errx(1, "--xml-dir must be an absolute path: %s", dir);
	if (stat(dir, &st) == -1)
		err(1, "%s", dir);
	switch (file_trust(&st, S_IFDIR)) {
	case TRUSTED:
		break;
	case TRUST_TYPE:
		errx(1, "%s is not a directory", dir);
	case TRUST_OWNER:
		errx(1, "%s belongs to another user (uid %u); refusing to "
		    "write XML files there", dir, (unsigned)st.st_uid);
	case TRUST_WRITABLE:
		errx(1, "%s is writable by others and not sticky; refusing to "
		    "write XML files there", dir);
	}
}

/* Whatever we inherited stays ours: virsh must not get it. */
static void
cloexec_inherited(void)
{
	long max;

	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	if (errno != ENOSYS && errno != EINVAL)
		err(1, "close_range");
	/* Kernels before 5.11 */
	max = sysconf(_SC_OPEN_MAX);
	for (int fd = 3; fd < (max > 0 && max < INT_MAX ? (int)max : 1024); fd++)
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void
build_virsh_env(void)
{
	static char home[PATH_MAX + 8], uri[PATH_MAX + 32];
	const char *v;
	int n = 0;

	virsh_env[n++] = (char *)"PATH=" SAFE_PATH;
	virsh_env[n++] = (char *)"LC_ALL=C";
	if ((v = getenv("HOME")) != NULL &&
	    fit(snprintf(home, sizeof(home), "HOME=%s", v), sizeof(home)) >= 0)
		virsh_env[n++] = home;
	if ((v = getenv("LIBVIRT_DEFAULT_URI")) != NULL &&
	    fit(snprintf(uri, sizeof(uri), "LIBVIRT_DEFAULT_URI=%s", v),
	    sizeof(uri)) >= 0)
		virsh_env[n++] = uri;
	virsh_env[n] = NULL;
	/* A shell's readline: no terminal to draw for, no init file, no
	 * history written. */
	memcpy(shell_env, virsh_env, (size_t)n * sizeof(*virsh_env));
	shell_env[n++] = (char *)"TERM=dumb";
	shell_env[n++] = (char *)"INPUTRC=/dev/null";
	shell_env[n++] = (char *)"XDG_CACHE_HOME=/dev/null";
	shell_env[n] = NULL;
}

/*
 * SIGTERM and SIGINT stop us, SIGHUP reads the allow list again: all three
 * come through the descriptor it returns, blocked before any thread
 * starts, so every thread inherits the mask. Signals that would kill us
 * with nothing said, and our socket left behind, are ignored.
 */
static int
signals_init(void)
{
	static const int ignored[] = { SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM };
	sigset_t sigs;
	int fd;

	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		if (signal(ignored[i], SIG_IGN) == SIG_ERR)
			err(1, "signal");
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	if ((errno = pthread_sigmask(SIG_BLOCK, &sigs, NULL)) != 0)
		err(1, "pthread_sigmask");
	if ((fd = signalfd(-1, &sigs, SFD_CLOEXEC)) == -1)
		err(1, "signalfd");
	return fd;
}

int
main(int argc, char *argv[])
{
	static char inherited[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	char eb[128];
	int lfd, sigfd, wake[2], watchfd = -1;

	cloexec_inherited();
	parse_options(argc, argv);
	notify_init();
	config_load(true);
	check_xml_dir(opt.xml_dir);
	build_virsh_env();
	shells_init();
	umask(077);	/* whatever we create is ours alone */

	if (!opt.debug)
		openlog("usbserver", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	sigfd = signals_init();
	if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) == -1)
		err(1, "pipe");
	conn_wake = wake[1];

	lfd = listen_start(inherited, sizeof(inherited), &watchfd);
	/* Ours is removed on every way out we control, errx included. */
	if (atexit(listen_cleanup) != 0)
		errx(1, "atexit");
	admission_init();
	ledger_load();
	watch_start();
	follow_start();
	lease_start();
	listen_announce(inherited);
	admission_say();
	if (allow.count == 0)
		log_warn("[VMusb] no allow list: every host USB device may be "
		    "moved (see --allow and %s)", opt.config);
	if (access(opt.qemu_run_dir, R_OK | X_OK) == -1 && errno != ENOENT)
		log_warn("[VMusb] cannot read libvirt's pid files in %s (%s): "
		    "no peer can be known as a guest",
		    opt.qemu_run_dir, errstr(errno, eb, sizeof(eb)));
	notify("READY=1\nSTATUS=listening");
	lfd = serve(lfd, sigfd, wake[0], watchfd);

	notify("STOPPING=1");
	close(lfd);
	listen_cleanup();
	/* Nothing new runs from here: the watcher and the lease clock stop
	 * without waiting on virsh, and give-backs end their jobs. */
	path_close();
	follow_stop();
	watch_stop();
	lease_stop();
	giveback_wait();
	path_drain();
	shells_stop();
	log_info("[VMusb] stopped");
	return 0;
}
