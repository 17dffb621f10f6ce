/*
 * common.h: what usbserver and usbctl share: the line protocol, its limits,
 * the validators, and the text both sides write and read.
 *
 * Everything here is pure (no I/O, no allocation, no globals) so that the
 * unit tests and the fuzzers can feed it any bytes at all.
 */
#ifndef USBSERVER_COMMON_H
#define USBSERVER_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USBSERVER_VERSION	"0.1.0"

#define DEFAULT_SOCKET		"/var/run/vm-usbserver.sock"
#define DEFAULT_XML_DIR		"/tmp"
#define DEFAULT_VIRSH		"virsh"
#define SYSFS_USB		"/sys/bus/usb/devices"	/* by port: "1-2" */
/* The only PATH virsh is looked up on and runs with in the daemon. */
#define SAFE_PATH		"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#define VIRSH_TIMEOUT		30	/* seconds one virsh run may take */
#define MAX_TIMEOUT		3600	/* largest --timeout accepted */
#define MAX_CONNS		128	/* the daemon's live connections; more wait
					 * in the listening socket's queue */
#define CONN_THREAD	"usbserver-conn"	/* a connection's thread's name */
#define MAX_LINE		512	/* longest line, either direction, without '\n' */
#define MAX_VM_NAME		128	/* longest domain name we accept */
#define MAX_REASON		256	/* longest failure reason in a reply or log */
#define DEVICE_LEN		9	/* "046d:c52b" */
#define PORT_MAX		31	/* "255-255.255.255.255.255.255.255": a bus
					 * and up to 7 ports, USB's deepest */
#define PORT_DEPTH		7
#define DEVICE_MAX		(DEVICE_LEN + 1 + PORT_MAX)	/* "VID:PID@PORT" */
#define XML_MAX			224	/* the hostdev document, with room to spare */
#define DEFAULT_CONFIG		"/etc/usbserver.conf"
#define MAX_CONFIG_LINE		256	/* longest line of the configuration file */
#define MAX_ALLOW		1024	/* most allow entries, flags and file together */

enum action {
	ACT_ATTACH,
	ACT_DETACH,
};

struct command {
	char		vm[MAX_VM_NAME + 1];
	enum action	action;
	char		device[DEVICE_MAX + 1];	/* "vid:pid" or "vid:pid@port",
						 * ids in lower case */
};

static inline const char *
action_name(enum action a)
{
	return a == ACT_ATTACH ? "attach" : "detach";
}

/* ------------------------------------------------------------------ */
/* Validators: whitelists, checked before any field touches a file,   */
/* an argument vector or a log line.                                  */

static inline bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static inline bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/* Would virsh read this as a domain's number or UUID rather than its
 * name? ("--domain" tries those first.) */
static inline bool
vm_name_is_id(const char *s, size_t len)
{
	size_t digits = 0, hex = 0;

	for (size_t i = 0; i < len; i++) {
		digits += s[i] >= '0' && s[i] <= '9';
		hex += is_hex(s[i]);
	}
	if (digits == len)
		return true;
	if (len == 32 && hex == 32)
		return true;
	if (len != 36 || hex != 32)
		return false;
	return s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-';
}

/* A libvirt domain name as we accept it: letters, digits and ._+- only,
 * not starting with '-', 1..MAX_VM_NAME bytes, and not something virsh
 * would take for a domain's number or UUID: one domain, one name, so its
 * commands queue in one line. */
static inline bool
valid_vm_name(const char *s, size_t len)
{
	if (len == 0 || len > MAX_VM_NAME || s[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '+' || c == '-'))
			return false;
	}
	return !vm_name_is_id(s, len);
}

/* A number from 1 to 255 at s[*i], without leading zeros; moves *i past
 * it. */
static inline bool
parse_port_number(const char *s, size_t len, size_t *i)
{
	unsigned v = 0;
	size_t n = 0;

	if (*i >= len || s[*i] < '1' || s[*i] > '9')
		return false;
	while (*i < len && s[*i] >= '0' && s[*i] <= '9' && n < 4) {
		v = v * 10 + (unsigned)(s[*i] - '0');
		(*i)++;
		n++;
	}
	return v <= 255;
}

