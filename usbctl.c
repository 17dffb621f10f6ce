/*
 * usbctl: asks usbserver to attach, detach or toggle host USB devices for
 * the first running libvirt domain, or the one named, or to give back
 * what it attached; shows what is attached where, what usbserver would
 * give back by itself, and the host's USB devices.
 *
 *	usbctl [options] [attach|detach|toggle] [VID:PID[@PORT]...]
 *	usbctl [options] status | devices
 *	usbctl [options] [-d VM] release
 *	usbctl [options] watch
 *
 * watch stays: it runs the hooks of the configuration file at each
 * switch usbserver makes, and asks for a hotkey's action when its keys
 * are pressed on a keyboard (evdev).
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
 *	Watching: switch lines, hooks and hotkeys
 *	Start-up: options, toggle, main
 */
#define _GNU_SOURCE

#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/input.h>

#include <dirent.h>
#include <err.h>
#include <getopt.h>
#include <grp.h>
#include <stdarg.h>

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
#define MAX_HOOKS	8	/* hook lines */
#define HOOK_ARGS	8	/* words after a hook's program */
#define HOOK_TIMEOUT	10	/* seconds a hook may run, by default */
#define MAX_KEYBOARDS	8	/* keyboard lines */
#define MAX_HOTKEYS	8	/* hotkey lines */
#define CHORD_KEYS	4	/* keys of a hotkey, at most */
#define INPUT_DIR	"/dev/input"
#define INPUT_MAX	32	/* input devices read at once */
#define SWITCHES_HELD	32	/* switch lines waiting for their hooks */
#define RECONNECT_MS	250	/* the first wait to connect again, doubled */
#define RECONNECT_MAX_MS 5000	/* each time up to this */
#define KILL_GRACE_MS	1000	/* a hook past its deadline: SIGTERM, then
				 * this long before SIGKILL */

extern char **environ;

enum verb { ATTACH, DETACH, TOGGLE, STATUS, DEVICES, RELEASE, WATCH };

/* A hotkey's keys, by their evdev codes (linux/input-event-codes.h). */
struct chord {
	unsigned short	key[CHORD_KEYS];
	unsigned	n;
};

/* "hook guest|host PATH [ARGS...]": run at each switch that way. */
struct hook {
	bool	guest;
	char	words[MAX_CONFIG_LINE + 1];	/* PATH and ARGS, each ended
						 * by a NUL */
	size_t	nwords;
};

/* "keyboard VID:PID" or "keyboard NAME": an input device to read. */
struct keyboard {
	bool			by_ids;
	struct usb_device	ids;
	char			name[MAX_CONFIG_LINE + 1];	/* as the
						 * kernel names it */
};

/* "hotkey KEY[+KEY...] VERB": a chord, and what it asks. */
struct hotkey {
	struct chord	chord;
	enum verb	verb;		/* TOGGLE, ATTACH, DETACH or RELEASE */
};

static struct {
	const char	*socket;
	const char	*connect;
	const char	*domain;
	const char	*virsh;
	const char	*config;	/* --config: the only file read */
	const char	*sysfs;		/* the host's USB devices (tests: a tree) */
	const char	*input;		/* watch: the input devices' directory */
	bool		 json;
	bool		 socket_given;	/* on the command line: it wins */
} opt = {
	.socket = DEFAULT_SOCKET,
	.virsh = DEFAULT_VIRSH,
	.sysfs = SYSFS_USB,
	.input = INPUT_DIR,
};

/* What the configuration files give; the command line comes first. */
static struct {
	char			socket[108];
	char			connect[256];
	char			domain[MAX_VM_NAME + 1];
	struct usb_device	devices[MAX_DEVICES];
	int			ndevices;
	struct hook		hooks[MAX_HOOKS];
	int			nhooks;
	unsigned		hook_timeout;	/* seconds */
	struct keyboard		keyboards[MAX_KEYBOARDS];
	int			nkeyboards;
	struct hotkey		hotkeys[MAX_HOTKEYS];
	int			nhotkeys;
} conf = { .hook_timeout = HOOK_TIMEOUT };


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

