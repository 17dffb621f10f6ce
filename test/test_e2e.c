/*
 * test_e2e.c: the guide's whole path with real parts. A libvirtd of this
 * test's own runs a QEMU domain whose serial port connects to usbserver's
 * socket; the guest (test/guest.S) writes detach lines on COM1; usbserver
 * runs the real virsh against the real domain, and usbctl finds the domain
 * by asking usbserver, whose virsh asks libvirt.
 *
 * libvirtd runs as root in mount and PID namespaces of the test's own: its
 * /etc/libvirt, /run and /var are directories of the test, so it neither
 * sees nor disturbs a libvirtd the machine already runs. The namespaces'
 * first process is a small init of ours that reaps what libvirtd leaves to
 * it; when libvirtd ends, or the test runner dies, the kernel kills what is
 * left in them, QEMU included.
 *
 * One libvirtd and one domain serve the suite (an unchecked fixture); each
 * test starts its own usbserver on the socket that the domain's serial
 * port keeps reconnecting to. usbserver and usbctl run in the namespaces
 * too ("check_usbserver enter"), as they run beside libvirtd on a host:
 * the pids in libvirt's pid files are the namespace's, and they are how
 * usbserver knows the QEMU on its socket for the domain's.
 *
 * Where a part cannot run (not root, packages missing) each test says SKIP
 * and why, and passes without asserting; USBSERVER_REQUIRE (CI) turns
 * that into a failure, and USBSERVER_E2E=skip skips on purpose.
 */
#define _GNU_SOURCE

#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests.h"
#include "../common.h"

#define E2E_VM		"usbserver-e2e"	/* the name guest.S writes */
#define E2E_DEVICE	"046d:c52b"	/* the device guest.S detaches */
#define E2E_PANIC_VM	"usbserver-panic"	/* guest.S's PANIC_TEST */
#define E2E_HELD	"1050:0407"	/* what the give-back tests attach */
#define LIBVIRTD	"/usr/sbin/libvirtd"
#define QEMU		"/usr/bin/qemu-system-x86_64"
#define PACKAGES	"libvirt-daemon libvirt-daemon-driver-qemu " \
			"libvirt-clients qemu-system-x86"
#define START_MS	60000	/* bound on libvirtd's start, and the domain's */
#define STOP_MS		30000	/* and on their ends */
#define LINE		1024

static struct {
	char	dir[64];	/* everything of the suite's, and the roots */
	char	uri[160];	/* virsh -c: our libvirtd's socket */
	char	sock[108];	/* usbserver's: the domain connects here */
	char	virsh[128];	/* found where usbserver finds it */
	pid_t	outer;		/* our process outside the namespaces */
	char	outer_pid[24];	/* as text, for "enter" */
	char	self[256];	/* this runner, for "enter" */
	int	outer_fd;	/* its pidfd */
	bool	domain;		/* created; destroyed at the end */
	bool	panic_domain;	/* the panic test's, until it destroys it */
	char	skip[256];	/* why the suite cannot run here */
	char	error[2048];	/* why it could not start */
} e2e = { .outer = -1, .outer_fd = -1 };

/* ------------------------------------------------------------------ */
/* Inside the namespaces: never returns                                */

static void __attribute__((noreturn))
die(const char *what)
{
	dprintf(STDERR_FILENO, "e2e: %s: %s\n", what, strerror(errno));
	_exit(125);
}

static int
exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Starts libvirtd, its signals unblocked: its pid. */
static pid_t
libvirtd_spawn(const sigset_t *set, char *const argv[], char *const envp[])
{
	pid_t daemon;

	if ((daemon = fork()) == -1)
		die("fork");
	if (daemon == 0) {
		sigprocmask(SIG_UNBLOCK, set, NULL);
		execve(argv[0], argv, envp);
		die("exec " LIBVIRTD);
	}
	return daemon;
}

/*
 * PID 1 of the new namespace: mounts its /proc, runs libvirtd, passes
 * SIGTERM on to it and reaps every process that ends up here (QEMU is
 * daemonized, so it does). SIGUSR1 restarts libvirtd, as an upgrade
 * does: the domains' QEMUs run on, and the new libvirtd takes them up.
 * Ends when libvirtd does otherwise; the kernel then kills what is left
 * in the namespace.
 */