/*
 * Is s (len bytes) a USB port path, the kernel's name for a device's
 * place: BUS-PORT[.PORT]..., as "1-2" or "3-1.4.2", each number 1 to 255
 * without leading zeros, at most PORT_DEPTH ports? Interfaces ("1-2:1.0")
 * and root hubs ("usb1") are not devices one can move.
 */
static inline bool
valid_port(const char *s, size_t len)
{
	size_t i = 0, depth = 0;

	if (len > PORT_MAX || !parse_port_number(s, len, &i) || i >= len ||
	    s[i++] != '-')
		return false;
	for (;;) {
		if (++depth > PORT_DEPTH || !parse_port_number(s, len, &i))
			return false;
		if (i == len)
			return true;
		if (s[i++] != '.')
			return false;
	}
}

/*
 * Parses a device: "VID:PID", four hex digits each, or "VID:PID@PORT",
 * the device at that USB port. Writes the form with lower-case ids to
 * out.
 */
static inline bool
parse_device(const char *s, size_t len, char out[DEVICE_MAX + 1])
{
	const char *at = memchr(s, '@', len);
	size_t ids = at != NULL ? (size_t)(at - s) : len;

	if (ids != DEVICE_LEN || s[4] != ':')
		return false;
	for (size_t i = 0; i < DEVICE_LEN; i++) {
		if (i == 4)
			continue;
		if (!is_hex(s[i]))
			return false;
	}
	if (at != NULL && !valid_port(at + 1, len - ids - 1))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		out[i] = i < DEVICE_LEN && c >= 'A' && c <= 'F' ?
		    (char)(c - 'A' + 'a') : c;
	}
	out[len] = '\0';
	return true;
}

/* The port of a parsed device, or NULL for the plain form. */
static inline const char *
device_port(const char *device)
{
	const char *at = strchr(device, '@');

	return at != NULL ? at + 1 : NULL;
}

/* ------------------------------------------------------------------ */
/* Who is talking: the domain of a QEMU peer, from its command line.   */

enum qemu_peer {
	PEER_HOST,		/* no -name: not a QEMU process */
	PEER_GUEST,		/* QEMU serving the domain it names */
	PEER_UNKNOWN,		/* QEMU with a name we do not accept, or a
				 * peer that cannot be identified */
};

/* The guest name in the value of QEMU's -name option: "guest=NAME,..." or
 * "NAME,..." (guest is the implied key), where ",," stands for a comma.
 * Our names have no commas, so a name with one is unusable; so is a value
 * that names the guest twice (QEMU would take the last): false. */
static inline bool
qemu_name_value(const char *v, size_t len, char *name, size_t size)
{
	size_t i = 0, found = 0;

	while (i < len) {
		size_t j = i, o;
		bool key = false, comma = false;
		const char *eq = NULL;

		/* One "key=value" or bare value, up to a single ','. */
		for (; j < len; j++) {
			if (v[j] == ',' && j + 1 < len && v[j + 1] == ',') {
				comma = true;
				j++;
				continue;
			}
			if (v[j] == ',')
				break;
			if (v[j] == '=' && eq == NULL)
				eq = v + j;
		}
		if (eq == NULL && i == 0)
			key = true;		/* implied "guest=" */
		else if (eq != NULL && eq - (v + i) == 5 &&
		    memcmp(v + i, "guest", 5) == 0) {
			key = true;
			i += 6;
		}
		if (key) {
			o = j - i;
			if (found++ > 0 || comma || o == 0 || o >= size ||
			    !valid_vm_name(v + i, o))
				return false;
			memcpy(name, v + i, o);
			name[o] = '\0';
		}
		i = j + 1;
	}
	return found == 1;
}

/* cmdline[0..len) is /proc/PID/cmdline: arguments, each NUL-terminated
 * (the last maybe cut short). Finds "-name VALUE" or "--name VALUE"; a
 * second one (QEMU would take the last) makes the peer unknown. */