/* The keys a hotkey may name, as linux/input-event-codes.h does. */
#define KEY_NAME(k)	{ #k, k }
static const struct { const char *name; unsigned short code; } key_names[] = {
	KEY_NAME(KEY_ESC), KEY_NAME(KEY_1), KEY_NAME(KEY_2), KEY_NAME(KEY_3),
	KEY_NAME(KEY_4), KEY_NAME(KEY_5), KEY_NAME(KEY_6), KEY_NAME(KEY_7),
	KEY_NAME(KEY_8), KEY_NAME(KEY_9), KEY_NAME(KEY_0), KEY_NAME(KEY_MINUS),
	KEY_NAME(KEY_EQUAL), KEY_NAME(KEY_BACKSPACE), KEY_NAME(KEY_TAB),
	KEY_NAME(KEY_Q), KEY_NAME(KEY_W), KEY_NAME(KEY_E), KEY_NAME(KEY_R),
	KEY_NAME(KEY_T), KEY_NAME(KEY_Y), KEY_NAME(KEY_U), KEY_NAME(KEY_I),
	KEY_NAME(KEY_O), KEY_NAME(KEY_P), KEY_NAME(KEY_LEFTBRACE),
	KEY_NAME(KEY_RIGHTBRACE), KEY_NAME(KEY_ENTER), KEY_NAME(KEY_LEFTCTRL),
	KEY_NAME(KEY_A), KEY_NAME(KEY_S), KEY_NAME(KEY_D), KEY_NAME(KEY_F),
	KEY_NAME(KEY_G), KEY_NAME(KEY_H), KEY_NAME(KEY_J), KEY_NAME(KEY_K),
	KEY_NAME(KEY_L), KEY_NAME(KEY_SEMICOLON), KEY_NAME(KEY_APOSTROPHE),
	KEY_NAME(KEY_GRAVE), KEY_NAME(KEY_LEFTSHIFT), KEY_NAME(KEY_BACKSLASH),
	KEY_NAME(KEY_Z), KEY_NAME(KEY_X), KEY_NAME(KEY_C), KEY_NAME(KEY_V),
	KEY_NAME(KEY_B), KEY_NAME(KEY_N), KEY_NAME(KEY_M), KEY_NAME(KEY_COMMA),
	KEY_NAME(KEY_DOT), KEY_NAME(KEY_SLASH), KEY_NAME(KEY_RIGHTSHIFT),
	KEY_NAME(KEY_KPASTERISK), KEY_NAME(KEY_LEFTALT), KEY_NAME(KEY_SPACE),
	KEY_NAME(KEY_CAPSLOCK), KEY_NAME(KEY_F1), KEY_NAME(KEY_F2),
	KEY_NAME(KEY_F3), KEY_NAME(KEY_F4), KEY_NAME(KEY_F5), KEY_NAME(KEY_F6),
	KEY_NAME(KEY_F7), KEY_NAME(KEY_F8), KEY_NAME(KEY_F9), KEY_NAME(KEY_F10),
	KEY_NAME(KEY_NUMLOCK), KEY_NAME(KEY_SCROLLLOCK), KEY_NAME(KEY_KP7),
	KEY_NAME(KEY_KP8), KEY_NAME(KEY_KP9), KEY_NAME(KEY_KPMINUS),
	KEY_NAME(KEY_KP4), KEY_NAME(KEY_KP5), KEY_NAME(KEY_KP6),
	KEY_NAME(KEY_KPPLUS), KEY_NAME(KEY_KP1), KEY_NAME(KEY_KP2),
	KEY_NAME(KEY_KP3), KEY_NAME(KEY_KP0), KEY_NAME(KEY_KPDOT),
	KEY_NAME(KEY_102ND), KEY_NAME(KEY_F11), KEY_NAME(KEY_F12),
	KEY_NAME(KEY_KPENTER), KEY_NAME(KEY_RIGHTCTRL), KEY_NAME(KEY_KPSLASH),
	KEY_NAME(KEY_SYSRQ), KEY_NAME(KEY_RIGHTALT), KEY_NAME(KEY_HOME),
	KEY_NAME(KEY_UP), KEY_NAME(KEY_PAGEUP), KEY_NAME(KEY_LEFT),
	KEY_NAME(KEY_RIGHT), KEY_NAME(KEY_END), KEY_NAME(KEY_DOWN),
	KEY_NAME(KEY_PAGEDOWN), KEY_NAME(KEY_INSERT), KEY_NAME(KEY_DELETE),
	KEY_NAME(KEY_MUTE), KEY_NAME(KEY_VOLUMEDOWN), KEY_NAME(KEY_VOLUMEUP),
	KEY_NAME(KEY_PAUSE), KEY_NAME(KEY_LEFTMETA), KEY_NAME(KEY_RIGHTMETA),
	KEY_NAME(KEY_COMPOSE), KEY_NAME(KEY_F13), KEY_NAME(KEY_F14),
	KEY_NAME(KEY_F15), KEY_NAME(KEY_F16), KEY_NAME(KEY_F17),
	KEY_NAME(KEY_F18), KEY_NAME(KEY_F19), KEY_NAME(KEY_F20),
	KEY_NAME(KEY_F21), KEY_NAME(KEY_F22), KEY_NAME(KEY_F23),
	KEY_NAME(KEY_F24), KEY_NAME(KEY_PRINT), KEY_NAME(KEY_PLAYPAUSE),
	KEY_NAME(KEY_NEXTSONG), KEY_NAME(KEY_PREVIOUSSONG),
	KEY_NAME(BTN_LEFT), KEY_NAME(BTN_RIGHT), KEY_NAME(BTN_MIDDLE),
	KEY_NAME(BTN_SIDE), KEY_NAME(BTN_EXTRA), KEY_NAME(BTN_FORWARD),
	KEY_NAME(BTN_BACK),
};

/* The code of the key name[0..len): a name of key_names, or a number of
 * 1 to KEY_MAX for any other; -1 if it is neither. */
static int
key_code(const char *name, size_t len)
{
	long long n;

	for (size_t i = 0; i < sizeof(key_names) / sizeof(key_names[0]); i++)
		if (field_is(name, len, key_names[i].name))
			return key_names[i].code;
	n = decimal_parse(name, len, KEY_MAX);
	return n >= 1 ? (int)n : -1;
}

/* "KEY[+KEY...]", each key once: false if it is not one. */
static bool
chord_parse(const char *s, size_t len, struct chord *c)
{
	size_t i = 0, j;
	int code;

	c->n = 0;
	while (i <= len) {
		for (j = i; j < len && s[j] != '+'; j++)
			;
		if (c->n == CHORD_KEYS || (code = key_code(s + i, j - i)) < 0)
			return false;
		for (unsigned k = 0; k < c->n; k++)
			if (c->key[k] == code)
				return false;
		c->key[c->n++] = (unsigned short)code;
		i = j + 1;
	}
	return true;
}

/* What a line of usbctl's configuration file says. */
enum ctl_key {
	CTL_NOTHING,		/* blank, or a comment */
	CTL_DOMAIN,		/* text */
	CTL_DEVICE,		/* device */
	CTL_SOCKET,		/* text */
	CTL_CONNECT,		/* text */
	CTL_HOOK,		/* hook */
	CTL_HOOK_TIMEOUT,	/* seconds */
	CTL_KEYBOARD,		/* keyboard */
	CTL_HOTKEY,		/* hotkey */
	CTL_ERROR,		/* why */
};

struct ctl_line {
	enum ctl_key		key;
	const char		*why;
	char			text[MAX_CONFIG_LINE + 1];
	struct usb_device	device;
	struct hook		hook;
	unsigned		seconds;
	struct keyboard		keyboard;
	struct hotkey		hotkey;
};

#define CTL_FIELDS	(3 + HOOK_ARGS + 1)	/* a hook's, and one more */

/* "hook guest|host PATH [ARGS...]": PATH absolute, every word printable
 * (no shell reads them: they are argv as they stand). */