static void __attribute__((noreturn))
init_main(const sigset_t *set, int alive)
{
	char notify[128];
	char *argv[] = { (char *)LIBVIRTD, (char *)"--config",
	    (char *)"/etc/libvirt/libvirtd.conf", NULL };
	char *envp[] = { (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	    (char *)"LC_ALL=C", (char *)"HOME=/root", notify, NULL };
	siginfo_t si;
	pid_t daemon, pid;
	int status;
	bool restart = false;

	struct pollfd p = { .fd = alive, .events = POLLIN };

	/* If outer died before prctl() took, only its pipe can tell. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
		die("prctl");
	if (poll(&p, 1, 0) != 0)
		_exit(125);
	close(alive);
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	    NULL) == -1)
		die("mount /proc");
	snprintf(notify, sizeof(notify), "NOTIFY_SOCKET=%s/notify", e2e.dir);
	daemon = libvirtd_spawn(set, argv, envp);
	for (;;) {
		if (sigwaitinfo(set, &si) == -1)
			continue;
		if (si.si_signo != SIGCHLD) {
			restart = si.si_signo == SIGUSR1;
			kill(daemon, SIGTERM);
			continue;
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid != daemon)
				continue;
			if (!restart)
				_exit(exit_code(status));
			restart = false;
			daemon = libvirtd_spawn(set, argv, envp);
		}
	}
}

static void
empty_dir(const char *target)
{
	if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	    "mode=0755,size=64k") == -1)
		die(target);
}

static void
bind_dir(const char *sub, const char *target)
{
	char src[128];

	snprintf(src, sizeof(src), "%s/%s", e2e.dir, sub);
	if (mount(src, target, NULL, MS_BIND, NULL) == -1)
		die(target);
}

/*
 * Forked from the runner, which it dies with: makes the namespaces, puts
 * the test's directories in place, starts the init and passes SIGTERM on.
 * Its exit status is libvirtd's.
 */
static void __attribute__((noreturn))
outer_main(int log, pid_t runner)
{
	sigset_t set;
	siginfo_t si;
	pid_t init;
	int status, alive[2];

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != runner)
		_exit(125);
	if (dup2(log, STDOUT_FILENO) == -1 || dup2(log, STDERR_FILENO) == -1)
		_exit(125);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);	/* restart libvirtd */
	sigprocmask(SIG_BLOCK, &set, NULL);

	if (unshare(CLONE_NEWNS | CLONE_NEWPID) == -1)
		die("unshare");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1)
		die("mount --make-rprivate /");
	bind_dir("etc", "/etc/libvirt");
	bind_dir("run", "/run");
	bind_dir("var", "/var");
	/* The QEMU driver wants a libvirt-qemu user and a kvm group. */
	bind_dir("passwd", "/etc/passwd");
	bind_dir("group", "/etc/group");
	/* An empty USB bus, on every host: libvirt must never find a real
	 * device of the host's (046d:c52b is a common receiver), and it names
	 * the one it looked for. */
	if (access("/sys/bus/usb/devices", F_OK) == 0)
		empty_dir("/sys/bus/usb/devices");
	else {
		empty_dir("/sys/bus");
		if (mkdir("/sys/bus/usb", 0755) == -1 ||
		    mkdir("/sys/bus/usb/devices", 0755) == -1)
			die("mkdir /sys/bus/usb/devices");
	}

	if (pipe2(alive, O_CLOEXEC) == -1)
		die("pipe");
	if ((init = fork()) == -1)
		die("fork");
	if (init == 0) {
		close(alive[1]);
		init_main(&set, alive[0]);
	}
	close(alive[0]);	/* alive[1] stays open while we live */
	for (;;) {
		if (sigwaitinfo(&set, &si) == -1)
			continue;
		if (si.si_signo != SIGCHLD)
			kill(init, si.si_signo == SIGUSR1 ? SIGUSR1 : SIGTERM);
		else if (waitpid(init, &status, WNOHANG) == init)
			_exit(exit_code(status));
	}
}

/*
 * "check_usbserver enter OUTER PROGRAM ARGS...": runs PROGRAM in the
 * mount namespace of process OUTER and in the PID namespace of its
 * children, libvirtd's. A PID namespace is entered by a child, so this
 * stays its parent: passes SIGTERM, SIGINT and SIGHUP on, and ends as it
 * does, with its status (128 + the signal if one killed it). It ends by
 * _exit(): its /proc is now the namespace's, where it is not, so a leak
 * checker at exit could not find its own threads.
 */
int
enter_main(int argc, char *argv[])
{
	char path[64];
	sigset_t set;
	siginfo_t si;
	pid_t child;
	int status, mnt, pidns;

	if (argc < 4)
		return 2;
	snprintf(path, sizeof(path), "/proc/%s/ns/mnt", argv[2]);
	mnt = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%s/ns/pid_for_children", argv[2]);
	pidns = open(path, O_RDONLY | O_CLOEXEC);
	if (mnt == -1 || pidns == -1 || setns(mnt, CLONE_NEWNS) == -1 ||
	    setns(pidns, CLONE_NEWPID) == -1)
		die("enter");
	close(mnt);
	close(pidns);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if ((child = fork()) == -1)
		die("fork");
	if (child == 0) {
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
			die("prctl");
		execvp(argv[3], argv + 3);
		die(argv[3]);
	}
	for (;;) {
		if (sigwaitinfo(&set, &si) == -1)
			continue;
		if (si.si_signo != SIGCHLD)
			kill(child, si.si_signo);
		else if (waitpid(child, &status, WNOHANG) == child)
			_exit(exit_code(status));
	}
}

/* ------------------------------------------------------------------ */
/* The suite's world, built by the runner                              */

static void e2e_fail(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Records why the suite could not start (its tests then fail with it). */
static void
e2e_fail(const char *fmt, ...)
{
	va_list ap;

	if (e2e.error[0] != '\0')
		return;		/* the first cause is the one to read */
	va_start(ap, fmt);
	vsnprintf(e2e.error, sizeof(e2e.error), fmt, ap);
	va_end(ap);
}

static bool
put_file(const char *sub, const void *buf, size_t len)
{
	char path[128];
	int fd;
	bool ok;

	snprintf(path, sizeof(path), "%s/%s", e2e.dir, sub);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) == -1) {
		e2e_fail("create %s: %s", path, strerror(errno));
		return false;
	}
	ok = write(fd, buf, len) == (ssize_t)len;
	if (close(fd) == -1 || !ok) {
		e2e_fail("write %s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

/* Copies the system's file (passwd, group) with extra lines appended. */
static bool
put_db(const char *sub, const char *from, const char *extra)
{
	char buf[65536];
	ssize_t n = slurp(from, buf, sizeof(buf) - 256);

	if (n < 0 || (size_t)n >= sizeof(buf) - 257) {
		e2e_fail("cannot read %s (or it is too long)", from);
		return false;
	}
	if (n > 0 && buf[n - 1] != '\n')
		buf[n++] = '\n';
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s", extra);
	return put_file(sub, buf, (size_t)n);
}

/* The last lines of one of our files, for a failure's message. */
static const char *
tail(const char *sub, char *buf, size_t size)
{
	char path[128];
	ssize_t n = -1;
	off_t end;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", e2e.dir, sub);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		if ((end = lseek(fd, 0, SEEK_END)) != -1 &&
		    lseek(fd, end > (off_t)size - 1 ? end - (off_t)size + 1 : 0,
		    SEEK_SET) != -1)
			n = read(fd, buf, size - 1);
		close(fd);
	}
	if (n <= 0)
		return "(nothing)";
	buf[n] = '\0';
	return buf;
}

static const char libvirtd_conf[] =
    "# The e2e test's own libvirtd: a local socket for root, no auth.\n"
    "unix_sock_rw_perms = \"0700\"\n"
    "unix_sock_ro_perms = \"0700\"\n"
    "auth_unix_rw = \"none\"\n"
    "auth_unix_ro = \"none\"\n"
    "log_outputs = \"3:stderr\"\n";

