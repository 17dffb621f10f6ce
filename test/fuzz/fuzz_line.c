/*
 * fuzz_line.c: libFuzzer target for what a client's bytes go through in
 * the daemon: line assembly from chunks of any size, the parser and its
 * validators, and the text made from what it accepted (XML, replies,
 * escaped log text). Besides crashes, it traps on a broken promise: an
 * accepted command with a name or device the validators refuse, a
 * document or reply that does not fit, escaped text that is not plain.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>

#include "../../common.h"

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

static void
check_plain(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		CHECK(s[i] >= 0x20 && s[i] < 0x7f);
}

/* What device_text gives: "vid:pid" in lower case, maybe "@" and a
 * port path of digits, '-' and '.'. */
static bool
device_ok(const char *d)
{
	size_t len = strlen(d);

	if (len < DEVICE_LEN || len > DEVICE_MAX || d[4] != ':')
		return false;
	for (size_t i = 0; i < DEVICE_LEN; i++)
		if (i != 4 && !((d[i] >= '0' && d[i] <= '9') ||
		    (d[i] >= 'a' && d[i] <= 'f')))
			return false;
	if (len == DEVICE_LEN)
		return true;
	return d[DEVICE_LEN] == '@' && strspn(d + DEVICE_LEN + 1,
	    "0123456789-.") == len - DEVICE_LEN - 1;
}

static void
one_line(const char *line, size_t len)
{
	static const struct usb_addr far = { 255, 127 };
	char xml[XML_MAX], reply[MAX_LINE + 1], esc[MAX_LINE * 4 + 1];
	struct request cmd;
	struct usb_device again;
	char dev[DEVICE_TEXT];
	const char *why = NULL, *reason;
	size_t n;
	int r;

	n = escape_text(esc, sizeof(esc), line, len);
	CHECK(n == strlen(esc));
	check_plain(esc, n);
	switch (parse_line(line, len, &cmd, &why)) {
	case PARSE_COMMAND:
		/* What names no device: its text parses back to itself. */
		if (cmd.action == ACT_RELEASE || cmd.action == ACT_STATUS ||
		    cmd.action == ACT_DOMAINS || cmd.action == ACT_ALIVE ||
		    cmd.action == ACT_WATCH) {
			char text[REQUEST_TEXT];
			struct request back;

			CHECK(cmd.vm[0] == '\0' ? cmd.action != ACT_ALIVE :
			    valid_vm_name(cmd.vm, strlen(cmd.vm)));
			CHECK(cmd.action != ACT_STATUS || cmd.vm[0] == '\0');
			CHECK(cmd.action != ACT_DOMAINS || cmd.vm[0] == '\0');
			CHECK(cmd.action != ACT_WATCH || cmd.vm[0] == '\0');
			CHECK(cmd.lease <= MAX_LEASE);
			request_text(text, &cmd);
			CHECK(parse_line(text, strlen(text), &back, &why) ==
			    PARSE_COMMAND && strcmp(back.vm, cmd.vm) == 0 &&
			    back.action == cmd.action && back.lease == cmd.lease);
			r = reply_format(reply, sizeof(reply), &cmd, line);
			CHECK(r > 0 && reply[r - 1] == '\n');
			break;
		}
		CHECK(valid_vm_name(cmd.vm, strlen(cmd.vm)));
		CHECK(device_ok(device_text(&cmd.device, dev)));
		/* The text parses back to the same device. */
		CHECK(device_parse(dev, strlen(dev), &again) &&
		    device_equal(&again, &cmd.device));
		CHECK(xml_format(xml, sizeof(xml), &cmd.device, NULL) > 0);
		CHECK(xml_format(xml, sizeof(xml), &cmd.device, &far) > 0);
		CHECK(reply_format(reply, sizeof(reply), &cmd, NULL) > 0);
		r = reply_format(reply, sizeof(reply), &cmd, line);
		CHECK(r > 0 && reply[r - 1] == '\n');
		check_plain(reply, (size_t)r - 1);
		reply[r - 1] = '\0';
		CHECK(reply_parse(reply, &cmd, &reason) == REPLY_ERROR);
		break;
	case PARSE_ERROR:
		CHECK(why != NULL);
		r = reply_format_invalid(reply, sizeof(reply), why);
		CHECK(r > 0);
		break;
	case PARSE_EMPTY:
	case PARSE_REPLY_ON:
	case PARSE_REPLY_OFF:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* The first byte sets the chunk size: lines arrive cut anywhere. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct linebuf lb;
	const char *p;
	size_t chunk, n, left;

	if (size == 0)
		return 0;
	chunk = (size_t)data[0] % 17 + 1;
	p = (const char *)data + 1;
	left = size - 1;
	line_clear(&lb);
	while (left > 0) {
		n = left < chunk ? left : chunk;
		left -= n;
		while (n > 0) {
			enum line_event ev = line_feed(&lb, &p, &n);

			CHECK(lb.len <= MAX_LINE);
			if (ev == LINE_READY)
				one_line(lb.buf, lb.len);
		}
	}
	if (line_finish(&lb) == LINE_READY)
		one_line(lb.buf, lb.len);
	return 0;
}