static enum ctl_key
ctl_hook(const char **f, const size_t *flen, size_t nf, struct ctl_line *l)
{
	struct hook *h = &l->hook;
	size_t at = 0;

	if (nf < 3 || nf == CTL_FIELDS) {
		l->why = "expected 'hook guest|host PATH [ARGS...]', at most "
		    "8 arguments";
		return CTL_ERROR;
	}
	h->guest = field_is(f[1], flen[1], "guest");
	if (!h->guest && !field_is(f[1], flen[1], "host")) {
		l->why = "a hook runs at a switch to the 'guest' or the 'host'";
		return CTL_ERROR;
	}
	if (f[2][0] != '/') {
		l->why = "a hook's program is named by its absolute path";
		return CTL_ERROR;
	}
	for (size_t i = 2; i < nf; i++) {
		if (!is_text(f[i], flen[i])) {
			l->why = "a hook's words are printable ASCII";
			return CTL_ERROR;
		}
		memcpy(h->words + at, f[i], flen[i]);
		at += flen[i];
		h->words[at++] = '\0';
	}
	h->nwords = nf - 2;
	return CTL_HOOK;
}

/* "keyboard VID:PID" or "keyboard NAME", the name the rest of the line
 * (names have blanks: "AT Translated Set 2 keyboard"). */
static enum ctl_key
ctl_keyboard(const char *rest, size_t len, struct ctl_line *l)
{
	struct keyboard *k = &l->keyboard;

	len = line_trim(rest, len, &rest);
	if (len == 0 || !is_text(rest, len)) {
		l->why = "expected 'keyboard VID:PID' or 'keyboard NAME', the "
		    "name printable";
		return CTL_ERROR;
	}
	if ((k->by_ids = device_parse(rest, len, &k->ids)) &&
	    device_has_port(&k->ids)) {
		l->why = "a keyboard is named by its ids, or its name: not by "
		    "a port";
		return CTL_ERROR;
	}
	memcpy(k->name, rest, len);
	k->name[len] = '\0';
	return CTL_KEYBOARD;
}