/* QEMU as root, no confinement, no cgroups, no virtlogd. */
static const char qemu_conf[] =
    "user = \"root\"\n"
    "group = \"root\"\n"
    "dynamic_ownership = 0\n"
    "security_driver = \"none\"\n"
    "stdio_handler = \"file\"\n"
    "cgroup_controllers = [ ]\n"
    "namespaces = [ ]\n";

/* 64 MiB, the guest's boot sector as its only disk, a USB controller, and
 * the guide's serial port: a Unix socket in connect mode, reconnecting. */
static const char domain_xml[] =
    "<domain type='qemu'>\n"
    "  <name>" E2E_VM "</name>\n"
    "  <memory unit='MiB'>64</memory>\n"
    "  <vcpu>1</vcpu>\n"
    "  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>\n"
    "  <devices>\n"
    "    <emulator>" QEMU "</emulator>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source file='%s/guest.img'/>\n"
    "      <target dev='hda' bus='ide'/>\n"
    "    </disk>\n"
    "    <controller type='usb' model='piix3-uhci'/>\n"
    "    <serial type='unix'>\n"
    "      <source mode='connect' path='%s'>\n"
    "        <reconnect enabled='yes' timeout='1'/>\n"
    "      </source>\n"
    "      <target port='0'/>\n"
    "    </serial>\n"
    "    <memballoon model='none'/>\n"
    "  </devices>\n"
    "</domain>\n";

/* The second guest: one line, then a panic through pvpanic, which
 * libvirt keeps as a crashed domain. Started paused, by the test. */
static const char panic_xml[] =
    "<domain type='qemu'>\n"
    "  <name>" E2E_PANIC_VM "</name>\n"
    "  <memory unit='MiB'>64</memory>\n"
    "  <vcpu>1</vcpu>\n"
    "  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>\n"
    "  <on_crash>preserve</on_crash>\n"
    "  <devices>\n"
    "    <emulator>" QEMU "</emulator>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source file='%s/guest-panic.img'/>\n"
    "      <target dev='hda' bus='ide'/>\n"
    "    </disk>\n"
    "    <controller type='usb' model='piix3-uhci'/>\n"
    "    <serial type='unix'>\n"
    "      <source mode='connect' path='%s'/>\n"
    "      <target port='0'/>\n"
    "    </serial>\n"
    "    <panic model='isa'/>\n"
    "    <memballoon model='none'/>\n"
    "  </devices>\n"
    "</domain>\n";

static bool
e2e_tree(void)
{
	static const char *dirs[] = { "etc", "run", "var", "var/lib",
	    "var/lib/libvirt", "var/log", "var/log/libvirt", "var/cache",
	    "var/cache/libvirt", "var/tmp" };
	char path[128], xml[sizeof(domain_xml) + 256], img[1024], groups[64];
	char pxml[sizeof(panic_xml) + 256], pimg[1024];
	ssize_t n, pn;
	int len, plen;

	/* The QEMU driver wants a libvirt-qemu user and group, and kvm. */
	snprintf(groups, sizeof(groups), "%s%s", getgrnam("libvirt-qemu") !=
	    NULL ? "" : "libvirt-qemu:x:64055:\n", getgrnam("kvm") != NULL ?
	    "" : "kvm:x:64056:\n");

	snprintf(e2e.dir, sizeof(e2e.dir), "%s/e2e.XXXXXX", scratch_dir());
	if (mkdtemp(e2e.dir) == NULL) {
		e2e.dir[0] = '\0';
		e2e_fail("mkdtemp: %s", strerror(errno));
		return false;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", e2e.dir, dirs[i]);
		if (mkdir(path, 0755) == -1) {
			e2e_fail("mkdir %s: %s", path, strerror(errno));
			return false;
		}
	}
	snprintf(path, sizeof(path), "%s/var/run", e2e.dir);
	if (symlink("/run", path) == -1) {
		e2e_fail("symlink %s: %s", path, strerror(errno));
		return false;
	}
	snprintf(e2e.sock, sizeof(e2e.sock), "%s/sock", e2e.dir);
	snprintf(e2e.uri, sizeof(e2e.uri),
	    "qemu:///system?socket=%s/run/libvirt/libvirt-sock", e2e.dir);
	len = snprintf(xml, sizeof(xml), domain_xml, e2e.dir, e2e.sock);
	plen = snprintf(pxml, sizeof(pxml), panic_xml, e2e.dir, e2e.sock);

	if ((n = slurp(GUEST_IMG, img, sizeof(img))) != 512) {
		e2e_fail("%s: not a 512-byte boot sector", GUEST_IMG);
		return false;
	}
	if ((pn = slurp(GUEST_PANIC_IMG, pimg, sizeof(pimg))) != 512) {
		e2e_fail("%s: not a 512-byte boot sector", GUEST_PANIC_IMG);
		return false;
	}
	return put_file("etc/libvirtd.conf", libvirtd_conf,
	    sizeof(libvirtd_conf) - 1) &&
	    put_file("etc/qemu.conf", qemu_conf, sizeof(qemu_conf) - 1) &&
	    put_db("passwd", "/etc/passwd", getpwnam("libvirt-qemu") != NULL ?
	    "" : "libvirt-qemu:x:64055:64055::/nonexistent:/usr/sbin/nologin\n") &&
	    put_db("group", "/etc/group", groups) &&
	    put_file("domain.xml", xml, (size_t)len) &&
	    put_file("guest.img", img, (size_t)n) &&
	    put_file("panic.xml", pxml, (size_t)plen) &&
	    put_file("guest-panic.img", pimg, (size_t)pn);
}

