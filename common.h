/*
 * common.h: what usbserver and usbctl share.
 *
 * Part 1 is pure (no I/O, no allocation, no globals), so that the unit
 * tests and the fuzzers can feed it any bytes at all:
 *	limits and defaults; option words
 *	validators: domain names, USB ports
 *	devices: VID:PID[@PORT] as a struct, parsed and written
 *	line assembly; escaping for logs and replies
 *	requests: the line grammar; the configuration file's line
 *	the text we write: the hostdev document, sysfs numbers, replies
 *	libvirt's words we match, and the daemon's "name one, as"
 *	libvirt's lifecycle event lines; the ledger's lines
 *	the kernel's uevents of USB devices
 *	a domain's XML: its USB hostdevs
 * Part 2, marked below, is the I/O both programs do, done once:
 *	trusted files, small files read a line at a time, sysfs
 *	attributes, running virsh with a deadline
 */
#ifndef USBSERVER_COMMON_H
#define USBSERVER_COMMON_H

#ifndef _GNU_SOURCE
#error "define _GNU_SOURCE before any #include: Part 2 needs pipe2, pidfd_open"
#endif

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
#define GUEST_ANSWER_MS		250	/* a guest hears of a refusal or failure
					 * no sooner: how soon must not tell it
					 * what the host has */
#define GUEST_RATE		4	/* commands a second a guest may have run, */
#define GUEST_BURST		8	/* and at once after a quiet while */
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

#define MAX_LEASE		3600	/* longest lease a guest may ask for, s */
#define LEDGER_MAX		128	/* devices the daemon's ledger keeps */
#define LEASE_MAX		64	/* domains with a lease at once */

enum action {
	ACT_ATTACH,
	ACT_DETACH,
	ACT_RELEASE,	/* give back what a domain (or every one) has */
	ACT_ALIVE,	/* a guest's lease: its devices come back if it
			 * says nothing for so long */
	ACT_STATUS,	/* a host client asks what the ledger and the
			 * leases hold */
	ACT_DOMAINS,	/* a host client asks which domains run */
	ACT_WATCH,	/* a host client asks for a line at each switch */
};

static inline const char *
action_name(enum action a)
{
	static const char *const names[] = { "attach", "detach", "release",
	    "alive", "status", "domains", "watch" };

	return (size_t)a < sizeof(names) / sizeof(names[0]) ? names[a] : "?";
}

/* An option that names a path, a URI or a name, taken as it is. */
struct opt_word {
	int		ch;
	const char	**to;
};