/* "hotkey KEY[+KEY...] toggle|attach|detach|release". */
static enum ctl_key
ctl_hotkey(const char **f, const size_t *flen, size_t nf, struct ctl_line *l)
{
	static const struct { const char *word; enum verb verb; } verbs[] = {
		{ "toggle", TOGGLE }, { "attach", ATTACH },
		{ "detach", DETACH }, { "release", RELEASE },
	};

	if (nf != 3 || !chord_parse(f[1], flen[1], &l->hotkey.chord)) {
		l->why = "expected 'hotkey KEY[+KEY...] ACTION', 1 to 4 keys "
		    "named as in linux/input-event-codes.h (KEY_LEFTCTRL), "
		    "each once";
		return CTL_ERROR;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (field_is(f[2], flen[2], verbs[i].word)) {
			l->hotkey.verb = verbs[i].verb;
			return CTL_HOTKEY;
		}
	l->why = "a hotkey's action is toggle, attach, detach or release";
	return CTL_ERROR;
}

/* A text value: fits text, and is printable. */
static enum ctl_key
ctl_text(enum ctl_key key, const char *f, size_t len, size_t max,
    struct ctl_line *l)
{
	if (len >= max || !is_text(f, len)) {
		l->why = "value too long, or not printable";
		return CTL_ERROR;
	}
	memcpy(l->text, f, len);
	l->text[len] = '\0';
	return key;
}

/*
 * One line of a configuration file, any bytes: "domain VM", "device
 * VID:PID[@PORT]", "socket PATH", "connect URI"; for usbctl watch "hook
 * guest|host PATH [ARGS...]", "hook-timeout SECONDS", "keyboard
 * VID:PID|NAME", "hotkey KEY[+KEY...] ACTION"; '#' starts a comment.
 */
static enum ctl_key
ctl_line_parse(const char *line, size_t len, struct ctl_line *l)
{
	static const char *const keys[] = { "domain", "device", "socket",
	    "connect", "hook-timeout" };
	const char *f[CTL_FIELDS], *hash;
	size_t flen[CTL_FIELDS], nf;
	long long n;

	l->why = "expected domain, device, socket, connect, hook, "
	    "hook-timeout, keyboard or hotkey, with a valid value";
	if (len > MAX_CONFIG_LINE) {
		l->why = "line too long";
		return CTL_ERROR;
	}
	if (memchr(line, '\0', len) != NULL) {
		l->why = "a NUL byte";
		return CTL_ERROR;
	}
	if ((hash = memchr(line, '#', len)) != NULL)
		len = (size_t)(hash - line);
	if ((nf = split_fields(line, len, f, flen, CTL_FIELDS)) == 0)
		return CTL_NOTHING;
	if (field_is(f[0], flen[0], "hook"))
		return ctl_hook(f, flen, nf, l);
	if (field_is(f[0], flen[0], "hotkey"))
		return ctl_hotkey(f, flen, nf, l);
	if (field_is(f[0], flen[0], "keyboard"))
		return ctl_keyboard(f[0] + flen[0], len - (size_t)(f[0] +
		    flen[0] - line), l);
	if (nf != 2) {
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (field_is(f[0], flen[0], keys[i]))
				l->why = "expected 'KEY VALUE'";
		return CTL_ERROR;
	}
	if (field_is(f[0], flen[0], "device")) {
		if (device_parse(f[1], flen[1], &l->device))
			return CTL_DEVICE;
		l->why = "not a device (VID:PID)";
	} else if (field_is(f[0], flen[0], "domain") && flen[1] <= MAX_VM_NAME &&
	    vm_name_copy(l->text, f[1], flen[1]))
		return CTL_DOMAIN;
	else if (field_is(f[0], flen[0], "socket"))
		return ctl_text(CTL_SOCKET, f[1], flen[1],
		    sizeof(conf.socket), l);
	else if (field_is(f[0], flen[0], "connect"))
		return ctl_text(CTL_CONNECT, f[1], flen[1],
		    sizeof(conf.connect), l);
	else if (field_is(f[0], flen[0], "hook-timeout")) {
		if ((n = decimal_parse(f[1], flen[1], MAX_TIMEOUT)) >= 1) {
			l->seconds = (unsigned)n;
			return CTL_HOOK_TIMEOUT;
		}
		l->why = "a hook's timeout is 1 to 3600 seconds";
	}
	return CTL_ERROR;
}

/* What each list of a configuration file held: a later file's list
 * replaces an earlier one's, a list at a time. */
struct conf_lists {
	int	ndevices, nhooks, nkeyboards, nhotkeys;
};

/* The next of a list's max places, *n of them taken; exits when the file
 * has one too many. */
static int
conf_slot(const char *path, int lineno, int *n, int max, const char *what)
{
	if (*n == max)
		errx(2, "%s:%d: more than %d %s", path, lineno, max, what);
	return (*n)++;
}

/* One line of a configuration file, applied to conf; exits on a line it
 * does not understand, or one too many. */
static void
conf_line(const char *path, int lineno, const char *line, size_t len,
    struct conf_lists *n)
{
	static struct ctl_line l;

	switch (ctl_line_parse(line, len, &l)) {
	case CTL_NOTHING:
		break;
	case CTL_ERROR:
		errx(2, "%s:%d: %s", path, lineno, l.why);
	case CTL_DOMAIN:
		memcpy(conf.domain, l.text, strlen(l.text) + 1);
		break;
	case CTL_SOCKET:
		memcpy(conf.socket, l.text, strlen(l.text) + 1);
		break;
	case CTL_CONNECT:
		memcpy(conf.connect, l.text, strlen(l.text) + 1);
		break;
	case CTL_HOOK_TIMEOUT:
		conf.hook_timeout = l.seconds;
		break;
	case CTL_DEVICE:
		conf.devices[conf_slot(path, lineno, &n->ndevices, MAX_DEVICES,
		    "devices")] = l.device;
		break;
	case CTL_HOOK:
		conf.hooks[conf_slot(path, lineno, &n->nhooks, MAX_HOOKS,
		    "hooks")] = l.hook;
		break;
	case CTL_KEYBOARD:
		conf.keyboards[conf_slot(path, lineno, &n->nkeyboards,
		    MAX_KEYBOARDS, "keyboards")] = l.keyboard;
		break;
	case CTL_HOTKEY:
		conf.hotkeys[conf_slot(path, lineno, &n->nhotkeys, MAX_HOTKEYS,
		    "hotkeys")] = l.hotkey;
		break;
	}
}

/* Reads a configuration file. One that is not there is fine unless it
 * was named with --config; one we may not read is passed over. A later
 * file's list of devices replaces an earlier one's. */
static void
conf_load(const char *path, bool must)
{
	static char buf[FILE_MAX + 1];
	const char *line;
	struct conf_lists n = { 0 };
	struct stat st;
	size_t at = 0, llen;
	int lineno = 0;
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
		conf_line(path, ++lineno, line, llen, &n);
	if (n.ndevices > 0)
		conf.ndevices = n.ndevices;
	if (n.nhooks > 0)
		conf.nhooks = n.nhooks;
	if (n.nkeyboards > 0)
		conf.nkeyboards = n.nkeyboards;
	if (n.nhotkeys > 0)
		conf.nhotkeys = n.nhotkeys;
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
/* Watching: switch lines, hooks and hotkeys                           */

/*
 * "usbctl watch" stays. It asks usbserver for its switch lines ("watch
 * on") and runs the hooks of each switch, one at a time, each with a
 * deadline. It reads the keyboards' key events (evdev: no X11, no
 * Wayland) and, when a hotkey's chord is pressed, runs "usbctl ACTION"
 * as a child, as if the user had typed it. It never grabs a keyboard:
 * the desktop sees every key too. One poll loop serves it all: the
 * daemon's connection, the input devices and inotify on their
 * directory, a signalfd for children and the end, and the deadlines.
 */

/* The keys held down on one input device. */
struct keys_down {
	unsigned char	bit[KEY_MAX / 8 + 1];
	unsigned	n;
};

/* Is bit n set in bits, an evdev bitmap (EVIOCGBIT, EVIOCGKEY)? */
static bool
bit_is_set(const unsigned char *bits, unsigned n)
{
	return (bits[n / 8] & (1u << (n % 8))) != 0;
}

static bool
key_is_down(const struct keys_down *k, unsigned code)
{
	return code <= KEY_MAX && bit_is_set(k->bit, code);
}

/* Whether exactly c's keys are down, and code among them. */
static bool
chord_held(const struct chord *c, const struct keys_down *k, unsigned code)
{
	bool has = false;

	if (c->n != k->n)
		return false;
	for (unsigned j = 0; j < c->n; j++) {
		if (!key_is_down(k, c->key[j]))
			return false;
		has |= c->key[j] == code;
	}
	return has;
}

/*
 * One key event (value 1 down, 0 up, 2 a repeat) into k: the index of
 * the hotkey of h[0..nh) whose chord it completes (the key just went
 * down, and exactly the chord's keys are down), or -1. Holding the
 * chord fires it once; another key held with it, never.
 */
static int
chord_feed(struct keys_down *k, const struct hotkey *h, int nh, unsigned code,
    int value)
{
	unsigned char m;

	if (code > KEY_MAX || (value != 0 && value != 1))
		return -1;
	m = (unsigned char)(1u << (code % 8));
	if (value == 0) {
		if (k->bit[code / 8] & m) {
			k->bit[code / 8] &= (unsigned char)~m;
			k->n--;
		}
		return -1;
	}
	if (k->bit[code / 8] & m)
		return -1;
	k->bit[code / 8] |= m;
	k->n++;
	for (int i = 0; i < nh; i++)
		if (chord_held(&h[i].chord, k, code))
			return i;
	return -1;
}

/* The keys down as the kernel says, after it dropped events. */
static void
keys_sync(struct keys_down *k, const unsigned char *bits, size_t size)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->bit, bits, size < sizeof(k->bit) ? size : sizeof(k->bit));
	for (size_t i = 0; i < sizeof(k->bit); i++)
		k->n += (unsigned)__builtin_popcount(k->bit[i]);
}