static inline enum qemu_peer
qemu_peer_name(const char *cmdline, size_t len, char name[MAX_VM_NAME + 1])
{
	const char *arg = cmdline, *end = cmdline + len;
	enum qemu_peer kind = PEER_HOST;
	bool first = true;

	while (arg < end) {
		const char *nul = memchr(arg, '\0', (size_t)(end - arg));
		size_t alen = nul != NULL ? (size_t)(nul - arg) : (size_t)(end - arg);

		if (!first && ((alen == 5 && memcmp(arg, "-name", 5) == 0) ||
		    (alen == 6 && memcmp(arg, "--name", 6) == 0))) {
			const char *v = arg + alen + 1;
			const char *vnul;

			if (kind != PEER_HOST || nul == NULL || v >= end ||
			    (vnul = memchr(v, '\0', (size_t)(end - v))) == NULL)
				return PEER_UNKNOWN;	/* twice, or cut short */
			kind = qemu_name_value(v, (size_t)(vnul - v), name,
			    MAX_VM_NAME + 1) ? PEER_GUEST : PEER_UNKNOWN;
			nul = vnul;		/* the value is no option */
		}
		first = false;
		if (nul == NULL)
			break;
		arg = nul + 1;
	}
	return kind;
}

/* ------------------------------------------------------------------ */
/* Line assembly: bytes arrive in chunks of any size; lines come out   */
/* whole, or are reported as overlong and skipped up to their newline. */

struct linebuf {
	size_t	len;		/* bytes kept in buf */
	size_t	total;		/* bytes seen in this line, kept or not */
	bool	overlong;	/* the line outgrew buf: skipping to '\n' */
	bool	done;		/* buf holds a finished line; clear on next feed */
	char	buf[MAX_LINE + 1];
};

enum line_event {
	LINE_MORE,		/* input used up, no line finished */
	LINE_READY,		/* buf[0..len) is a line (NUL-terminated) */
	LINE_OVERLONG,		/* a line longer than MAX_LINE ended; buf has its start */
};

static inline void
line_clear(struct linebuf *lb)
{
	lb->len = lb->total = 0;
	lb->overlong = lb->done = false;
	lb->buf[0] = '\0';
}

/* Consumes bytes from *data up to and including the first '\n', advancing
 * *data and *n. Call again while *n > 0: one event per finished line. */
static inline enum line_event
line_feed(struct linebuf *lb, const char **data, size_t *n)
{
	if (lb->done)
		line_clear(lb);
	while (*n > 0) {
		char c = **data;
		(*data)++;
		(*n)--;
		if (c == '\n') {
			lb->buf[lb->len] = '\0';
			lb->done = true;
			return lb->overlong ? LINE_OVERLONG : LINE_READY;
		}
		lb->total++;
		if (lb->len < MAX_LINE)
			lb->buf[lb->len++] = c;
		else
			lb->overlong = true;
	}
	return LINE_MORE;
}

/* At end of input: a last line without '\n' still counts. */
static inline enum line_event
line_finish(struct linebuf *lb)
{
	if (lb->done)
		line_clear(lb);
	if (lb->total == 0)
		return LINE_MORE;
	lb->buf[lb->len] = '\0';
	lb->done = true;
	return lb->overlong ? LINE_OVERLONG : LINE_READY;
}

/* ------------------------------------------------------------------ */
/* Escaping for logs and replies: one line of printable ASCII out of  */
/* any bytes. Control bytes, DEL, bytes >= 0x80 and '\' become \xHH.   */
/* Never splits an escape; returns the length written (size > 0).     */

static inline size_t
escape_text(char *dst, size_t size, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		bool plain = c >= 0x20 && c < 0x7f && c != '\\';
		size_t need = plain ? 1 : 4;
		if (o + need >= size)
			break;
		if (plain) {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 0xf];
		}
	}
	dst[o] = '\0';
	return o;
}

/* ------------------------------------------------------------------ */
/* Parsing a request line.                                             */

enum parse_result {
	PARSE_EMPTY,		/* blank line: ignored, never answered */
	PARSE_COMMAND,		/* *cmd filled in */
	PARSE_REPLY_ON,
	PARSE_REPLY_OFF,
	PARSE_ERROR,		/* *why says what is wrong */
};

#define MAX_FIELDS	4	/* we need three; one more tells "too many" */