/* Starts the namespaces and libvirtd; returns once libvirtd says READY=1. */
static bool
libvirtd_start(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[128], msg[256], t[1024];
	int64_t start = now_ms(), left;
	int notify, log;
	ssize_t n;
	pid_t runner = getpid();
	bool ready = false;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", e2e.dir);
	notify = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (notify == -1 || bind(notify, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		e2e_fail("notify socket %s: %s", sa.sun_path, strerror(errno));
		if (notify != -1)
			close(notify);
		return false;
	}
	snprintf(path, sizeof(path), "%s/libvirtd.log", e2e.dir);
	if ((log = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1) {
		e2e_fail("create %s: %s", path, strerror(errno));
		close(notify);
		return false;
	}
	if ((e2e.outer = fork()) == 0)
		outer_main(log, runner);
	close(log);
	if (e2e.outer == -1 || (e2e.outer_fd = pidfd_open(e2e.outer, 0)) == -1) {
		e2e_fail("cannot start libvirtd: %s", strerror(errno));
		close(notify);
		return false;
	}
	snprintf(e2e.outer_pid, sizeof(e2e.outer_pid), "%ld", (long)e2e.outer);
	if ((n = readlink("/proc/self/exe", e2e.self, sizeof(e2e.self) - 1)) <= 0) {
		e2e_fail("readlink /proc/self/exe: %s", strerror(errno));
		close(notify);
		return false;
	}
	e2e.self[n] = '\0';

	while (!ready && (left = start + START_MS - now_ms()) > 0) {
		struct pollfd p[2] = { { .fd = notify, .events = POLLIN },
		    { .fd = e2e.outer_fd, .events = POLLIN } };

		if (poll(p, 2, (int)left) <= 0)
			continue;
		if (p[1].revents != 0) {
			e2e_fail("libvirtd ended before it was ready: %s",
			    tail("libvirtd.log", t, sizeof(t)));
			break;
		}
		if ((n = recv(notify, msg, sizeof(msg) - 1, 0)) > 0) {
			msg[n] = '\0';
			ready = strstr(msg, "READY=1") != NULL;
		}
	}
	close(notify);
	if (!ready) {
		e2e_fail("libvirtd was not ready within %d ms: %s", START_MS,
		    tail("libvirtd.log", t, sizeof(t)));
		return false;
	}
	fprintf(stderr, "e2e: libvirtd ready in %lld ms\n",
	    (long long)(now_ms() - start));
	return true;
}

static int
virsh(const char *verb, const char *arg, char *out, size_t size, int ms)
{
	char *argv[] = { e2e.virsh, (char *)"-c", e2e.uri, (char *)verb,
	    (char *)arg, NULL };

	return spawn_capture(argv, NULL, out, size, ms);
}

static bool
domain_start(void)
{
	char path[128], out[LINE], t[1024];
	int64_t start = now_ms();

	snprintf(path, sizeof(path), "%s/domain.xml", e2e.dir);
	if (virsh("create", path, out, sizeof(out), START_MS) != 0) {
		e2e_fail("virsh create: %s; QEMU's log: %s", out,
		    tail("var/log/libvirt/qemu/" E2E_VM ".log", t, sizeof(t)));
		return false;
	}
	e2e.domain = true;
	fprintf(stderr, "e2e: domain started in %lld ms\n",
	    (long long)(now_ms() - start));
	return true;
}

/* Finds name where usbserver looks for virsh: path, or false. */
static bool
on_safe_path(const char *name, char *path, size_t size)
{
	char dirs[] = SAFE_PATH;

	for (char *d = strtok(dirs, ":"); d != NULL; d = strtok(NULL, ":")) {
		snprintf(path, size, "%s/%s", d, name);
		if (access(path, X_OK) == 0)
			return true;
	}
	return false;
}

/* May we make mount and PID namespaces here? Root in a container may not
 * (no CAP_SYS_ADMIN): that is a reason to skip, not a failure. */
static bool
namespaces_work(char *why, size_t size)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(unshare(CLONE_NEWNS | CLONE_NEWPID) == -1 ? errno : 0);
	if (pid == -1 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		snprintf(why, size, "cannot make mount and PID namespaces: %s",
		    pid == -1 ? strerror(errno) : WIFEXITED(status) ?
		    strerror(WEXITSTATUS(status)) : "probe died");
		return false;
	}
	return true;
}

static void
e2e_up(void)
{
	const char *mode = getenv("USBSERVER_E2E");

	if (mode != NULL && strcmp(mode, "skip") == 0)
		snprintf(e2e.skip, sizeof(e2e.skip), "USBSERVER_E2E=skip");
	else if (geteuid() != 0)
		snprintf(e2e.skip, sizeof(e2e.skip), "needs root: libvirtd runs "
		    "as root, in namespaces of the test's own");
	else if (access(LIBVIRTD, X_OK) == -1 || access(QEMU, X_OK) == -1 ||
	    !on_safe_path("virsh", e2e.virsh, sizeof(e2e.virsh)))
		snprintf(e2e.skip, sizeof(e2e.skip), "needs libvirtd, QEMU and "
		    "virsh: apt-get install --no-install-recommends " PACKAGES);
	else if (access("/etc/libvirt", F_OK) == -1)
		snprintf(e2e.skip, sizeof(e2e.skip), "no /etc/libvirt to "
		    "mount ours on");
	else if (access(GUEST_IMG, R_OK) == -1)
		snprintf(e2e.skip, sizeof(e2e.skip), "no guest image %s (make "
		    "builds it with an x86 assembler): %s", GUEST_IMG,
		    strerror(errno));
	else
		(void)namespaces_work(e2e.skip, sizeof(e2e.skip));
	if (e2e.skip[0] == '\0' && e2e_tree() && libvirtd_start())
		domain_start();
}

/* Stops exactly what e2e_up started: the domain, then libvirtd (the
 * kernel ends anything left in its namespace), then removes the tree. */
static void
e2e_down(void)
{
	char out[LINE];
	struct pollfd p = { .fd = e2e.outer_fd, .events = POLLIN };

	if (e2e.domain && virsh("destroy", E2E_VM, out, sizeof(out), STOP_MS) != 0)
		fprintf(stderr, "e2e: virsh destroy: %s\n", out);
	if (e2e.outer > 0) {
		kill(e2e.outer, SIGTERM);
		if (p.fd == -1 || poll(&p, 1, STOP_MS) != 1) {
			fprintf(stderr, "e2e: libvirtd did not stop; killed\n");
			kill(e2e.outer, SIGKILL);
		}
		waitpid(e2e.outer, NULL, 0);
		if (e2e.outer_fd != -1)
			close(e2e.outer_fd);
	}
	if (e2e.dir[0] != '\0')
		remove_tree(e2e.dir);
}

/* ------------------------------------------------------------------ */
/* The tests                                                           */

/* Each test's usbserver: the world of the other live tests, on the
 * socket the domain connects to, with the real virsh. */
static void
e2e_setup(void)
{
	world_setup();
	snprintf(w.sock, sizeof(w.sock), "%s", e2e.sock);
	w.virsh[0] = '\0';
	w.qemu_run[0] = '\0';		/* libvirtd's own, in its /run */
	w.prefix[0] = e2e.self;
	w.prefix[1] = "enter";
	w.prefix[2] = e2e.outer_pid;
}

/* The daemon runs under "enter", whose SIGKILL would reach it only
 * later (PR_SET_PDEATHSIG): it is stopped, and waited for, first, so that
 * the next test's finds the socket free. */
static void
e2e_teardown(void)
{
	char out[LINE];

	if (w.daemon > 0)
		(void)daemon_stop();
	/* The panic test's domain, if it failed before it destroyed it: it
	 * must not connect to the next test's usbserver. */
	if (e2e.panic_domain) {
		(void)virsh("destroy", E2E_PANIC_VM, out, sizeof(out), STOP_MS);
		e2e.panic_domain = false;
	}
	world_teardown();
}

/* May this test run? Fails it if the suite could not start. */
static bool
e2e_runs(void)
{
	if (e2e.error[0] != '\0')
		ck_abort_msg("%s", e2e.error);
	return e2e.skip[0] == '\0' || !test_skips("e2e", e2e.skip);
}

static void
usbserver_start(void)
{
	daemon_start("--connect", e2e.uri, NULL);
}

/* Waits for QEMU to connect; the connection's number and QEMU's pid. */
static unsigned long
guest_connects(long *pid)
{
	char line[LINE], comm[64], path[64];
	unsigned long id;

	ck_assert_msg(log_wait("opened by pid", line, sizeof(line)),
	    "QEMU did not connect to usbserver within %d ms", WAIT_MS);
	ck_assert_int_eq(sscanf(line, "[VMusb] connection %lu opened by pid %ld",
	    &id, pid), 2);
	snprintf(path, sizeof(path), "/proc/%ld/root/proc/%ld/comm",
	    (long)e2e.outer, *pid);		/* the namespace's pid */
	ck_assert_int_gt(slurp(path, comm, sizeof(comm)), 0);
	ck_assert_msg(strncmp(comm, "qemu-system", 11) == 0,
	    "the peer is %s, not QEMU", comm);
	return id;
}

/* Starts usbserver and waits for the guest: false if the suite skips. */
static bool
guest_session(unsigned long *id, long *qemu)
{
	if (!e2e_runs())
		return false;
	usbserver_start();
	*id = guest_connects(qemu);
	return true;
}

/*
 * Reads the log until a line that is exactly want, from peer pid (0: a
 * line without a peer tag). Other lines are passed over: the first after a
 * (re)connect may be the tail of a line that QEMU cut while nobody
 * listened. Fails if the guest's connection closes, or another opens, or
 * a line starts with one of never (NULL-terminated, or NULL) first.
 */
static void
on_connection(unsigned long id, const char *want, long pid,
    const char *const *never)
{
	char closed[64], line[LINE];
	int64_t deadline = now_ms() + WAIT_MS;

	snprintf(closed, sizeof(closed), "[VMusb] connection %lu closed", id);
	for (;;) {
		int64_t left = deadline - now_ms();

		ck_assert_msg(left > 0 && reader_line(&w.log, line,
		    sizeof(line), (int)left) == 1, "no '%s' within %d ms", want,
		    WAIT_MS);
		ck_assert_msg(strstr(line, closed) == NULL,
		    "the guest's connection closed before '%s'", want);
		ck_assert_msg(strstr(line, "opened by") == NULL,
		    "the guest connected again before '%s': %s", want, line);
		for (size_t i = 0; never != NULL && never[i] != NULL; i++)
			ck_assert_msg(strncmp(line, never[i], strlen(never[i])) != 0,
			    "before '%s': %s", want, line);
		if (log_peer(line, want) == pid)
			return;
	}
}

static const char detach_refused[] = "[VMusb] " E2E_VM " detaching device "
    E2E_DEVICE " failed: device not found: host usb device vendor=0x046d "
    "product=0xc52b not found";

START_TEST(test_guest_detach_reaches_real_libvirt_and_its_answer_is_logged)
{
	char xml[LINE], path[160], asks[96];
	int64_t start, connected, asked;
	unsigned long id;
	long qemu;

	if (!e2e_runs())
		return;
	start = now_ms();
	usbserver_start();
	id = guest_connects(&qemu);
	connected = now_ms();
	snprintf(asks, sizeof(asks), "[VMusb] connection %lu: " E2E_VM
	    " detach " E2E_DEVICE, id);
	on_connection(id, asks, 0, NULL);
	asked = now_ms();
	/* libvirt looked for the device the guest named, and said so. */
	on_connection(id, detach_refused, qemu, NULL);
	fprintf(stderr, "e2e: QEMU connected %lld ms after usbserver started; "
	    "guest line to libvirt's answer: %lld ms\n",
	    (long long)(connected - start), (long long)(now_ms() - asked));

	snprintf(path, sizeof(path), "%s/device-" E2E_DEVICE ".xml", w.xmldir);
	ck_assert_int_gt(slurp(path, xml, sizeof(xml)), 0);
	ck_assert_str_eq(xml, "<hostdev mode='subsystem' type='usb'><source>"
	    "<vendor id='0x046d'/><product id='0xc52b'/></source></hostdev>\n");
}
END_TEST

START_TEST(test_usbctl_finds_the_domain_and_prints_libvirts_refusal)
{
	char out[LINE], line[LINE];
	char *argv[] = { e2e.self, (char *)"enter", e2e.outer_pid,
	    (char *)USBCTL_BIN, (char *)"--socket", w.sock, (char *)"--config",
	    w.config, (char *)"--connect", e2e.uri, (char *)E2E_DEVICE, NULL };
	int64_t start;
	int status;

	if (!e2e_runs())
		return;
	usbserver_start();
	start = now_ms();
	status = run(argv, NULL, out, sizeof(out));
	fprintf(stderr, "e2e: usbctl (\"domains\", request, virsh "
	    "attach-device, reply) took %lld ms\n", (long long)(now_ms() - start));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1,
	    "usbctl: status %#x: %s", status, out);
	/* Not an XML or usage error: libvirt parsed our file and looked for
	 * this very device on the host's USB bus. */
	ck_assert_msg(strstr(out, "Did not find USB device " E2E_DEVICE) != NULL,
	    "usbctl printed: %s", out);
	ck_assert_ptr_null(strstr(out, "XML"));
	ck_assert(log_wait("[VMusb] " E2E_VM " attaching device", line,
	    sizeof(line)));
	ck_assert_int_gt(log_peer(line, "[VMusb] " E2E_VM " attaching device "
	    E2E_DEVICE " failed: internal error: Did not find USB device "
	    E2E_DEVICE), 0);

	/* usbctl reads real libvirt XML: a USB controller, no USB device. */
	char *listing[] = { e2e.self, (char *)"enter", e2e.outer_pid,
	    (char *)USBCTL_BIN, (char *)"--config", w.config,
	    (char *)"--connect", e2e.uri, (char *)"--json", (char *)"status",
	    NULL };
	ck_assert_int_eq(run(listing, NULL, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "[{\"domain\":\"" E2E_VM "\",\"devices\":[]}]\n");
}
END_TEST

START_TEST(test_restarted_usbserver_gets_the_running_guests_lines)
{
	char out[LINE], before[64];
	long qemu, again;
	unsigned long id;
	int64_t stopped;

	if (!guest_session(&id, &qemu))
		return;
	on_connection(id, detach_refused, qemu, NULL);
	ck_assert_int_eq(virsh("domid", E2E_VM, before, sizeof(before), WAIT_MS), 0);

	ck_assert_int_eq(daemon_stop(), 0);
	stopped = now_ms();
	usbserver_start();
	id = guest_connects(&again);
	fprintf(stderr, "e2e: QEMU reconnected %lld ms after usbserver's "
	    "restart\n", (long long)(now_ms() - stopped));
	ck_assert_int_eq(again, qemu);		/* the same QEMU process */
	on_connection(id, detach_refused, qemu, NULL);
	ck_assert_int_eq(virsh("domid", E2E_VM, out, sizeof(out), WAIT_MS), 0);
	ck_assert_str_eq(out, before);		/* never restarted */
}
END_TEST

START_TEST(test_hostile_guest_line_is_refused_and_the_port_stays_up)
{
	char files[LINE];
	unsigned long id;
	long qemu;

	if (!guest_session(&id, &qemu))
		return;
	on_connection(id, "[VMusb] invalid action: " E2E_VM
	    " detach ../../etc/passwd", qemu, NULL);
	/* The next valid line comes on the same connection. */
	on_connection(id, detach_refused, qemu, NULL);
	dir_list(w.xmldir, files, sizeof(files));
	ck_assert_str_eq(files, "device-" E2E_DEVICE ".xml ");
}
END_TEST

START_TEST(test_guest_acts_only_on_its_own_domain_and_may_not_attach)
{
	static const char *const ran[] = { "[VMusb] other-vm detached",
	    "[VMusb] other-vm detaching device " E2E_DEVICE " failed",
	    "[VMusb] " E2E_VM " attached", "[VMusb] " E2E_VM " attaching "
	    "device " E2E_DEVICE " failed", NULL };
	unsigned long id;
	long qemu;

	if (!guest_session(&id, &qemu))
		return;
	/* The guest's cycle: detach, hostile, another domain's, attach;
	 * virsh runs for neither of the last two. */
	on_connection(id, "[VMusb] other-vm detaching device " E2E_DEVICE
	    " denied: a guest may only act on its own domain", qemu, ran);
	on_connection(id, "[VMusb] " E2E_VM " attaching device " E2E_DEVICE
	    " denied: a guest may not attach devices (see --guest-attach)", qemu,
	    ran);
	on_connection(id, detach_refused, qemu, ran);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Giving back, on libvirt's real events                               */

/*
 * A virsh that is the real one, but for moving a device, which no USB
 * device here could show: attach-device and detach-device succeed, and
 * write the verb and the domain to "moves" in the world's directory.
 * Events, states and XML are libvirt's own. As virsh's shell, it is the
 * real shell, each move it is given turned into an "echo" on its way.
 */
static void
e2e_mover(void)
{
	char path[sizeof(w.virsh)], text[2048];

	snprintf(path, sizeof(path), "%s/virsh", w.dir);
	snprintf(text, sizeof(text), "#!/bin/sh\n"
	    "move() {\n"
	    "	verb= dom=\n"
	    "	while [ $# -gt 0 ]; do\n"
	    "		case $1 in\n"
	    "		*-device) verb=$1 ;;\n"
	    "		--domain) dom=$2; shift ;;\n"
	    "		esac\n"
	    "		shift\n"
	    "	done\n"
	    "	echo \"$verb $dom\" >> '%s/moves'\n"
	    "}\n"
	    "case \"$*\" in\n"
	    "-q|'-c '*' -q')\n"
	    "	while IFS= read -r line; do\n"
	    "		case $line in\n"
	    "		attach-device*|detach-device*)\n"
	    "			eval \"move $line\"; echo echo ;;\n"
	    "		*) printf '%%s\\n' \"$line\" ;;\n"
	    "		esac\n"
	    "	done | '%s' \"$@\"\n"
	    "	exit ;;\n"
	    "esac\n"
	    "case \" $* \" in\n"
	    "*' attach-device '* | *' detach-device '*)\n"
	    "	move \"$@\"\n"
	    "	echo 'Device attached successfully'\n"
	    "	exit 0 ;;\n"
	    "esac\n"
	    "exec '%s' \"$@\"\n", w.dir, e2e.virsh, e2e.virsh);
	write_file(path, text, 0755);
	snprintf(w.virsh, sizeof(w.virsh), "%s", path);
}

/* Has the host's client attach E2E_HELD to vm, through usbserver. */
static void
e2e_attach_held(const char *vm)
{
	char line[LINE];
	struct client c;

	client_open(&c);
	snprintf(line, sizeof(line), "reply on\n%s attach " E2E_HELD "\n", vm);
	client_send(&c, line);
	snprintf(line, sizeof(line), "ok %s attach " E2E_HELD, vm);
	expect_reply(&c, line);
	client_close(&c);
}

/* The next log line holding needle, whole, in line; fails without. */
static void
e2e_log(const char *needle, char *line, size_t size)
{
	ck_assert_msg(log_wait(needle, line, size), "no log line with '%s' "
	    "within %d ms", needle, WAIT_MS);
}

/* usbserver with e2e_mover's virsh, once it watches libvirt's events. */
static void
e2e_watching(void)
{
	char line[LINE];

	e2e_mover();
	usbserver_start();
	e2e_log("[VMusb] watching libvirt's events", line, sizeof(line));
}

/*
 * A domain paused with "virsh suspend" gets back what usbserver attached
 * to it; libvirtd restarted while usbserver watches is lost and found
 * again, what it missed is made up for from the domain's real XML, and
 * its events are heard again after.
 */
START_TEST(test_a_pause_and_a_libvirtd_restart_seen_in_real_events)
{
	char out[LINE], line[LINE], moves[LINE], path[300];
	int64_t t;

	if (!e2e_runs())
		return;
	e2e_watching();
	e2e_attach_held(E2E_VM);
	t = now_ms();
	ck_assert_int_eq(virsh("suspend", E2E_VM, out, sizeof(out), WAIT_MS), 0);
	e2e_log("gave back device " E2E_HELD, line, sizeof(line));
	ck_assert_str_eq(line, "[VMusb] " E2E_VM " paused: gave back device "
	    E2E_HELD);
	fprintf(stderr, "e2e: virsh suspend to the device given back: %lld "
	    "ms\n", (long long)(now_ms() - t));
	ck_assert_int_eq(virsh("resume", E2E_VM, out, sizeof(out), WAIT_MS), 0);
	snprintf(path, sizeof(path), "%s/moves", w.dir);
	ck_assert_int_gt(slurp(path, moves, sizeof(moves)), 0);
	ck_assert_msg(strstr(moves, "attach-device " E2E_VM "\n"
	    "detach-device " E2E_VM "\n") != NULL, "%s", moves);

	/* libvirtd goes and comes back; the domain runs on, without the
	 * device usbserver attached meanwhile (its XML never had it). */
	e2e_attach_held(E2E_VM);
	t = now_ms();
	ck_assert_int_eq(kill(e2e.outer, SIGUSR1), 0);
	e2e_log("[VMusb] lost libvirt's events", line, sizeof(line));
	e2e_log("[VMusb] back to watching libvirt's events", line, sizeof(line));
	fprintf(stderr, "e2e: libvirtd restarted, watched again in %lld ms\n",
	    (long long)(now_ms() - t));
	e2e_log("holds it no more", line, sizeof(line));
	ck_assert_str_eq(line, "[VMusb] " E2E_VM " holds it no more: device "
	    E2E_HELD " is the host's again");
	e2e_attach_held(E2E_VM);
	ck_assert_int_eq(virsh("suspend", E2E_VM, out, sizeof(out), WAIT_MS), 0);
	e2e_log("gave back device " E2E_HELD, line, sizeof(line));
	ck_assert_str_eq(line, "[VMusb] " E2E_VM " paused: gave back device "
	    E2E_HELD);
	ck_assert_int_eq(virsh("resume", E2E_VM, out, sizeof(out), WAIT_MS), 0);
}
END_TEST

/*
 * A guest that panics (pvpanic, <on_crash>preserve</on_crash>) gets back
 * what usbserver attached to it: libvirt keeps the domain, crashed, and
 * its QEMU runs on holding the device, until usbserver detaches it. The
 * guest's one line took a lease, which the crash ends.
 */
START_TEST(test_a_guest_panic_gives_its_devices_back)
{
	char out[LINE], line[LINE], path[160];
	char *create[] = { e2e.virsh, (char *)"-c", e2e.uri, (char *)"create",
	    (char *)"--paused", path, NULL };
	struct client c;
	int64_t t;

	if (!e2e_runs())
		return;
	e2e_watching();
	snprintf(path, sizeof(path), "%s/panic.xml", e2e.dir);
	ck_assert_msg(spawn_capture(create, NULL, out, sizeof(out), START_MS) ==
	    0, "virsh create: %s", out);
	e2e.panic_domain = true;
	e2e_attach_held(E2E_PANIC_VM);
	ck_assert_int_eq(virsh("resume", E2E_PANIC_VM, out, sizeof(out),
	    WAIT_MS), 0);
	e2e_log("[VMusb] lease of " E2E_PANIC_VM ": 60 s", line, sizeof(line));
	ck_assert_int_gt(log_peer(line, "[VMusb] lease of " E2E_PANIC_VM ": 60 "
	    "s: its devices are given back if its guest says nothing for that "
	    "long"), 0);		/* from QEMU: the guest's line */
	t = now_ms();
	e2e_log("gave back device " E2E_HELD, line, sizeof(line));
	ck_assert_msg(strcmp(line, "[VMusb] " E2E_PANIC_VM " crashed: gave back "
	    "device " E2E_HELD) == 0 || strcmp(line, "[VMusb] " E2E_PANIC_VM
	    " paused: gave back device " E2E_HELD) == 0, "%s", line);
	fprintf(stderr, "e2e: the guest's line, then its panic a second later, "
	    "to the device given back: %lld ms\n", (long long)(now_ms() - t));
	ck_assert_int_eq(virsh("domstate", E2E_PANIC_VM, out, sizeof(out),
	    WAIT_MS), 0);
	ck_assert_msg(strncmp(out, "crashed", 7) == 0, "domstate: %s", out);
	/* Nothing is held, and the crash ended the lease. */
	client_open(&c);
	client_send(&c, "reply on\nstatus\n");
	expect_reply(&c, "ok status");
	client_close(&c);
	ck_assert_int_eq(virsh("destroy", E2E_PANIC_VM, out, sizeof(out),
	    STOP_MS), 0);
	e2e.panic_domain = false;
}
END_TEST

/* ------------------------------------------------------------------ */
/* make bench: the switch's times against this real libvirtd           */

#define BENCH_RUNS	100

struct figure {
	const char	*key, *what;
	int64_t		 us[BENCH_RUNS];
	double		 median, p99;	/* ms */
};

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
us_order(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void
figure_done(struct figure *f)
{
	qsort(f->us, BENCH_RUNS, sizeof(f->us[0]), us_order);
	f->median = (double)(f->us[(BENCH_RUNS - 1) / 2] +
	    f->us[BENCH_RUNS / 2]) / 2000.0;
	f->p99 = (double)f->us[(BENCH_RUNS * 99 + 99) / 100 - 1] / 1000.0;
}

/* Reads what the daemon logged so far, between timed runs: a log it
 * cannot write would stop it. */
static void
log_drain(void)
{
	char line[LINE];

	while (reader_line(&w.log, line, sizeof(line), 0) == 1)
		;
}

/* Times BENCH_RUNS runs of argv, each to end with exit status want. */
static void
figure_runs(struct figure *f, char *const argv[], int want)
{
	char out[LINE];

	for (int i = 0; i < BENCH_RUNS; i++) {
		int64_t t = now_us();
		int status = run(argv, NULL, out, sizeof(out));

		f->us[i] = now_us() - t;
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == want,
		    "%s: status %#x: %s", argv[0], status, out);
		log_drain();
	}
	figure_done(f);
}

/*
 * Side by side in one run, BENCH_RUNS of each, against the suite's
 * libvirtd and domain: virsh started for one command; a line to
 * usbserver to its answer (libvirt's refusal of a detach, through the
 * daemon's resident virsh); usbctl's attach round trip (it asks the
 * daemon which domains run, and waits for libvirt's answer); and the
 * guide's client (libvirt's Python bindings, then socat). Reported on
 * stderr, and as JSON in the file USBSERVER_BENCH names.
 */
START_TEST(test_bench_against_real_libvirtd)
{
	static struct figure f[] = {
		{ .key = "oneshot_virsh", .what = "virsh -c URI domstate, started each time" },
		{ .key = "line_to_answer", .what = "a line to usbserver to its answer" },
		{ .key = "usbctl_attach", .what = "usbctl attach, to its answer" },
		{ .key = "guide_client", .what = "the guide's client (Python, then socat)" },
	};
	char *oneshot[] = { e2e.virsh, (char *)"-c", e2e.uri,
	    (char *)"domstate", (char *)E2E_VM, NULL };
	char *usbctl[] = { (char *)USBCTL_BIN, (char *)"--socket", w.sock,
	    (char *)"--config", w.config, (char *)E2E_DEVICE, NULL };
	char *guide[] = { (char *)BENCH_PYTHON, (char *)SRC_DIR
	    "/test/bench/guide_client.py", e2e.uri, w.sock, (char *)E2E_DEVICE,
	    NULL };
	const char *json = getenv("USBSERVER_BENCH");
	char line[LINE];
	struct client c;
	FILE *out;

	if (!e2e_runs())
		return;
	usbserver_start();
	client_open(&c);
	client_send(&c, "reply on\n");
	/* Once each first: the daemon's shell starts, caches warm. */
	client_send(&c, E2E_VM " detach " E2E_DEVICE "\n");
	client_reply(&c, line, sizeof(line));

	figure_runs(&f[0], oneshot, 0);
	for (int i = 0; i < BENCH_RUNS; i++) {
		int64_t t = now_us();

		client_send(&c, E2E_VM " detach " E2E_DEVICE "\n");
		client_reply(&c, line, sizeof(line));
		f[1].us[i] = now_us() - t;
		ck_assert_msg(strncmp(line, "error " E2E_VM " detach " E2E_DEVICE
		    ": ", 24 + strlen(E2E_VM)) == 0, "%s", line);
		log_drain();
	}
	figure_done(&f[1]);
	client_close(&c);
	/* libvirt finds no such device on this host: usbctl says so, 1. */
	figure_runs(&f[2], usbctl, 1);
	figure_runs(&f[3], guide, 0);

	fprintf(stderr, "bench: against a real libvirtd, %d runs each\n"
	    "bench: %-46s %9s %9s\n", BENCH_RUNS, "", "median", "p99");
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		fprintf(stderr, "bench: %-46s %6.2f ms %6.2f ms\n", f[i].what,
		    f[i].median, f[i].p99);
	fprintf(stderr, "bench: the guide's client takes %.1f times usbctl's "
	    "median\n", f[3].median / f[2].median);
	if (json == NULL)
		return;
	ck_assert_ptr_nonnull(out = fopen(json, "we"));
	fprintf(out, "{\"runs\":%d", BENCH_RUNS);
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		fprintf(out, ",\"%s\":{\"median_ms\":%.3f,\"p99_ms\":%.3f}",
		    f[i].key, f[i].median, f[i].p99);
	fprintf(out, ",\"guide_over_usbctl\":%.2f}\n", f[3].median /
	    f[2].median);
	ck_assert_int_eq(fclose(out), 0);
}
END_TEST

Suite *
e2e_suite(void)
{
	Suite *s = suite_create("e2e");
	TCase *tc = tcase_create("real libvirtd and guest");

	tcase_add_unchecked_fixture(tc, e2e_up, e2e_down);
	tcase_add_checked_fixture(tc, e2e_setup, e2e_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_guest_detach_reaches_real_libvirt_and_its_answer_is_logged);
	tcase_add_test(tc, test_usbctl_finds_the_domain_and_prints_libvirts_refusal);
	tcase_add_test(tc, test_restarted_usbserver_gets_the_running_guests_lines);
	tcase_add_test(tc, test_hostile_guest_line_is_refused_and_the_port_stays_up);
	tcase_add_test(tc, test_guest_acts_only_on_its_own_domain_and_may_not_attach);
	tcase_add_test(tc, test_a_pause_and_a_libvirtd_restart_seen_in_real_events);
	tcase_add_test(tc, test_a_guest_panic_gives_its_devices_back);
	suite_add_tcase(s, tc);

	/* make bench's, never make check's: it measures, it asserts only
	 * that every run did what it should. */
	if (getenv("USBSERVER_BENCH") != NULL) {
		tc = tcase_create("bench");
		tcase_add_unchecked_fixture(tc, e2e_up, e2e_down);
		tcase_add_checked_fixture(tc, e2e_setup, e2e_teardown);
		tcase_set_timeout(tc, 300);
		tcase_add_test(tc, test_bench_against_real_libvirtd);
		suite_add_tcase(s, tc);
	}
	return s;
}