/* An input device read for the hotkeys. */
struct input {
	int		fd;
	dev_t		rdev;			/* the device it is */
	char		node[NAME_MAX + 1];	/* "event3" */
	char		name[256];		/* as the kernel names it */
	bool		dropped;	/* events lost: wait for SYN_REPORT */
	struct keys_down keys;
};

static struct {
	const char	*cli[5];	/* -s, -c, -d, -V, -C as given: a
					 * hotkey's usbctl gets them too */
	int		signals;	/* SIGCHLD, SIGTERM, SIGINT */
	int		daemon;		/* -1: not connected */
	struct linebuf	lb;
	int64_t		reconnect_at;
	int		backoff;	/* ms */
	bool		away_said;
	int		inotify;	/* -1: no hotkeys */
	struct input	in[INPUT_MAX];
	int		nin;
	char		denied[PATH_MAX];	/* a device we may not read */
	bool		none_said;
	struct switch_event queue[SWITCHES_HELD];	/* waiting for hooks */
	int		qhead, qn;
	pid_t		hook;		/* running; 0: none */
	int		hook_next;	/* the next hook for queue[qhead] */
	int64_t		hook_deadline;
	bool		hook_termed;	/* SIGTERM sent; SIGKILL next */
	pid_t		action;		/* a hotkey's usbctl; 0: none */
} wt = { .signals = -1, .daemon = -1, .inotify = -1 };

static void __attribute__((format(printf, 1, 2)))
say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarnx(fmt, ap);
	va_end(ap);
}

/*
 * Starts argv with env as common.h's runs start virsh: in a process group
 * of its own (a deadline's signal reaches what it started), signals as
 * at boot, standard input /dev/null, output as ours. Our own program
 * (/proc/self/exe, whatever became of its file since) if self, else
 * argv[0]. Its pid, or -1, said.
 */
static pid_t
watch_spawn(char *const argv[], char *const env[], bool self)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t sa;
	pid_t pid = -1;
	int e;

	if ((e = posix_spawn_file_actions_init(&fa)) != 0)
		goto out;
	if ((e = posix_spawnattr_init(&sa)) == 0) {
		if ((e = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO,
		    "/dev/null", O_RDONLY, 0)) == 0 &&
		    (e = run_spawn_attrs(&sa, true)) == 0)
			e = posix_spawn(&pid, self ? "/proc/self/exe" : argv[0],
			    &fa, &sa, argv, env);
		posix_spawnattr_destroy(&sa);
	}
	posix_spawn_file_actions_destroy(&fa);
out:
	if (e == 0)
		return pid;
	errno = e;
	warn("%s", argv[0]);
	return -1;
}

/* How a child ended, for the log. */
static const char *
exit_text(int status, char *buf, size_t size)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		snprintf(buf, size, "exit 127: it could not be run (not there, "
		    "or not executable by this user)");
	else if (WIFEXITED(status))
		snprintf(buf, size, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, size, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, size, "status %d", status);
	return buf;
}

/* --- Hooks ---------------------------------------------------------- */

/* Runs hook h for the switch ev: its words as argv, our environment
 * and USBCTL_DOMAIN, USBCTL_SWITCH (guest or host), USBCTL_REASON and
 * USBCTL_DEVICES. */
static void
hook_start(const struct hook *h, const struct switch_event *ev)
{
	static const char *const ours[] = { "USBCTL_DOMAIN=", "USBCTL_SWITCH=",
	    "USBCTL_REASON=", "USBCTL_DEVICES=" };
	char *argv[HOOK_ARGS + 2], vars[4][MAX_VM_NAME + 32], dev[DEVICE_TEXT];
	char **env;
	size_t n = 0, k = 0;
	const char *p = h->words;

	for (size_t i = 0; i < h->nwords; i++, p += strlen(p) + 1)
		argv[i] = (char *)p;
	argv[h->nwords] = NULL;
	snprintf(vars[0], sizeof(vars[0]), "%s%s", ours[0], ev->vm);
	snprintf(vars[1], sizeof(vars[1]), "%s%s", ours[1], ev->guest ?
	    "guest" : "host");
	snprintf(vars[2], sizeof(vars[2]), "%s%s", ours[2], ev->reason);
	snprintf(vars[3], sizeof(vars[3]), "%s%s", ours[3],
	    device_text(&ev->device, dev));
	while (environ[n] != NULL)
		n++;
	if ((env = calloc(n + 5, sizeof(*env))) == NULL) {
		warn("hook %s", argv[0]);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		size_t j;

		for (j = 0; j < 4 && strncmp(environ[i], ours[j],
		    strlen(ours[j])) != 0; j++)
			;
		if (j == 4)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < 4; j++)
		env[k++] = vars[j];
	say("%s switched to the %s (%s): running %s", ev->vm, ev->guest ?
	    "guest" : "host", ev->reason, argv[0]);
	if ((wt.hook = watch_spawn(argv, env, false)) == -1)
		wt.hook = 0;
	wt.hook_deadline = now_ms() + (int64_t)conf.hook_timeout * 1000;
	wt.hook_termed = false;
	free(env);
}

/* The next hook to run, if none runs: the queue's first switch's next
 * hook of its way; a switch with none left leaves the queue. */
static void
hook_next(void)
{
	while (wt.hook == 0 && wt.qn > 0) {
		const struct switch_event *ev = &wt.queue[wt.qhead];
		int i = wt.hook_next;

		while (i < conf.nhooks && conf.hooks[i].guest != ev->guest)
			i++;
		if (i == conf.nhooks) {
			wt.qhead = (wt.qhead + 1) % SWITCHES_HELD;
			wt.qn--;
			wt.hook_next = 0;
			continue;
		}
		wt.hook_next = i + 1;
		hook_start(&conf.hooks[i], ev);
	}
}

/* A hook past its deadline: SIGTERM to its group, then SIGKILL. */
static void
hook_overdue(void)
{
	say("a hook ran past its %u s: %s", conf.hook_timeout,
	    wt.hook_termed ? "killed" : "stopping it");
	(void)kill(-wt.hook, wt.hook_termed ? SIGKILL : SIGTERM);
	wt.hook_deadline = now_ms() + (wt.hook_termed ? INT32_MAX :
	    KILL_GRACE_MS);
	wt.hook_termed = true;
}