/* Drops a trailing '\r' and surrounding blanks: sets *start and returns
 * the length of what is left. */
static inline size_t
line_trim(const char *line, size_t len, const char **start)
{
	while (len > 0 && (is_blank(line[len - 1]) || line[len - 1] == '\r'))
		len--;
	while (len > 0 && is_blank(*line)) {
		line++;
		len--;
	}
	*start = line;
	return len;
}

static inline bool
field_is(const char *f, size_t flen, const char *word)
{
	return flen == strlen(word) && memcmp(f, word, flen) == 0;
}

/* Splits a trimmed line at runs of blanks into at most max fields; the
 * number found (max when there may be more). */
static inline size_t
split_fields(const char *line, size_t len, const char **f, size_t *flen,
    size_t max)
{
	size_t nf = 0;

	len = line_trim(line, len, &line);
	for (size_t i = 0; i < len && nf < max; ) {
		size_t j = i;
		while (j < len && !is_blank(line[j]))
			j++;
		f[nf] = line + i;
		flen[nf++] = j - i;
		while (j < len && is_blank(line[j]))
			j++;
		i = j;
	}
	return nf;
}

/* line[0..len) is one line without its '\n'; it may hold any bytes. */
static inline enum parse_result
parse_line(const char *line, size_t len, struct command *cmd, const char **why)
{
	const char *f[MAX_FIELDS];
	size_t flen[MAX_FIELDS];
	size_t nf = split_fields(line, len, f, flen, MAX_FIELDS);

	if (nf == 0)
		return PARSE_EMPTY;

	if (nf == 2 && field_is(f[0], flen[0], "reply")) {
		if (field_is(f[1], flen[1], "on"))
			return PARSE_REPLY_ON;
		if (field_is(f[1], flen[1], "off"))
			return PARSE_REPLY_OFF;
		*why = "expected 'reply on' or 'reply off'";
		return PARSE_ERROR;
	}
	if (nf != 3) {
		*why = "expected: VM attach|detach VID:PID";
		return PARSE_ERROR;
	}
	if (flen[0] > MAX_VM_NAME) {
		*why = "VM name too long";
		return PARSE_ERROR;
	}
	if (!valid_vm_name(f[0], flen[0])) {
		*why = vm_name_is_id(f[0], flen[0]) ?
		    "invalid VM name (a number or UUID, not a name)" :
		    "invalid VM name (letters, digits and ._+- only, "
		    "not starting with -)";
		return PARSE_ERROR;
	}
	if (field_is(f[1], flen[1], "attach"))
		cmd->action = ACT_ATTACH;
	else if (field_is(f[1], flen[1], "detach"))
		cmd->action = ACT_DETACH;
	else {
		*why = "unknown action (expected attach or detach)";
		return PARSE_ERROR;
	}
	if (!parse_device(f[2], flen[2], cmd->device)) {
		*why = "invalid device (expected VID:PID, four hex digits "
		    "each, or VID:PID@PORT)";
		return PARSE_ERROR;
	}
	memcpy(cmd->vm, f[0], flen[0]);
	cmd->vm[flen[0]] = '\0';
	return PARSE_COMMAND;
}

/* ------------------------------------------------------------------ */
/* The configuration file: "allow VID:PID" lines, '#' comments.        */

enum config_result {
	CONFIG_NOTHING,		/* blank or comment */
	CONFIG_ALLOW,		/* device filled in */
	CONFIG_ERROR,		/* *why says what is wrong */
};

static inline enum config_result
config_line(const char *line, size_t len, char device[DEVICE_MAX + 1],
    const char **why)
{
	const char *hash = memchr(line, '#', len);
	const char *f[3];
	size_t flen[3], nf;

	if (hash != NULL)
		len = (size_t)(hash - line);
	nf = split_fields(line, len, f, flen, 3);
	if (nf == 0)
		return CONFIG_NOTHING;
	if (nf != 2 || !field_is(f[0], flen[0], "allow")) {
		*why = "expected 'allow VID:PID[@PORT]'";
		return CONFIG_ERROR;
	}
	if (!parse_device(f[1], flen[1], device)) {
		*why = "invalid device (expected VID:PID, four hex digits "
		    "each, or VID:PID@PORT)";
		return CONFIG_ERROR;
	}
	return CONFIG_ALLOW;
}