/* Sets word option ch to arg: false when ch is none of words[0..n). */
static inline bool
opt_word(const struct opt_word *words, size_t n, int ch, const char *arg)
{
	for (size_t i = 0; i < n; i++)
		if (words[i].ch == ch) {
			*words[i].to = arg;
			return true;
		}
	return false;
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

static inline unsigned
hex_value(char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

/*
 * Would virsh read this as a domain's number or UUID rather than its
 * name? "--domain" tries those first: a number as strtol takes it (a '+'
 * may lead: "+01" is domain 1), then, for 36 bytes, a UUID as libvirt
 * parses one, 32 hex digits with dashes anywhere between pairs. Any 36
 * bytes of 32 hex digits and 4 dashes are refused, and 32 hex digits
 * alone too, to be safe.
 */
static inline bool
vm_name_is_id(const char *s, size_t len)
{
	size_t digits = 0, hex = 0, dashes = 0, lead = len > 0 && s[0] == '+';

	for (size_t i = 0; i < len; i++) {
		digits += s[i] >= '0' && s[i] <= '9';
		hex += is_hex(s[i]);
		dashes += s[i] == '-';
	}
	if (len > lead && digits == len - lead)
		return true;
	return hex == 32 && (len == 32 || (len == 36 && dashes == 4));
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

/* Copies the domain name s[0..len) into vm if it is one we accept. */
static inline bool
vm_name_copy(char vm[MAX_VM_NAME + 1], const char *s, size_t len)
{
	if (!valid_vm_name(s, len))
		return false;
	memcpy(vm, s, len);
	vm[len] = '\0';
	return true;
}

/* Is s[0..len) printable ASCII: no control byte, no high one? */
static inline bool
is_text(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < ' ' || s[i] > '~')
			return false;
	return true;
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

/* A decimal number of at most max, digits only, no leading zero; -1. */
static inline long long
decimal_parse(const char *s, size_t len, long long max)
{
	long long v = 0;

	if (len == 0 || len > 19 || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (max - (s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= max ? v : -1;	/* one digit above a max under 10 */
}

/* ------------------------------------------------------------------ */
/* Devices: VID:PID[@PORT], parsed into a struct and written back.     */

/*
 * A USB device as the protocol names it: its ids, and the port it is
 * plugged into when two devices share them. It travels parsed; its text
 * is "vvvv:pppp" or "vvvv:pppp@PORT", ids in lower case (device_text).
 */
struct usb_device {
	unsigned	vendor;			/* idVendor, 0 to 0xffff */
	unsigned	product;		/* idProduct */
	char		port[PORT_MAX + 1];	/* "1-2": that one; "": any */
};

#define DEVICE_TEXT	(DEVICE_MAX + 1)	/* device_text's buffer */

/* Parses "VID:PID", four hex digits each, or "VID:PID@PORT", the device
 * at that USB port. */
static inline bool
device_parse(const char *s, size_t len, struct usb_device *d)
{
	const char *at = memchr(s, '@', len);
	size_t ids = at != NULL ? (size_t)(at - s) : len;
	unsigned id[2] = { 0, 0 };

	if (ids != DEVICE_LEN || s[4] != ':')
		return false;
	for (size_t i = 0; i < DEVICE_LEN; i++) {
		if (i == 4)
			continue;
		if (!is_hex(s[i]))
			return false;
		id[i > 4] = id[i > 4] * 16 + hex_value(s[i]);
	}
	if (at != NULL && !valid_port(at + 1, len - ids - 1))
		return false;
	d->vendor = id[0];
	d->product = id[1];
	ids = at != NULL ? len - ids - 1 : 0;
	memcpy(d->port, at != NULL ? at + 1 : "", ids);
	d->port[ids] = '\0';
	return true;
}

/* The device's text, in buf, which it returns. */
static inline const char *
device_text(const struct usb_device *d, char buf[DEVICE_TEXT])
{
	snprintf(buf, DEVICE_TEXT, "%04x:%04x%s%s", d->vendor & 0xffff,
	    d->product & 0xffff, d->port[0] != '\0' ? "@" : "", d->port);
	return buf;
}

/* Parses a device's text, and writes it as device_text() does. */
static inline bool
parse_device(const char *s, size_t len, char out[DEVICE_TEXT])
{
	struct usb_device d;

	if (!device_parse(s, len, &d))
		return false;
	device_text(&d, out);
	return true;
}

static inline bool
device_has_port(const struct usb_device *d)
{
	return d->port[0] != '\0';
}

static inline bool
device_ids_equal(const struct usb_device *a, const struct usb_device *b)
{
	return a->vendor == b->vendor && a->product == b->product;
}

static inline bool
device_equal(const struct usb_device *a, const struct usb_device *b)
{
	return device_ids_equal(a, b) && strcmp(a->port, b->port) == 0;
}

/* Does entry (one of an allow list, say) name d? Without a port, at any
 * port; with one, at that port only. */
static inline bool
device_covers(const struct usb_device *entry, const struct usb_device *d)
{
	return device_ids_equal(entry, d) && (!device_has_port(entry) ||
	    strcmp(entry->port, d->port) == 0);
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
/* Requests: the line grammar.                                         */
/*	VM attach|detach DEVICE		move a device (the guide's lines)  */
/*	VM alive SECONDS		a guest's lease; 0 ends it          */
/*	[VM] release			give back a domain's devices, or    */
/*					every domain's                      */
/*	status				the ledger and the leases, a line   */
/*					each, then "ok status"              */
/*	watch on			a "switched" line at each switch    */
/*	reply on|off			answer this connection's lines      */

struct request {
	char			vm[MAX_VM_NAME + 1];	/* "": every domain
							 * (release only) */
	enum action		action;
	struct usb_device	device;		/* attach, detach */
	unsigned		lease;		/* alive: seconds */
};

enum parse_result {
	PARSE_EMPTY,		/* blank line: ignored, never answered */
	PARSE_COMMAND,		/* *req filled in */
	PARSE_REPLY_ON,
	PARSE_REPLY_OFF,
	PARSE_ERROR,		/* *why says what is wrong */
};

#define MAX_FIELDS	4	/* we need three; one more tells "too many" */
#define REQUEST_TEXT	(MAX_VM_NAME + DEVICE_MAX + 16)	/* request_text's */

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

/* The domain field f[0..len) into req->vm: false, with *why, if it is no
 * name we accept. */
static inline bool
parse_vm(const char *f, size_t len, struct request *req, const char **why)
{
	if (len > MAX_VM_NAME) {
		*why = "VM name too long";
		return false;
	}
	if (!valid_vm_name(f, len)) {
		*why = vm_name_is_id(f, len) ?
		    "invalid VM name (a number or UUID, not a name)" :
		    "invalid VM name (letters, digits and ._+- only, "
		    "not starting with -)";
		return false;
	}
	return vm_name_copy(req->vm, f, len);
}

/* The third field, f[0..len), of an attach, detach or alive line. */
static inline bool
parse_operand(const char *f, size_t len, struct request *req,
    const char **why)
{
	long long s;

	if (req->action == ACT_ALIVE) {
		if ((s = decimal_parse(f, len, MAX_LEASE)) < 0) {
			*why = "invalid lease (expected seconds, 0 to 3600)";
			return false;
		}
		req->lease = (unsigned)s;
		return true;
	}
	if (!device_parse(f, len, &req->device)) {
		*why = "invalid device (expected VID:PID, four hex digits "
		    "each, or VID:PID@PORT)";
		return false;
	}
	return true;
}

/* The line's fields f[0..nf), not "reply ..." nor blank, into *req:
 * "release", "status" or "domains" alone, "watch on", "VM release", or
 * "VM VERB OPERAND". A domain named "watch" keeps its lines: none of
 * them is "watch on". */
static inline enum parse_result
parse_fields(const char **f, const size_t *flen, size_t nf,
    struct request *req, const char **why)
{
	static const enum action verbs[] = { ACT_ATTACH, ACT_DETACH,
	    ACT_ALIVE };
	const size_t nverbs = sizeof(verbs) / sizeof(verbs[0]);
	size_t v;

	if (nf == 1 && field_is(f[0], flen[0], action_name(ACT_STATUS))) {
		req->action = ACT_STATUS;
		return PARSE_COMMAND;
	}
	if (nf == 1 && field_is(f[0], flen[0], action_name(ACT_DOMAINS))) {
		req->action = ACT_DOMAINS;
		return PARSE_COMMAND;
	}
	if (nf == 2 && field_is(f[0], flen[0], action_name(ACT_WATCH)) &&
	    field_is(f[1], flen[1], "on")) {
		req->action = ACT_WATCH;
		return PARSE_COMMAND;
	}
	req->action = ACT_RELEASE;
	if (nf == 1 && field_is(f[0], flen[0], action_name(ACT_RELEASE)))
		return PARSE_COMMAND;
	if (nf == 2 && field_is(f[1], flen[1], action_name(ACT_RELEASE)))
		return parse_vm(f[0], flen[0], req, why) ? PARSE_COMMAND :
		    PARSE_ERROR;
	if (nf != 3) {
		*why = "expected: VM attach|detach VID:PID";
		return PARSE_ERROR;
	}
	if (!parse_vm(f[0], flen[0], req, why))
		return PARSE_ERROR;
	for (v = 0; v < nverbs && !field_is(f[1], flen[1],
	    action_name(verbs[v])); v++)
		;
	if (v == nverbs) {
		*why = "unknown action (expected attach, detach or alive)";
		return PARSE_ERROR;
	}
	req->action = verbs[v];
	return parse_operand(f[2], flen[2], req, why) ? PARSE_COMMAND :
	    PARSE_ERROR;
}

/* line[0..len) is one line without its '\n'; it may hold any bytes.
 * *req is written only when the line is a command. */
static inline enum parse_result
parse_line(const char *line, size_t len, struct request *req, const char **why)
{
	const char *f[MAX_FIELDS];
	size_t flen[MAX_FIELDS];
	size_t nf = split_fields(line, len, f, flen, MAX_FIELDS);
	struct request r;
	enum parse_result res;

	if (nf == 0)
		return PARSE_EMPTY;
	if (nf == 2 && field_is(f[0], flen[0], "reply") &&
	    !field_is(f[1], flen[1], "release")) {
		if (field_is(f[1], flen[1], "on"))
			return PARSE_REPLY_ON;
		if (field_is(f[1], flen[1], "off"))
			return PARSE_REPLY_OFF;
		*why = "expected 'reply on' or 'reply off'";
		return PARSE_ERROR;
	}
	memset(&r, 0, sizeof(r));
	if ((res = parse_fields(f, flen, nf, &r, why)) == PARSE_COMMAND)
		*req = r;
	return res;
}

static inline int	fit(int, size_t);

/* The request as a line says it, without the '\n': "VM attach DEVICE",
 * "VM alive SECONDS", "VM release" or "release". */
static inline const char *
request_text(char buf[REQUEST_TEXT], const struct request *req)
{
	char dev[DEVICE_TEXT];
	const char *act = action_name(req->action);

	if ((req->action == ACT_RELEASE && req->vm[0] == '\0') ||
	    req->action == ACT_STATUS || req->action == ACT_DOMAINS)
		snprintf(buf, REQUEST_TEXT, "%s", act);
	else if (req->action == ACT_WATCH)
		snprintf(buf, REQUEST_TEXT, "%s on", act);
	else if (req->action == ACT_RELEASE)
		snprintf(buf, REQUEST_TEXT, "%s %s", req->vm, act);
	else if (req->action == ACT_ALIVE)
		snprintf(buf, REQUEST_TEXT, "%s %s %u", req->vm, act,
		    req->lease);
	else
		snprintf(buf, REQUEST_TEXT, "%s %s %s", req->vm, act,
		    device_text(&req->device, dev));
	return buf;
}

/* The request's line, as a client sends it; its length, or -1. */
static inline int
request_format(char *buf, size_t size, const struct request *req)
{
	char text[REQUEST_TEXT];

	return fit(snprintf(buf, size, "%s\n", request_text(text, req)), size);
}

/* ------------------------------------------------------------------ */
/* The configuration file: "allow VID:PID" lines, '#' comments.        */

enum config_result {
	CONFIG_NOTHING,		/* blank or comment */
	CONFIG_ALLOW,		/* device filled in */
	CONFIG_ASSIGN,		/* vm and device filled in */
	CONFIG_ERROR,		/* *why says what is wrong */
};

/* A line of the daemon's configuration file: "allow VID:PID[@PORT]",
 * "assign VM VID:PID[@PORT]", blank, or a comment. */
static inline enum config_result
config_line(const char *line, size_t len, struct usb_device *device,
    char vm[MAX_VM_NAME + 1], const char **why)
{
	const char *hash = memchr(line, '#', len);
	const char *f[4];
	size_t flen[4], nf;
	bool assign;

	if (hash != NULL)
		len = (size_t)(hash - line);
	nf = split_fields(line, len, f, flen, 4);
	if (nf == 0)
		return CONFIG_NOTHING;
	assign = nf == 3 && field_is(f[0], flen[0], "assign");
	if (!assign && (nf != 2 || !field_is(f[0], flen[0], "allow"))) {
		*why = "expected 'allow VID:PID[@PORT]' or 'assign VM "
		    "VID:PID[@PORT]'";
		return CONFIG_ERROR;
	}
	if (assign && !vm_name_copy(vm, f[1], flen[1])) {
		*why = "invalid domain name (letters, digits and ._+- only, "
		    "not starting with -)";
		return CONFIG_ERROR;
	}
	if (!device_parse(f[nf - 1], flen[nf - 1], device)) {
		*why = "invalid device (expected VID:PID, four hex digits "
		    "each, or VID:PID@PORT)";
		return CONFIG_ERROR;
	}
	return assign ? CONFIG_ASSIGN : CONFIG_ALLOW;
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

	/* strtol would take blanks, a sign or "0x" first: the kernel's
	 * text has none. */
	if (!(base == 16 ? is_hex(buf[0]) : buf[0] >= '0' && buf[0] <= '9'))
		return -1;
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
xml_format(char *buf, size_t size, const struct usb_device *device,
    const struct usb_addr *addr)
{
	char where[48] = "";

	if (addr != NULL)
		snprintf(where, sizeof(where), "<address bus='%u' device='%u'/>",
		    addr->bus, addr->dev);
	return fit(snprintf(buf, size,
	    "<hostdev mode='subsystem' type='usb'><source>"
	    "<vendor id='0x%04x'/><product id='0x%04x'/>%s"
	    "</source></hostdev>\n", device->vendor & 0xffff,
	    device->product & 0xffff, where), size);
}

/* "ok REQUEST\n", or with a reason "error REQUEST: REASON\n"; the
 * reason is escaped and cut to MAX_REASON bytes. */
static inline int
reply_format(char *buf, size_t size, const struct request *req,
    const char *reason)
{
	char esc[MAX_REASON + 1], text[REQUEST_TEXT];

	request_text(text, req);
	if (reason == NULL)
		return fit(snprintf(buf, size, "ok %s\n", text), size);
	escape_text(esc, sizeof(esc), reason, strlen(reason));
	return fit(snprintf(buf, size, "error %s: %s\n", text, esc), size);
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

/* Reads the daemon's answer to req (a line without its '\n'). */
static inline enum reply_kind
reply_parse(const char *line, const struct request *req, const char **reason)
{
	char text[REQUEST_TEXT];
	size_t n = strlen(request_text(text, req));

	if (strncmp(line, "ok ", 3) == 0 && strcmp(line + 3, text) == 0)
		return REPLY_OK;
	if (strncmp(line, "error: ", 7) == 0) {
		*reason = line + 7;
		return REPLY_ERROR;
	}
	if (strncmp(line, "error ", 6) == 0 &&
	    strncmp(line + 6, text, n) == 0 &&
	    strncmp(line + 6 + n, ": ", 2) == 0) {
		*reason = line + 6 + n + 2;
		return REPLY_ERROR;
	}
	return REPLY_UNEXPECTED;
}

/* ------------------------------------------------------------------ */
/* libvirt's words that we match in virsh's errors, and what the daemon */
/* adds to a reason when two devices share the ids asked for.          */

#define LIBVIRT_MULTIPLE	"Multiple USB devices"	/* the ids name more */
#define LIBVIRT_IN_USE		"in use by"		/* another domain's */
#define LIBVIRT_NOT_FOUND	"Did not find USB device"
#define NAME_ONE		"; name one, as "	/* DEVICE@PORT; ... */
#define PORTS_LISTED		8	/* ports named in such a reason */

/*
 * Adds to reason how to name one of the devices with d's ids and where
 * they are, from their ports (sorted; "more" when there were others):
 * "; name one, as VID:PID@PORT; it is at ports A, B". The form comes
 * first, so that a long list is what gets cut.
 */
static inline void
reason_add_ports(char *reason, size_t size, const struct usb_device *d,
    const char (*ports)[PORT_MAX + 1], size_t n, bool more)
{
	char list[PORTS_LISTED * (PORT_MAX + 2)];
	size_t len = 0, rlen = strlen(reason);

	if (n == 0)
		return;
	list[0] = '\0';
	for (size_t i = 0; i < n && i < PORTS_LISTED && len < sizeof(list);
	    i++) {
		int wrote = snprintf(list + len, sizeof(list) - len, "%s%.*s",
		    i > 0 ? ", " : "", PORT_MAX, ports[i]);

		len += wrote > 0 ? (size_t)wrote : 0;
	}
	snprintf(reason + rlen, size - rlen, NAME_ONE "%04x:%04x@%s; it is at "
	    "ports %s%s", d->vendor & 0xffff, d->product & 0xffff, ports[0],
	    list, more ? " and more" : "");
}

/* The device a reason of reason_add_ports() names one as, if any. */
static inline bool
reason_named(const char *reason, struct usb_device *d)
{
	const char *s = strstr(reason, NAME_ONE), *end;

	if (s == NULL)
		return false;
	s += sizeof(NAME_ONE) - 1;
	return (end = strchr(s, ';')) != NULL &&
	    device_parse(s, (size_t)(end - s), d) && device_has_port(d);
}

/* ------------------------------------------------------------------ */
/* libvirt's lifecycle events, as "virsh event --event lifecycle" prints */
/* them, and the ledger's lines: what the daemon moved, and where.     */

/* The lifecycle events the daemon acts on; the rest are VM_EVENT_OTHER. */
enum vm_event {
	VM_EVENT_OTHER,
	VM_EVENT_STARTED,
	VM_EVENT_SUSPENDED,	/* paused: by the host, or before a crash */
	VM_EVENT_RESUMED,
	VM_EVENT_STOPPED,	/* its QEMU is gone */
	VM_EVENT_CRASHED,
	VM_EVENT_PMSUSPENDED,
};

#define EVENT_PREFIX	"event 'lifecycle' for domain '"

/*
 * One line of virsh's event stream (without its '\n'): for a lifecycle
 * event of a domain whose name we accept, "event 'lifecycle' for domain
 * 'NAME': EVENT DETAIL", fills vm and *ev and returns true. Any other
 * line, well formed or not (other events, a name we never act on, bytes
 * that are no text), is false: the daemon ignores it.
 */
static inline bool
event_parse(const char *line, size_t len, char vm[MAX_VM_NAME + 1],
    enum vm_event *ev)
{
	static const struct { const char *word; enum vm_event ev; } words[] = {
		{ "Started", VM_EVENT_STARTED },
		{ "Suspended", VM_EVENT_SUSPENDED },
		{ "Resumed", VM_EVENT_RESUMED },
		{ "Stopped", VM_EVENT_STOPPED },
		{ "Crashed", VM_EVENT_CRASHED },
		{ "PMSuspended", VM_EVENT_PMSUSPENDED },
	};
	const size_t plen = sizeof(EVENT_PREFIX) - 1;
	const char *name, *end, *word;
	size_t nlen, wlen;

	if (!is_text(line, len) || len < plen ||
	    memcmp(line, EVENT_PREFIX, plen) != 0)
		return false;
	name = line + plen;
	if ((end = memchr(name, '\'', len - plen)) == NULL)
		return false;
	nlen = (size_t)(end - name);
	if ((size_t)(line + len - end) < 4 || memcmp(end, "': ", 3) != 0 ||
	    !vm_name_copy(vm, name, nlen))
		return false;
	word = end + 3;
	for (wlen = 0; word + wlen < line + len && word[wlen] != ' '; wlen++)
		;
	*ev = VM_EVENT_OTHER;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (field_is(word, wlen, words[i].word))
			*ev = words[i].ev;
	return true;
}

/*
 * A device the daemon attached, as its ledger keeps it: the domain, the
 * device as it was asked for (with its port if it was named by one),
 * the port it sat at, its bus and device number then (0 if unknown) and
 * when, in seconds since the epoch. One line of the ledger's file:
 * "VM VID:PID[@PORT] PORT|- BUS DEV SINCE".
 */
struct ledger_entry {
	char			vm[MAX_VM_NAME + 1];
	struct usb_device	device;
	char			at[PORT_MAX + 1];	/* "": not known */
	struct usb_addr		addr;
	long long		since;
	unsigned long long	serial;	/* serial_hash() of its serial
					 * number; 0: none known */
};

/* Version 2 adds the serial, when known: a line of version 1 is one of
 * version 2 without it. */
#define LEDGER_HEADER	"# usbserver ledger 2"
#define LEDGER_LINE	(MAX_VM_NAME + DEVICE_MAX + PORT_MAX + 60)

/* A device's serial number (its string descriptor, as sysfs has it), as
 * the ledger keeps it: FNV-1a, 64 bits, never 0. */
static inline unsigned long long
serial_hash(const char *s, size_t len)
{
	unsigned long long h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	return h != 0 ? h : 1;
}
#define LEDGER_SINCE_MAX 253402300799LL		/* 9999-12-31 */

/* One line of the ledger's file, strictly: false for anything else. */
static inline bool
ledger_parse(const char *line, size_t len, struct ledger_entry *e)
{
	const char *f[8];
	size_t flen[8];
	long long bus, dev, since;
	size_t nf;

	if (!is_text(line, len) || ((nf = split_fields(line, len, f, flen,
	    8)) != 6 && nf != 7) ||
	    !vm_name_copy(e->vm, f[0], flen[0]) ||
	    !device_parse(f[1], flen[1], &e->device) ||
	    !(field_is(f[2], flen[2], "-") || valid_port(f[2], flen[2])) ||
	    (bus = decimal_parse(f[3], flen[3], 255)) < 0 ||
	    (dev = decimal_parse(f[4], flen[4], 255)) < 0 ||
	    (since = decimal_parse(f[5], flen[5], LEDGER_SINCE_MAX)) < 0 ||
	    (bus == 0) != (dev == 0))
		return false;
	e->serial = 0;
	if (nf == 7) {
		if (flen[6] != 16)
			return false;
		for (size_t i = 0; i < 16; i++) {
			char c = f[6][i];

			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
				return false;
			e->serial = e->serial << 4 | hex_value(c);
		}
		if (e->serial == 0)
			return false;
	}
	if (field_is(f[2], flen[2], "-"))
		e->at[0] = '\0';
	else {
		memcpy(e->at, f[2], flen[2]);
		e->at[flen[2]] = '\0';
	}
	e->addr.bus = (unsigned)bus;
	e->addr.dev = (unsigned)dev;
	e->since = since;
	return true;
}

/* The ledger's line for e, with its '\n'; its length, or -1. */
static inline int
ledger_format(char *buf, size_t size, const struct ledger_entry *e)
{
	char dev[DEVICE_TEXT];

	char serial[20] = "";

	if (e->serial != 0)
		snprintf(serial, sizeof(serial), " %016llx", e->serial);
	return fit(snprintf(buf, size, "%s %s %s %u %u %lld%s\n", e->vm,
	    device_text(&e->device, dev), e->at[0] != '\0' ? e->at : "-",
	    e->addr.bus, e->addr.dev, e->since, serial), size);
}

/*
 * What "status" answers, before its "ok status": a line per ledger
 * entry, "ledger " and the entry as its file has it, and a line per
 * lease, "lease VM SECONDS LEFT", LEFT the whole seconds before it
 * lapses.
 */
#define STATUS_LEDGER	"ledger "
#define STATUS_LEASE	"lease "

/* And a line per assign line of the daemon's configuration file,
 * "assign VM DEVICE attached" when the ledger has a device of VM with
 * its ids, else "assign VM DEVICE waiting". */
#define STATUS_ASSIGN	"assign "

static inline int
assign_format(char *buf, size_t size, const char *vm,
    const struct usb_device *d, bool attached)
{
	char dev[DEVICE_TEXT];

	return fit(snprintf(buf, size, STATUS_ASSIGN "%s %s %s\n", vm,
	    device_text(d, dev), attached ? "attached" : "waiting"), size);
}

/* An assign line of "status" (after its "assign "), strictly. */
static inline bool
assign_parse(const char *line, size_t len, char vm[MAX_VM_NAME + 1],
    struct usb_device *d, bool *attached)
{
	const char *f[4];
	size_t flen[4];

	if (split_fields(line, len, f, flen, 4) != 3 ||
	    !vm_name_copy(vm, f[0], flen[0]) ||
	    !device_parse(f[1], flen[1], d))
		return false;
	*attached = field_is(f[2], flen[2], "attached");
	return *attached || field_is(f[2], flen[2], "waiting");
}

/* What "domains" answers, before its "ok domains": a line per running
 * domain, "domain NAME", in libvirt's order. */
#define DOMAINS_LINE	"domain "

/*
 * What a host client that said "watch on" is sent at each switch, when a
 * domain's devices in the ledger go from none to some ("guest": they
 * went to it) or from some to none ("host": all came back), whatever
 * moved them: "switched VM guest|host REASON DEVICE", DEVICE the one
 * whose move made the switch. REASON is a word: client (a host client's
 * line), guest (the guest's line), release, lease (it lapsed), crashed,
 * paused, suspended, stopped, gone, replug (the device came back, and
 * not to the domain), assign, daemon.
 */
#define SWITCHED_LINE	"switched "
#define SWITCH_REASON_MAX 16

struct switch_event {
	char			vm[MAX_VM_NAME + 1];
	bool			guest;		/* to the domain; else the host */
	char			reason[SWITCH_REASON_MAX + 1];
	struct usb_device	device;
};

static inline int
switch_format(char *buf, size_t size, const struct switch_event *ev)
{
	char dev[DEVICE_TEXT];

	return fit(snprintf(buf, size, SWITCHED_LINE "%s %s %s %s\n", ev->vm,
	    ev->guest ? "guest" : "host", ev->reason,
	    device_text(&ev->device, dev)), size);
}

/* A "switched" line (after its "switched "), strictly. */
static inline bool
switch_parse(const char *line, size_t len, struct switch_event *ev)
{
	const char *f[5];
	size_t flen[5];

	if (split_fields(line, len, f, flen, 5) != 4 ||
	    !vm_name_copy(ev->vm, f[0], flen[0]) ||
	    flen[2] == 0 || flen[2] > SWITCH_REASON_MAX ||
	    !device_parse(f[3], flen[3], &ev->device))
		return false;
	for (size_t i = 0; i < flen[2]; i++)
		if (f[2][i] < 'a' || f[2][i] > 'z')
			return false;
	memcpy(ev->reason, f[2], flen[2]);
	ev->reason[flen[2]] = '\0';
	ev->guest = field_is(f[1], flen[1], "guest");
	return ev->guest || field_is(f[1], flen[1], "host");
}

static inline int
lease_format(char *buf, size_t size, const char *vm, unsigned seconds,
    unsigned left)
{
	return fit(snprintf(buf, size, STATUS_LEASE "%s %u %u\n", vm, seconds,
	    left), size);
}

/* A lease line of "status" (after its "lease "), strictly. */
static inline bool
lease_parse(const char *line, size_t len, char vm[MAX_VM_NAME + 1],
    unsigned *seconds, unsigned *left)
{
	const char *f[4];
	size_t flen[4];
	long long s, l;

	if (split_fields(line, len, f, flen, 4) != 3 ||
	    (s = decimal_parse(f[1], flen[1], MAX_LEASE)) < 1 ||
	    (l = decimal_parse(f[2], flen[2], MAX_LEASE)) < 0 ||
	    !vm_name_copy(vm, f[0], flen[0]))
		return false;
	*seconds = (unsigned)s;
	*left = (unsigned)l;
	return true;
}

/* ------------------------------------------------------------------ */
/* The kernel's uevents of USB devices, as NETLINK_KOBJECT_UEVENT       */
/* carries them: "ACTION@DEVPATH\0KEY=VALUE\0...\0". Whoever sent one,  */
/* its bytes are read as hostile.                                      */

#define UEVENT_MAX	8192	/* a message's bytes, at most */
#define UEVENT_FIELDS	64	/* its KEY=VALUE fields, at most */

enum uevent_action {
	UEVENT_ADD,
	UEVENT_REMOVE,
};

/* A USB device that came or went: where, what, and its address then. */
struct uevent {
	enum uevent_action	action;
	char			port[PORT_MAX + 1];	/* DEVPATH's last part */
	struct usb_device	device;		/* PRODUCT's vendor and product */
	struct usb_addr		addr;		/* BUSNUM, DEVNUM */
	unsigned long long	seqnum;
};

/* A whole field of 1 to digits hex digits (base 16) or decimal digits
 * (base 10, leading zeros allowed, as the kernel pads BUSNUM) of at
 * most max; -1 for anything else. */
static inline long
uevent_number(const char *s, size_t len, int base, size_t digits, long max)
{
	long v = 0;

	if (len == 0 || len > digits)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (base == 16 ? !is_hex(s[i]) : !(s[i] >= '0' && s[i] <= '9'))
			return -1;
		v = v * base + (long)(base == 16 ? hex_value(s[i]) :
		    (unsigned)(s[i] - '0'));
	}
	return v <= max ? v : -1;
}

/* PRODUCT="VID/PID/BCD", each hex without 0x or padding, as the kernel
 * writes them. */
static inline bool
uevent_product(const char *s, size_t len, struct usb_device *d)
{
	const char *a = memchr(s, '/', len), *b;
	long vid, pid;

	if (a == NULL || (b = memchr(a + 1, '/', len - (size_t)(a - s) - 1)) ==
	    NULL || (vid = uevent_number(s, (size_t)(a - s), 16, 4, 0xffff)) < 0 ||
	    (pid = uevent_number(a + 1, (size_t)(b - a - 1), 16, 4, 0xffff)) < 0 ||
	    uevent_number(b + 1, len - (size_t)(b - s) - 1, 16, 4, 0xffff) < 0)
		return false;
	memset(d, 0, sizeof(*d));
	d->vendor = (unsigned)vid;
	d->product = (unsigned)pid;
	return true;
}

/* The value of key among the fields f[0..n) (each "KEY=VALUE"): its
 * length, or -1 if it is not there or is there twice. */
static inline long
uevent_value(const char *const *f, const size_t *flen, size_t n,
    const char *key, const char **val)
{
	size_t k = strlen(key);
	long found = -1;

	for (size_t i = 0; i < n; i++)
		if (flen[i] > k && memcmp(f[i], key, k) == 0 && f[i][k] == '=') {
			if (found != -1)
				return -1;
			*val = f[i] + k + 1;
			found = (long)(flen[i] - k - 1);
		}
	return found;
}

/*
 * One message of the kernel's, msg[0..len): true for a USB device's
 * (SUBSYSTEM=usb, DEVTYPE=usb_device, at a port: not a root hub) add or
 * remove, with ev filled in. Anything else is false: other actions,
 * subsystems and types, and whatever is not exactly a uevent (a field
 * without its NUL, bytes that are not text, a key twice, a header that
 * does not match its ACTION and DEVPATH, numbers out of range).
 */
static inline bool
uevent_parse(const char *msg, size_t len, struct uevent *ev)
{
	const char *f[UEVENT_FIELDS], *v = NULL, *at, *port;
	const char *act = NULL, *path = NULL;	/* (set when found) */
	size_t flen[UEVENT_FIELDS], n = 0, hlen;
	long alen, plen, l;
	long long seq;

	if (len == 0 || len > UEVENT_MAX || msg[len - 1] != '\0')
		return false;
	hlen = strlen(msg);
	if (!is_text(msg, hlen))
		return false;
	for (size_t i = hlen + 1; i < len; i += flen[n++] + 1) {
		if (n == UEVENT_FIELDS)
			return false;
		f[n] = msg + i;
		if (!is_text(f[n], flen[n] = strlen(msg + i)))
			return false;
	}
	if ((at = memchr(msg, '@', hlen)) == NULL ||
	    (alen = uevent_value(f, flen, n, "ACTION", &act)) < 0 ||
	    (size_t)alen != (size_t)(at - msg) || memcmp(act, msg, (size_t)alen) ||
	    (plen = uevent_value(f, flen, n, "DEVPATH", &path)) < 0 ||
	    (size_t)plen != hlen - (size_t)alen - 1 ||
	    memcmp(path, at + 1, (size_t)plen) != 0)
		return false;
	if (field_is(act, (size_t)alen, "add"))
		ev->action = UEVENT_ADD;
	else if (field_is(act, (size_t)alen, "remove"))
		ev->action = UEVENT_REMOVE;
	else
		return false;
	if ((l = uevent_value(f, flen, n, "SUBSYSTEM", &v)) < 0 ||
	    !field_is(v, (size_t)l, "usb") ||
	    (l = uevent_value(f, flen, n, "DEVTYPE", &v)) < 0 ||
	    !field_is(v, (size_t)l, "usb_device"))
		return false;
	for (port = path + plen; port > path && port[-1] != '/'; port--)
		;
	if (!valid_port(port, (size_t)(path + plen - port)) ||
	    (l = uevent_value(f, flen, n, "PRODUCT", &v)) < 0 ||
	    !uevent_product(v, (size_t)l, &ev->device) ||
	    (l = uevent_value(f, flen, n, "BUSNUM", &v)) < 0 ||
	    (l = uevent_number(v, (size_t)l, 10, 3, 255)) < 1)
		return false;
	ev->addr.bus = (unsigned)l;
	if ((l = uevent_value(f, flen, n, "DEVNUM", &v)) < 0 ||
	    (l = uevent_number(v, (size_t)l, 10, 3, 255)) < 1 ||
	    (alen = uevent_value(f, flen, n, "SEQNUM", &v)) < 0 ||
	    (seq = decimal_parse(v, (size_t)alen, 999999999999999999LL)) < 0)
		return false;
	ev->addr.dev = (unsigned)l;
	ev->seqnum = (unsigned long long)seq;
	memcpy(ev->port, port, (size_t)(path + plen - port));
	ev->port[path + plen - port] = '\0';
	return true;
}

/* ------------------------------------------------------------------ */
/* A domain's XML, as "virsh dumpxml" prints it: its USB hostdevs.     */
/* What a domain's owner wrote is in it too: any bytes. The XML must   */
/* end in a NUL, where the parser's strstr stops.                      */

#define XML_READ_MAX	(256 * 1024)	/* of one "virsh dumpxml" */
#define LIST_READ_MAX	8192		/* of one "virsh list --name" */

/* A USB device attached to a domain, from its XML. */
struct hostdev {
	struct usb_device	device;		/* its ids */
	int			bus, dev;	/* -1 until libvirt fills them in */
};

/* The value of attribute name in the tag starting at tag (up to '>'),
 * quoted either way; its length, or -1. */
static inline int
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
static inline long
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

/* The host's bus and device number of the hostdev from p to close: the
 * <address> inside its <source>; another <address> (type='usb' bus=
 * port=) is the guest's. -1 while libvirt has not said them. */
static inline void
hostdev_address(const char *p, const char *close, struct hostdev *h)
{
	const char *src, *src_end, *addr, *bv = NULL, *dv = NULL;
	long long bus, dev;
	int bk, dk;

	h->bus = h->dev = -1;
	if ((src = strstr(p, "<source")) == NULL || src >= close ||
	    (src_end = strstr(src, "</source>")) == NULL || src_end >= close ||
	    (addr = strstr(src, "<address ")) == NULL || addr >= src_end)
		return;
	bk = xml_attr(addr + 9, src_end, "bus", &bv);
	dk = xml_attr(addr + 9, src_end, "device", &dv);
	/* A number a USB bus or device can have, or none. */
	if (bk <= 0 || dk <= 0 ||
	    (bus = decimal_parse(bv, (size_t)bk, 255)) < 1 ||
	    (dev = decimal_parse(dv, (size_t)dk, 255)) < 1)
		return;
	h->bus = (int)bus;
	h->dev = (int)dev;
}

/* The USB host devices in a domain's XML (libvirt's own output): their
 * ids and, once attached, bus and device number. Returns how many. */
static inline int
hostdevs_parse(const char *xml, size_t len, struct hostdev *out, int max)
{
	const char *p = xml, *end = xml + len, *close, *v;
	long vid, pid;
	int n = 0;

	while (n < max && (p = strstr(p, "<hostdev ")) != NULL && p < end) {
		if ((close = strstr(p, "</hostdev>")) == NULL || close > end)
			break;
		if (xml_attr(p + 9, close, "type", &v) == 3 &&
		    strncmp(v, "usb", 3) == 0 &&
		    (vid = xml_id(p, close, "<vendor ")) >= 0 &&
		    (pid = xml_id(p, close, "<product ")) >= 0) {
			memset(&out[n].device, 0, sizeof(out[n].device));
			out[n].device.vendor = (unsigned)vid;
			out[n].device.product = (unsigned)pid;
			hostdev_address(p, close, &out[n++]);
		}
		p = close;
	}
	return n;
}

/*
 * The USB hostdevs of a whole domain's XML, as libvirt formats it: from
 * its <devices> section only, the last line "  <devices>". What the
 * domain's owner writes into <metadata> comes before it (libvirt prints
 * metadata first), and may look like a devices section, but hostdevs
 * written there are not read. -1 when there is no such section.
 */
static inline int
domain_hostdevs_parse(const char *xml, size_t len, struct hostdev *out,
    int max)
{
	static const char head[] = "\n  <devices>", tail[] = "\n  </devices>";
	const char *start = NULL, *end;

	for (const char *p = xml; (p = strstr(p, head)) != NULL &&
	    p < xml + len; p++)
		start = p;
	if (start == NULL || (end = strstr(start, tail)) == NULL ||
	    end >= xml + len)
		return -1;
	return hostdevs_parse(start, (size_t)(end - start), out, max);
}

/* ================================================================== */
/* Part 2: I/O that both programs do, done once. Nothing above uses    */
/* it, so Part 1 stays pure for the fuzzers.                           */

#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#define FILE_MAX	65536	/* largest configuration file read */
#define RUN_READS	16	/* reads of a child's output between deadline
				 * checks */
#define RUN_POLL_MS	50	/* checking on a child without a pidfd */

static inline int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* Trusted files: what decides what may happen must be root's or ours. */

enum trust {
	TRUSTED,
	TRUST_TYPE,		/* not of the type asked for */
	TRUST_OWNER,		/* neither root's nor ours */
	TRUST_WRITABLE,		/* others may write to it (a directory: and
				 * it is not sticky) */
};

/* Could only root and we have made or changed what st describes? type is
 * S_IFREG or S_IFDIR. */
static inline enum trust
file_trust(const struct stat *st, mode_t type)
{
	if ((st->st_mode & S_IFMT) != type)
		return TRUST_TYPE;
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return TRUST_OWNER;
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) &&
	    !(type == S_IFDIR && (st->st_mode & S_ISVTX)))
		return TRUST_WRITABLE;
	return TRUSTED;
}

/* ------------------------------------------------------------------ */
/* Small files, read whole, then a line at a time.                     */

/*
 * Reads the file path (at most size bytes; a larger one is an error,
 * EFBIG) into buf, and its status into st; with regular, anything but a
 * regular file is an error too, EINVAL. O_NONBLOCK: a FIFO put there
 * must not hang us. Its length, or -1 with errno.
 */
static inline ssize_t
file_read(const char *path, char *buf, size_t size, struct stat *st,
    bool regular)
{
	size_t len = 0;
	ssize_t n = 0;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) == -1)
		return -1;
	if (fstat(fd, st) == -1)
		goto fail;
	if (regular && !S_ISREG(st->st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	while (len < size && (n = read(fd, buf + len, size - len)) > 0)
		len += (size_t)n;
	if (n == -1)
		goto fail;
	if (len == size) {
		errno = EFBIG;
		goto fail;
	}
	close(fd);
	return (ssize_t)len;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

/* The next line of buf[0..len) from *at: its start and length, without
 * its '\n'; false after the last. */
static inline bool
text_line(const char *buf, size_t len, size_t *at, const char **line,
    size_t *llen)
{
	const char *nl;

	if (*at >= len)
		return false;
	*line = buf + *at;
	nl = memchr(*line, '\n', len - *at);
	*llen = nl != NULL ? (size_t)(nl - *line) : len - *at;
	*at += *llen + 1;
	return true;
}

/* ------------------------------------------------------------------ */
/* sysfs: a USB device's directory and its attributes.                 */

/* The directory name (relative to the directory at, or AT_FDCWD), as a
 * descriptor; -1 if it is none. */
static inline int
sysfs_dir(int at, const char *name)
{
	return openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Attribute name of the device directory dfd as it is, cut to size and
 * NUL-terminated; its length, or -1 if there is none. */
static inline ssize_t
sysfs_read(int dfd, const char *name, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	if ((fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK)) == -1)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* The first line of a text attribute (a descriptor string); its length,
 * or -1 if there is none. */
static inline ssize_t
sysfs_attr(int dfd, const char *name, char *buf, size_t size)
{
	if (sysfs_read(dfd, name, buf, size) < 0)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	return (ssize_t)strlen(buf);
}

/* A number of attribute name, as sysfs_number() reads it: in base (16
 * for ids, 10 for bus and device numbers), at most max; -1 if there is
 * none. */
static inline long
sysfs_attr_number(int dfd, const char *name, int base, long max)
{
	char buf[16];

	return sysfs_read(dfd, name, buf, sizeof(buf)) < 0 ? -1 :
	    sysfs_number(buf, base, max);
}

/* The serial number of the device directory dfd, as the ledger keeps
 * it (serial_hash()); 0 when it has none. */
static inline unsigned long long
sysfs_serial(int dfd)
{
	char serial[256];
	ssize_t n = sysfs_attr(dfd, "serial", serial, sizeof(serial));

	return n > 0 ? serial_hash(serial, (size_t)n) : 0;
}

/* The ids of the device directory dfd (no port); false without them. */
static inline bool
sysfs_ids(int dfd, struct usb_device *d)
{
	long v = sysfs_attr_number(dfd, "idVendor", 16, 0xffff);
	long p = sysfs_attr_number(dfd, "idProduct", 16, 0xffff);

	if (v < 0 || p < 0)
		return false;
	d->vendor = (unsigned)v;
	d->product = (unsigned)p;
	d->port[0] = '\0';
	return true;
}

/* ------------------------------------------------------------------ */
/* Running a program (virsh) with a deadline.                          */

enum run_outcome {
	RUN_OK,			/* exit status 0 */
	RUN_FAILED,		/* non-zero exit, or killed by a signal */
	RUN_TIMED_OUT,		/* killed at the deadline */
	RUN_NORUN,		/* could not be started */
};

struct run {
	/* What to run: */
	char *const	*argv;		/* argv[0]: a path, or with search a
					 * name looked up on PATH */
	char *const	*envp;
	int		 timeout_s;
	bool		 search;
	bool		 own_stderr;	/* its stderr is ours, not read: for a
					 * person to see (usbctl) */
	char		*out;		/* what it writes is kept here */
	size_t		 outsize;	/* (out may be NULL: kept nowhere) */
	/* What came of it: */
	size_t		 outlen;
	enum run_outcome outcome;
	int		 err;		/* RUN_NORUN: the errno */
	char		 reason[MAX_REASON + 1];	/* unless RUN_OK */
	/* Its last "error: " line, and its last other line. */
	struct linebuf	 line;
	char		 error[MAX_REASON + 1];
	char		 last[MAX_REASON + 1];
};

static inline void
run_line(struct run *r)
{
	const char *s;
	size_t n = line_trim(r->line.buf, r->line.len, &s);

	if (n == 0)
		return;
	if (n > 7 && strncmp(s, "error: ", 7) == 0)
		snprintf(r->error, sizeof(r->error), "%.*s", (int)(n - 7), s + 7);
	else
		snprintf(r->last, sizeof(r->last), "%.*s", (int)n, s);
}

/* Keeps what of p[0..n) r->out has room for. */
static inline void
run_keep(struct run *r, const char *p, size_t n)
{
	size_t keep = r->out != NULL && r->outlen < r->outsize ?
	    r->outsize - r->outlen : 0;

	if (keep > n)
		keep = n;
	if (keep > 0)
		memcpy(r->out + r->outlen, p, keep);
	r->outlen += keep;
}

static inline void
run_feed(struct run *r, const char *p, size_t n)
{
	run_keep(r, p, n);
	while (n > 0)
		if (line_feed(&r->line, &p, &n) != LINE_MORE)
			run_line(r);
}

/* Reads what is there, a bounded amount so that a writer that never
 * stops cannot keep us from the deadline: 0 at EOF, 1 if more may come. */
static inline int
run_drain(int fd, struct run *r)
{
	char buf[4096];
	ssize_t n;

	for (int i = 0; i < RUN_READS; i++) {
		n = read(fd, buf, sizeof(buf));
		if (n > 0)
			run_feed(r, buf, (size_t)n);
		else if (n == 0)
			return 0;
		else if (errno == EINTR)
			continue;
		else
			return errno == EAGAIN ? 1 : 0;
	}
	return 1;
}

/* Sets sa (initialized) as every child of ours starts: signals as at
 * boot, and with pgroup a process group of its own. 0, or an errno. */
static inline int
run_spawn_attrs(posix_spawnattr_t *sa, bool pgroup)
{
	sigset_t none, dfl;
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
	int e;

	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	if (pgroup)
		flags |= POSIX_SPAWN_SETPGROUP;
	if ((e = posix_spawnattr_setflags(sa, flags)) == 0 &&
	    (e = posix_spawnattr_setpgroup(sa, 0)) == 0 &&
	    (e = posix_spawnattr_setsigmask(sa, &none)) == 0)
		e = posix_spawnattr_setsigdefault(sa, &dfl);
	return e;
}

/* Starts r->argv: stdin from /dev/null, stdout (and unless own_stderr
 * stderr) into outfd, signals as at boot, in a process group of its own
 * when its output is all ours. 0, or an errno value. */
static inline int
run_spawn(const struct run *r, int outfd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t sa;
	int e;

	if ((e = posix_spawnattr_init(&sa)) != 0)
		return e;
	if ((e = posix_spawn_file_actions_init(&fa)) != 0) {
		posix_spawnattr_destroy(&sa);
		return e;
	}
	if ((e = run_spawn_attrs(&sa, !r->own_stderr)) == 0 &&
	    (e = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO,
	    "/dev/null", O_RDONLY, 0)) == 0 &&
	    (e = posix_spawn_file_actions_adddup2(&fa, outfd,
	    STDOUT_FILENO)) == 0 && (r->own_stderr ||
	    (e = posix_spawn_file_actions_adddup2(&fa, outfd,
	    STDERR_FILENO)) == 0))
		e = (r->search ? posix_spawnp : posix_spawn)(pid, r->argv[0],
		    &fa, &sa, r->argv, r->envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&sa);
	return e;
}

/*
 * Waits for pid until the deadline, reading its output from fd (closed
 * at EOF: *fd = -1). A pidfd tells us it exited even while a grandchild
 * holds the pipe; without one (kernels before 5.3, valgrind), we poll.
 * True, with its wait status, if it exited in time.
 */
static inline bool
run_wait(struct run *r, pid_t pid, int *fd, int64_t deadline, int *status)
{
	int pidfd = pidfd_open(pid, 0), wait_ms;
	bool reaped = false;
	int64_t left;

	while (!reaped && (left = deadline - now_ms()) > 0) {
		struct pollfd p[2] = {
			{ .fd = *fd, .events = POLLIN },
			{ .fd = pidfd, .events = POLLIN },
		};

		wait_ms = (int)(left > INT_MAX ? INT_MAX : left);
		if (pidfd == -1) {
			if (waitpid(pid, status, WNOHANG) == pid) {
				reaped = true;
				break;
			}
			if (wait_ms > RUN_POLL_MS)
				wait_ms = RUN_POLL_MS;
		}
		if (poll(p, 2, wait_ms) == -1 && errno != EINTR)
			break;
		if (p[0].revents != 0 && run_drain(*fd, r) == 0) {
			close(*fd);
			*fd = -1;
		}
		if (p[1].revents != 0) {
			while (waitpid(pid, status, 0) == -1 && errno == EINTR)
				;
			reaped = true;
		}
	}
	if (pidfd != -1)
		close(pidfd);
	return reaped;
}

/* Why it failed, from what it said or how it ended (the program is
 * virsh, or stands in for it). */
static inline void
run_reason(struct run *r, int status)
{
	if (r->error[0] != '\0')
		snprintf(r->reason, sizeof(r->reason), "%s", r->error);
	else if (r->last[0] != '\0')
		snprintf(r->reason, sizeof(r->reason), "%s", r->last);
	else if (WIFEXITED(status))
		snprintf(r->reason, sizeof(r->reason), "virsh exited with "
		    "status %d", WEXITSTATUS(status));
	else
		snprintf(r->reason, sizeof(r->reason), "virsh killed by signal "
		    "%d", WTERMSIG(status));
}

/*
 * Runs r->argv with r->envp, reading what it writes; at the deadline
 * kills it (its whole group, when it has one) and always reaps it. Fills
 * r's results: RUN_NORUN's err is an errno, for the caller to judge.
 */
static inline void
run_program(struct run *r)
{
	int pipefd[2] = { -1, -1 }, status = 0, e;
	int64_t deadline = now_ms() + (int64_t)r->timeout_s * 1000;
	pid_t pid;

	r->outlen = 0;
	r->outcome = RUN_NORUN;
	r->reason[0] = r->error[0] = r->last[0] = '\0';
	line_clear(&r->line);
	/* Only our end is non-blocking: the child's writes must not fail. */
	if (pipe2(pipefd, O_CLOEXEC) == -1 ||
	    fcntl(pipefd[0], F_SETFL, O_NONBLOCK) == -1) {
		r->err = errno;
		snprintf(r->reason, sizeof(r->reason), "cannot run %s: pipe: %m",
		    r->argv[0]);
		if (pipefd[0] != -1) {
			close(pipefd[0]);
			close(pipefd[1]);
		}
		return;
	}
	e = run_spawn(r, pipefd[1], &pid);
	close(pipefd[1]);
	if (e != 0) {
		r->err = errno = e;
		snprintf(r->reason, sizeof(r->reason), "cannot run %s: %m",
		    r->argv[0]);
		close(pipefd[0]);
		return;
	}
	if (!run_wait(r, pid, &pipefd[0], deadline, &status)) {
		/* Its group; itself if it left the group (or has none). */
		if (r->own_stderr || kill(-pid, SIGKILL) == -1)
			kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
		r->outcome = RUN_TIMED_OUT;
		snprintf(r->reason, sizeof(r->reason), "timed out");
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		r->outcome = RUN_OK;
	else
		r->outcome = RUN_FAILED;
	/* What is left; a grandchild may hold the pipe open, so we take
	 * what is there and do not wait for EOF. */
	if (pipefd[0] != -1) {
		run_drain(pipefd[0], r);
		close(pipefd[0]);
	}
	if (line_finish(&r->line) != LINE_MORE)
		run_line(r);
	if (r->outcome == RUN_FAILED)
		run_reason(r, status);
}

/* ------------------------------------------------------------------ */
/* virsh's shell: one command's answer, found between markers.         */

/*
 * A resident "virsh -q" reads commands on its stdin. It prints the prompt
 * SHELL_PROMPT and echoes each line it reads (readline does, even on a
 * pipe), then the command's output; errors go to stderr as "error: "
 * lines. Each command is followed by "echo --err M" and "echo M", where
 * M is a marker quoted so that the echoed input never holds it as it is
 * printed: stderr ends the command at the line "error: " MARK, stdout at
 * MARK, after the echoes of those two lines. A new shell's first command
 * is preceded by the same pair with a hello marker, so that what virsh
 * says as it starts is not taken for the command's, and a shell that
 * dies before its hello never ran the command.
 */
#define SHELL_PROMPT	"virsh # "
#define SHELL_MARK_MAX	40
#define SHELL_TAIL_MAX	(2 * (sizeof(SHELL_PROMPT) + 16 + SHELL_MARK_MAX))
#define SHELL_CHUNK	4096
#define SHELL_RECONNECTED "Reconnected to the hypervisor"

enum shell_state {
	SHELL_HELLO,		/* before the hello marker */
	SHELL_ECHO,		/* stdout: the echo of the command's line */
	SHELL_BODY,		/* its output (stdout), its errors (stderr) */
	SHELL_DONE,		/* the marker came */
	SHELL_LOST,		/* stdout did not end as it must: out of step */
};

struct shell_reply {
	char		 mark[SHELL_MARK_MAX + 1];	/* as printed */
	char		 hello[SHELL_MARK_MAX + 1];	/* "" when none */
	char		 tail[SHELL_TAIL_MAX];	/* the marker lines' echoes */
	size_t		 taillen;
	enum shell_state out, err;
	bool		 failed;	/* an "error: " line of the command's */
	char		 win[SHELL_CHUNK + SHELL_TAIL_MAX + SHELL_MARK_MAX];
	size_t		 winlen;	/* stdout held back: may be the tail */
	struct linebuf	 line;		/* stderr */
	struct run	*r;		/* output into r->out, errors into r */
};

/* The two lines that follow a command (or come first), for marker id:
 * "echo --err X""id" and "echo X""id", each ending in '\n'. */
static inline int
shell_marker_lines(char *buf, size_t size, const char *id)
{
	return fit(snprintf(buf, size, "echo --err U\"\"%s\necho U\"\"%s\n",
	    id, id), size);
}

/* Starts r's answer from the shell, for the marker id (and hello, a new
 * shell's, or NULL). -1 when an id is too long. */
static inline int
shell_reply_start(struct shell_reply *s, struct run *r, const char *id,
    const char *hello)
{
	memset(s, 0, sizeof(*s));
	s->r = r;
	r->outlen = 0;
	r->reason[0] = r->error[0] = r->last[0] = '\0';
	if (fit(snprintf(s->mark, sizeof(s->mark), "U%s", id),
	    sizeof(s->mark)) < 0 || (hello != NULL &&
	    fit(snprintf(s->hello, sizeof(s->hello), "U%s", hello),
	    sizeof(s->hello)) < 0))
		return -1;
	if (fit(snprintf(s->tail, sizeof(s->tail), SHELL_PROMPT "echo --err "
	    "U\"\"%s\n" SHELL_PROMPT "echo U\"\"%s\n", id, id),
	    sizeof(s->tail)) < 0)
		return -1;
	s->taillen = strlen(s->tail);
	s->out = s->err = hello != NULL ? SHELL_HELLO : SHELL_ECHO;
	if (s->err == SHELL_ECHO)
		s->err = SHELL_BODY;
	line_clear(&s->line);
	return 0;
}

static inline void
shell_drop(struct shell_reply *s, size_t n)
{
	memmove(s->win, s->win + n, s->winlen - n);
	s->winlen -= n;
}

/* What s->win holds, as far as it goes. */
static inline void
shell_out_step(struct shell_reply *s)
{
	size_t marklen = strlen(s->mark), hellolen = strlen(s->hello), at;
	const char *f;

	for (;;)
		switch (s->out) {
		case SHELL_HELLO:
			f = memmem(s->win, s->winlen, s->hello, hellolen);
			if (f == NULL) {
				if (s->winlen >= hellolen)
					shell_drop(s, s->winlen - hellolen + 1);
				return;
			}
			shell_drop(s, (size_t)(f - s->win) + hellolen);
			s->out = SHELL_ECHO;
			break;
		case SHELL_ECHO:
			f = memchr(s->win, '\n', s->winlen);
			shell_drop(s, f == NULL ? s->winlen :
			    (size_t)(f - s->win) + 1);
			if (f == NULL)
				return;
			s->out = SHELL_BODY;
			break;
		case SHELL_BODY:
			f = memmem(s->win, s->winlen, s->mark, marklen);
			if (f == NULL) {
				at = s->taillen + marklen - 1;
				if (s->winlen > at) {
					run_keep(s->r, s->win, s->winlen - at);
					shell_drop(s, s->winlen - at);
				}
				return;
			}
			at = (size_t)(f - s->win);
			if (at < s->taillen || memcmp(s->win + at - s->taillen,
			    s->tail, s->taillen) != 0) {
				s->out = SHELL_LOST;
				return;
			}
			run_keep(s->r, s->win, at - s->taillen);
			s->winlen = 0;	/* the next prompt, nothing else */
			s->out = SHELL_DONE;
			return;
		case SHELL_DONE:
		case SHELL_LOST:
			s->winlen = 0;
			return;
		}
}

/* Bytes the shell wrote on its stdout. */
static inline void
shell_feed_out(struct shell_reply *s, const char *p, size_t n)
{
	while (n > 0 && s->out != SHELL_DONE && s->out != SHELL_LOST) {
		size_t take = n < SHELL_CHUNK ? n : SHELL_CHUNK;

		memcpy(s->win + s->winlen, p, take);
		s->winlen += take;
		p += take;
		n -= take;
		shell_out_step(s);
	}
}

/* A whole line of the shell's stderr. */
static inline void
shell_err_line(struct shell_reply *s)
{
	struct run *r = s->r;
	const char *l;
	size_t n = line_trim(s->line.buf, s->line.len, &l);
	bool error = n >= 7 && strncmp(l, "error: ", 7) == 0;
	const char *text = error ? l + 7 : l;
	size_t len = error ? n - 7 : n;

	if (n == 0 || s->line.overlong)
		return;
	if (s->err == SHELL_HELLO) {
		if (error && len == strlen(s->hello) &&
		    memcmp(text, s->hello, len) == 0)
			s->err = SHELL_BODY;
		return;
	}
	if (error && len == strlen(s->mark) && memcmp(text, s->mark, len) == 0)
		s->err = SHELL_DONE;
	else if (error && len == strlen(SHELL_RECONNECTED) &&
	    memcmp(text, SHELL_RECONNECTED, len) == 0)
		return;		/* it lost libvirtd, and found it again */
	else if (error) {
		s->failed = true;
		snprintf(r->error, sizeof(r->error), "%.*s", (int)len, text);
	} else
		snprintf(r->last, sizeof(r->last), "%.*s", (int)len, text);
}

/* Bytes the shell wrote on its stderr. */
static inline void
shell_feed_err(struct shell_reply *s, const char *p, size_t n)
{
	while (n > 0 && s->err != SHELL_DONE)
		if (line_feed(&s->line, &p, &n) != LINE_MORE)
			shell_err_line(s);
}

/* Both markers came: the command's answer is whole. */
static inline bool
shell_reply_done(const struct shell_reply *s)
{
	return s->out == SHELL_DONE && s->err == SHELL_DONE;
}

#endif /* USBSERVER_COMMON_H */