/* At the end: the hook that runs gets SIGTERM, then SIGKILL after
 * KILL_GRACE_MS, and is reaped. */
static void
hook_stop(void)
{
	int64_t end = now_ms() + KILL_GRACE_MS;

	(void)kill(-wt.hook, SIGTERM);
	while (waitpid(wt.hook, NULL, WNOHANG) == 0) {
		if (now_ms() >= end) {
			(void)kill(-wt.hook, SIGKILL);
			(void)waitpid(wt.hook, NULL, 0);
			break;
		}
		(void)poll(NULL, 0, 10);
	}
}

/* --- The daemon's switch lines --------------------------------------- */

static void
watch_away(const char *why)
{
	if (wt.daemon != -1)
		close(wt.daemon);
	wt.daemon = -1;
	wt.reconnect_at = now_ms() + wt.backoff;
	wt.backoff = wt.backoff * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS :
	    wt.backoff * 2;
	if (!wt.away_said)
		say("usbserver at %s: %s; trying again", opt.socket, why);
	wt.away_said = true;
}

/* Connects, and asks for the switch lines. */
static void
watch_connect(void)
{
	static const char ask[] = "reply on\nwatch on\n";

	if ((wt.daemon = daemon_connect(1)) == -1) {
		watch_away(strerror(errno));
		return;
	}
	line_clear(&wt.lb);
	if (send(wt.daemon, ask, sizeof(ask) - 1, MSG_NOSIGNAL) !=
	    (ssize_t)sizeof(ask) - 1)
		watch_away("cannot ask it for its switches");
}

/* A line from the daemon: a switch, queued for its hooks, or the
 * answer to "watch on". */
static void
watch_line(const char *line, size_t len)
{
	const size_t sl = strlen(SWITCHED_LINE);
	struct switch_event ev;

	if (len > sl && memcmp(line, SWITCHED_LINE, sl) == 0 &&
	    switch_parse(line + sl, len - sl, &ev)) {
		if (wt.qn == SWITCHES_HELD) {
			say("%s switched, but %d switches wait for their "
			    "hooks: its hooks do not run", ev.vm, SWITCHES_HELD);
			return;
		}
		wt.queue[(wt.qhead + wt.qn++) % SWITCHES_HELD] = ev;
	} else if (strcmp(line, "ok watch on") == 0) {
		say("watching usbserver's switches at %s", opt.socket);
		wt.away_said = false;
		wt.backoff = RECONNECT_MS;
	} else {
		char esc[MAX_LINE * 4 + 1];

		escape_text(esc, sizeof(esc), line, len);
		watch_away(esc);	/* an older one says "error: ..." */
	}
}

static void
watch_read(void)
{
	char buf[4096];
	const char *p = buf;
	size_t n;
	ssize_t got = read(wt.daemon, buf, sizeof(buf));

	if (got == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (got <= 0) {
		watch_away("it went away");
		return;
	}
	for (n = (size_t)got; n > 0 && wt.daemon != -1; )
		if (line_feed(&wt.lb, &p, &n) == LINE_READY)
			watch_line(wt.lb.buf, wt.lb.len);
}

/* --- Hotkeys: the input devices ------------------------------------- */


/* Is the device one to read: named by a keyboard line (every device,
 * without one), and able to send some hotkey's every key? */
static bool
input_wanted(const char *name, const struct input_id *id,
    const unsigned char *keys)
{
	bool named = conf.nkeyboards == 0;

	for (int i = 0; i < conf.nkeyboards && !named; i++) {
		const struct keyboard *k = &conf.keyboards[i];

		named = k->by_ids ? id->vendor == k->ids.vendor &&
		    id->product == k->ids.product : strcmp(name, k->name) == 0;
	}
	for (int i = 0; i < conf.nhotkeys && named; i++) {
		const struct chord *c = &conf.hotkeys[i].chord;
		unsigned j;

		for (j = 0; j < c->n && bit_is_set(keys, c->key[j]); j++)
			;
		if (j == c->n)
			return true;
	}
	return false;
}

static void
input_close(int i, const char *why)
{
	say("%s/%s (%s): %s", opt.input, wt.in[i].node, wt.in[i].name, why);
	close(wt.in[i].fd);
	wt.in[i] = wt.in[--wt.nin];
}

/* Is name an event device's, as the kernel names them: "event" and a
 * number? Only those are opened, or named in a line we print. */
static bool
input_node(const char *name)
{
	size_t n;

	if (strncmp(name, "event", 5) != 0)
		return false;
	n = strspn(name + 5, "0123456789");
	return n > 0 && n < 6 && name[5 + n] == '\0';
}

/* Opens the input device node (in opt.input) if it is one to read. */
static void
input_open(const char *node)
{
	unsigned char keys[KEY_MAX / 8 + 1] = { 0 };
	char path[PATH_MAX], name[256] = "";
	struct input_id id;
	struct input *in;
	struct stat st;
	int fd;

	if (!input_node(node) || wt.nin == INPUT_MAX ||
	    fit(snprintf(path, sizeof(path), "%s/%s", opt.input, node),
	    sizeof(path)) < 0)
		return;
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1) {
		if (errno == EACCES || errno == EPERM)
			snprintf(wt.denied, sizeof(wt.denied), "%s", path);
		return;
	}
	if (fstat(fd, &st) == -1) {
		close(fd);
		return;
	}
	/* The node read already, or a new device under its name: the
	 * old one left, and its read has not said so yet. */
	for (int i = 0; i < wt.nin; i++)
		if (strcmp(wt.in[i].node, node) == 0) {
			if (wt.in[i].rdev == st.st_rdev) {
				close(fd);
				return;
			}
			input_close(i, "gone");
			break;
		}
	if (ioctl(fd, EVIOCGNAME(sizeof(name) - 1), name) < 0 ||
	    ioctl(fd, EVIOCGID, &id) < 0 ||
	    ioctl(fd, EVIOCGBIT(EV_KEY, sizeof(keys)), keys) < 0 ||
	    !input_wanted(name, &id, keys)) {
		close(fd);
		return;
	}
	in = &wt.in[wt.nin++];
	memset(in, 0, sizeof(*in));
	in->fd = fd;
	in->rdev = st.st_rdev;
	snprintf(in->node, sizeof(in->node), "%s", node);
	escape_text(in->name, sizeof(in->name), name, strlen(name));
	memset(keys, 0, sizeof(keys));
	if (ioctl(fd, EVIOCGKEY(sizeof(keys)), keys) >= 0)
		keys_sync(&in->keys, keys, sizeof(keys));
	say("reading %s (%s, %04x:%04x) for the hotkeys", path, in->name,
	    id.vendor, id.product);
	wt.none_said = false;
}