/* ------------------------------------------------------------------ */
/* The text we write: the hostdev document and the reply lines. Each   */
/* returns the length written, or -1 when it would not fit.            */

static inline int
fit(int n, size_t size)
{
	return (n < 0 || (size_t)n >= size) ? -1 : n;
}

/*
 * A number in a sysfs attribute's text buf (NUL-terminated): in base (16
 * for ids, 10 for bus and device numbers), at most max, one newline
 * after it at most; -1 for anything else.
 */
static inline long
sysfs_number(const char *buf, int base, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(buf, &end, base);
	if (errno != 0 || end == buf || (*end != '\n' && *end != '\0') ||
	    (*end == '\n' && end[1] != '\0') || v < 0 || v > max)
		return -1;
	return v;
}

/* Where a device sits on the host's USB now: sysfs's busnum and devnum. */
struct usb_addr {
	unsigned	bus;
	unsigned	dev;
};

/*
 * The libvirt hostdev document for device (its ids), and with addr also
 * its bus and device number: libvirt then takes only the device that
 * matches all four. libvirt reads the numbers in base 0, so they are
 * written in decimal without leading zeros. Its length, or -1.
 */
static inline int
xml_format(char *buf, size_t size, const char *device,
    const struct usb_addr *addr)
{
	char where[48] = "";

	if (addr != NULL)
		snprintf(where, sizeof(where), "<address bus='%u' device='%u'/>",
		    addr->bus, addr->dev);
	return fit(snprintf(buf, size,
	    "<hostdev mode='subsystem' type='usb'><source>"
	    "<vendor id='0x%.4s'/><product id='0x%.4s'/>%s"
	    "</source></hostdev>\n", device, device + 5, where), size);
}

/* "ok VM ACTION VID:PID\n", or with a reason
 * "error VM ACTION VID:PID: REASON\n"; the reason is escaped and cut to
 * MAX_REASON bytes. */
static inline int
reply_format(char *buf, size_t size, const struct command *cmd,
    const char *reason)
{
	char esc[MAX_REASON + 1];

	if (reason == NULL)
		return fit(snprintf(buf, size, "ok %s %s %s\n", cmd->vm,
		    action_name(cmd->action), cmd->device), size);
	escape_text(esc, sizeof(esc), reason, strlen(reason));
	return fit(snprintf(buf, size, "error %s %s %s: %s\n", cmd->vm,
	    action_name(cmd->action), cmd->device, esc), size);
}

/* "error: WHY\n", for a line that is not a command. */
static inline int
reply_format_invalid(char *buf, size_t size, const char *why)
{
	char esc[MAX_REASON + 1];

	escape_text(esc, sizeof(esc), why, strlen(why));
	return fit(snprintf(buf, size, "error: %s\n", esc), size);
}

enum reply_kind {
	REPLY_OK,		/* the command succeeded */
	REPLY_ERROR,		/* *reason points into the line */
	REPLY_UNEXPECTED,	/* not an answer to this command */
};

/* Reads the daemon's answer to cmd (a line without its '\n'). */
static inline enum reply_kind
reply_parse(const char *line, const struct command *cmd, const char **reason)
{
	char head[MAX_LINE + 1];
	size_t n;

	if (fit(snprintf(head, sizeof(head), "ok %s %s %s", cmd->vm,
	    action_name(cmd->action), cmd->device), sizeof(head)) < 0)
		return REPLY_UNEXPECTED;
	if (strcmp(line, head) == 0)
		return REPLY_OK;
	if (strncmp(line, "error: ", 7) == 0) {
		*reason = line + 7;
		return REPLY_ERROR;
	}
	n = strlen(head + 3);
	if (strncmp(line, "error ", 6) == 0 &&
	    strncmp(line + 6, head + 3, n) == 0 &&
	    strncmp(line + 6 + n, ": ", 2) == 0) {
		*reason = line + 6 + n + 2;
		return REPLY_ERROR;
	}
	return REPLY_UNEXPECTED;
}

#endif /* USBSERVER_COMMON_H */