/* Every device of opt.input not read yet, that is one to read. */
static void
input_scan(void)
{
	struct dirent *de;
	DIR *d;

	if ((d = opendir(opt.input)) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		input_open(de->d_name);
	closedir(d);
}

/* When no keyboard is read: says why, once. */
static void
input_report(void)
{
	if (wt.nin > 0 || wt.none_said)
		return;
	wt.none_said = true;
	if (wt.denied[0] != '\0')
		say("cannot read %s, nor any other keyboard for the hotkeys: "
		    "permission denied. The user must be in group input "
		    "(adduser USER input, then log in again), or run usbctl "
		    "watch as the usbctl-watch service", wt.denied);
	else
		say("no keyboard for the hotkeys in %s%s; waiting for one",
		    opt.input, conf.nkeyboards > 0 ? " (as the keyboard lines "
		    "name it)" : "");
}

/* Runs "usbctl ACTION" for the hotkey h, as the user would. */
static void
action_start(const struct hotkey *h)
{
	static const char *const flags[] = { "--socket", "--connect",
	    "--domain", "--virsh", "--config" };
	static const char *const words[] = { [ATTACH] = "attach",
	    [DETACH] = "detach", [TOGGLE] = "toggle", [RELEASE] = "release" };
	char *argv[2 + 2 * 5 + 1];
	int n = 0;

	if (wt.action != 0) {
		say("hotkey: the last one's usbctl still runs: this one is "
		    "passed over");
		return;
	}
	argv[n++] = (char *)"usbctl";
	for (int i = 0; i < 5; i++)
		if (wt.cli[i] != NULL) {
			argv[n++] = (char *)flags[i];
			argv[n++] = (char *)wt.cli[i];
		}
	argv[n++] = (char *)words[h->verb];
	argv[n] = NULL;
	say("hotkey: usbctl %s", words[h->verb]);
	if ((wt.action = watch_spawn(argv, environ, true)) == -1)
		wt.action = 0;
}

/* A device's events: key events through the chord matcher. */
static void
input_read(int i)
{
	struct input *in = &wt.in[i];
	struct input_event ev[64];
	unsigned char keys[KEY_MAX / 8 + 1];
	ssize_t got = read(in->fd, ev, sizeof(ev));
	int h;

	if (got == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (got <= 0) {
		/* ENODEV: unplugged, or gone to a guest. */
		input_close(i, got == 0 ? "ended" : strerror(errno));
		return;
	}
	for (size_t k = 0; k < (size_t)got / sizeof(ev[0]); k++) {
		if (ev[k].type == EV_SYN && ev[k].code == SYN_DROPPED)
			in->dropped = true;
		else if (in->dropped && ev[k].type == EV_SYN &&
		    ev[k].code == SYN_REPORT) {
			in->dropped = false;
			memset(keys, 0, sizeof(keys));
			if (ioctl(in->fd, EVIOCGKEY(sizeof(keys)), keys) >= 0)
				keys_sync(&in->keys, keys, sizeof(keys));
		} else if (!in->dropped && ev[k].type == EV_KEY &&
		    (h = chord_feed(&in->keys, conf.hotkeys, conf.nhotkeys,
		    ev[k].code, ev[k].value)) >= 0)
			action_start(&conf.hotkeys[h]);
	}
}

/* What inotify says of opt.input: a device node came, or may now be
 * read (udev sets its group and mode after it is made). */
static void
input_changed(void)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct
	    inotify_event))));
	const struct inotify_event *ie;
	ssize_t got = read(wt.inotify, buf, sizeof(buf));

	for (ssize_t at = 0; got > 0 && at < got;
	    at += (ssize_t)(sizeof(*ie) + ie->len)) {
		ie = (const struct inotify_event *)(buf + at);
		if (ie->mask & IN_Q_OVERFLOW)
			input_scan();	/* events lost: look at them all */
		else if (ie->len > 0)
			input_open(ie->name);
	}
}

/* --- The loop --------------------------------------------------------- */

/* Children that ended: a hook, or a hotkey's usbctl. False on SIGTERM
 * or SIGINT. */
static bool
watch_signal(void)
{
	struct signalfd_siginfo si;
	char how[128];
	pid_t pid;
	int status;

	if (read(wt.signals, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return true;
	if (si.ssi_signo != SIGCHLD)
		return false;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == wt.hook) {
			say("the hook ended: %s", exit_text(status, how,
			    sizeof(how)));
			wt.hook = 0;
		} else if (pid == wt.action) {
			say("hotkey: usbctl ended: %s", exit_text(status, how,
			    sizeof(how)));
			wt.action = 0;
		}
	}
	return true;
}

/* How long poll may wait: to the next deadline, or for ever. */
static int
watch_timeout(void)
{
	int64_t now = now_ms(), next = INT64_MAX;

	if (wt.daemon == -1)
		next = wt.reconnect_at;
	if (wt.hook != 0 && wt.hook_deadline < next)
		next = wt.hook_deadline;
	if (next == INT64_MAX)
		return -1;
	return next <= now ? 0 : next - now > INT_MAX ? INT_MAX :
	    (int)(next - now);
}

/* Signals, our program, inotify and the first scan: what the loop needs. */
static void
watch_start(void)
{
	sigset_t set;

	if (conf.nhooks == 0 && conf.nhotkeys == 0)
		errx(2, "nothing to watch for: the configuration has no hook "
		    "and no hotkey lines");
	/* Its ends come through the signalfd, even if we were started with
	 * SIGCHLD ignored (that would reap them unseen). */
	(void)signal(SIGCHLD, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1 ||
	    (wt.signals = signalfd(-1, &set, SFD_CLOEXEC)) == -1)
		err(1, "signalfd");
	wt.backoff = RECONNECT_MS;
	if (conf.nhotkeys > 0) {
		if ((wt.inotify = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) == -1)
			err(1, "inotify");
		if (inotify_add_watch(wt.inotify, opt.input, IN_CREATE |
		    IN_ATTRIB | IN_MOVED_TO) == -1)
			err(1, "%s", opt.input);
		input_scan();
		input_report();
	}
	watch_connect();
}

/*
 * "usbctl watch": until SIGTERM or SIGINT. A hook that runs then is
 * stopped; a hotkey's usbctl ends by itself.
 */
static int
cmd_watch(void)
{
	struct pollfd p[3 + INPUT_MAX];

	watch_start();
	for (;;) {
		int r;

		p[0] = (struct pollfd){ .fd = wt.signals, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = wt.daemon, .events = POLLIN };
		p[2] = (struct pollfd){ .fd = wt.inotify, .events = POLLIN };
		int nin = wt.nin;

		for (int i = 0; i < nin; i++)
			p[3 + i] = (struct pollfd){ .fd = wt.in[i].fd,
			    .events = POLLIN };
		if ((r = poll(p, (nfds_t)(3 + nin), watch_timeout())) == -1 &&
		    errno != EINTR)
			err(1, "poll");
		if (r > 0 && p[0].revents != 0 && !watch_signal())
			break;
		if (r > 0 && p[1].revents != 0 && wt.daemon != -1)
			watch_read();
		/* Backwards: input_read may close i, moving the last in;
		 * then the devices that came. */
		for (int i = r > 0 ? nin : 0; i-- > 0; )
			if (p[3 + i].revents != 0)
				input_read(i);
		if (r > 0 && p[2].revents != 0)
			input_changed();
		if (wt.inotify != -1)
			input_report();
		if (wt.daemon == -1 && now_ms() >= wt.reconnect_at)
			watch_connect();
		if (wt.hook != 0 && now_ms() >= wt.hook_deadline)
			hook_overdue();
		hook_next();
	}
	if (wt.hook != 0)
		hook_stop();
	return 0;
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
	    "       usbctl [options] watch\n"
	    "\n"
	    "Asks usbserver to attach (the default), detach or toggle host USB\n"
	    "devices for the first running libvirt domain, or the one named;\n"
	    "without devices, those of the configuration file. status shows\n"
	    "what is attached to each running domain, devices the host's USB\n"
	    "devices and where they are. release has usbserver give back what\n"
	    "it attached to the domain named with -d, or to every domain.\n"
	    "watch stays, runs the configuration's hooks at each switch and\n"
	    "its hotkeys' actions when their keys are pressed.\n"
	    "\n"
	    "  -s, --socket PATH   usbserver's socket (default %s)\n"
	    "  -c, --connect URI   libvirt URI for finding the domain\n"
	    "  -d, --domain VM     the domain (default: the first running one)\n"
	    "  -V, --virsh PATH    the virsh to run (default: virsh on PATH)\n"
	    "  -C, --config FILE   read this instead of %s and\n"
	    "                      ~/.config/usbctl.conf\n"
	    "  -j, --json          status and devices as JSON\n"
	    "      --sysfs DIR     the host's USB devices (default %s)\n"
	    "      --input DIR     watch: the input devices (default %s)\n"
	    "  -h, --help          show this help\n"
	    "  -v, --version       show the version\n",
	    DEFAULT_SOCKET, SYSTEM_CONFIG, SYSFS_USB, INPUT_DIR);
	exit(status);
}

/* Does usbserver's ledger say it attached d to vm? */
static bool
held_has(const char *vm, const struct usb_device *d)
{
	for (int i = 0; i < held.n; i++) {
		const struct ledger_entry *e = &held.e[i];

		if (strcmp(e->vm, vm) == 0 && device_ids_equal(&e->device, d) &&
		    (!device_has_port(d) || strcmp(d->port, e->at) == 0 ||
		    strcmp(d->port, e->device.port) == 0))
			return true;
	}
	return false;
}

/*
 * "usbctl toggle": detach each device that is attached to the domain,
 * attach the others. What is attached is what usbserver's ledger says
 * it attached: no virsh of ours, so a user with no access to libvirt
 * but usbserver's socket (usbctl watch's service) may toggle. With an
 * older usbserver, the domain's XML says.
 */
static void
toggle(struct request *reqs, int n, const char *vm)
{
	struct hostdev devs[MAX_HOSTDEVS];
	int k = 0;

	if (!held_read() && (k = domain_hostdevs(vm, devs, MAX_HOSTDEVS)) < 0)
		exit(1);
	for (int i = 0; i < n; i++) {
		reqs[i].action = held.known && held_has(vm, &reqs[i].device) ?
		    ACT_DETACH : ACT_ATTACH;
		for (int j = 0; j < k; j++)
			if (hostdev_is(&devs[j], &reqs[i].device))
				reqs[i].action = ACT_DETACH;
	}
}

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
		{ "input",	required_argument,	NULL, 'I' },
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'v' },
		{ NULL,		0,			NULL, 0 },
	};
	static const char *const verbs[] = { "attach", "detach", "toggle",
	    "status", "devices", "release", "watch" };
	const struct opt_word words[] = {
		{ 's', &opt.socket }, { 'c', &opt.connect },
		{ 'd', &opt.domain }, { 'V', &opt.virsh },
		{ 'C', &opt.config }, { 'S', &opt.sysfs },
		{ 'I', &opt.input },
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
	wt.cli[0] = opt.socket_given ? opt.socket : NULL;
	wt.cli[1] = opt.connect;
	wt.cli[2] = opt.domain;
	wt.cli[3] = strcmp(opt.virsh, DEFAULT_VIRSH) != 0 ? opt.virsh : NULL;
	wt.cli[4] = opt.config;
	conf_apply();
	if (verb == WATCH) {
		if (first < argc)
			usage(2);
		return cmd_watch();
	}
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
