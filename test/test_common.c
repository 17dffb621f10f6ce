/*
 * test_common.c: the pure protocol code of common.h: validators, line
 * assembly, the request parser, and the text both sides write and read.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* These tests hand the formatters buffers that are too small on purpose;
 * gcc sees it through the inlining and would call it a bug. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include "tests.h"
#include "../common.h"

/* A string literal and its length, NUL bytes inside included. */
#define LIT(s)		(s), (sizeof(s) - 1)

#define DEV		"046d:c52b"
#define SENTINEL	0x5a

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static bool
vm_name(const char *s)
{
	return valid_vm_name(s, strlen(s));
}

static bool
device(const char *s, char out[DEVICE_MAX + 1])
{
	return parse_device(s, strlen(s), out);
}

/* The device s names, parsed (it must parse). */
static const struct usb_device *
dev_of(const char *s)
{
	static struct usb_device d;

	ck_assert_msg(device_parse(s, strlen(s), &d), "'%s' does not parse", s);
	return &d;
}

/* Fills buf with n copies of c and a NUL. */
static char *
repeat(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

static void
command_init(struct request *cmd)
{
	memset(cmd, SENTINEL, sizeof(*cmd));
}

static bool
untouched(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] != SENTINEL)
			return false;
	return true;
}

/* line[0..len) must be PARSE_ERROR with a reason, and must leave
 * neither a VM name nor a device behind in the command. */
static void
expect_parse_error(const char *line, size_t len)
{
	struct request cmd;
	const char *why = NULL;
	char shown[4 * MAX_LINE + 1];

	command_init(&cmd);
	escape_text(shown, sizeof(shown), line, len);
	ck_assert_msg(parse_line(line, len, &cmd, &why) == PARSE_ERROR,
	    "'%s' is not PARSE_ERROR", shown);
	ck_assert_msg(why != NULL && why[0] != '\0',
	    "'%s' gives no reason", shown);
	ck_assert_msg(untouched(cmd.vm, sizeof(cmd.vm)),
	    "'%s' wrote a VM name", shown);
	ck_assert_msg(untouched((const char *)&cmd.device, sizeof(cmd.device)),
	    "'%s' wrote a device", shown);
}

static void
expect_command(const char *line, size_t len, const char *vm,
    enum action action, const char *dev)
{
	struct request cmd;
	const char *why = NULL;
	char text[DEVICE_TEXT];

	command_init(&cmd);
	ck_assert_int_eq(parse_line(line, len, &cmd, &why), PARSE_COMMAND);
	ck_assert_str_eq(cmd.vm, vm);
	ck_assert_int_eq(cmd.action, action);
	ck_assert_str_eq(device_text(&cmd.device, text), dev);
}

static enum parse_result
parse_only(const char *line, size_t len)
{
	struct request cmd;
	const char *why = NULL;

	command_init(&cmd);
	return parse_line(line, len, &cmd, &why);
}

static void
make_command(struct request *cmd, const char *vm, enum action action,
    const char *dev)
{
	memset(cmd, 0, sizeof(*cmd));
	strcpy(cmd->vm, vm);
	cmd->action = action;
	cmd->device = *dev_of(dev);
}

/* ------------------------------------------------------------------ */
/* valid_vm_name                                                       */

START_TEST(test_vm_name_plain_is_accepted)
{
	ck_assert(vm_name("win10"));
}
END_TEST

START_TEST(test_vm_name_letters_digits_dot_underscore_plus_dash_are_accepted)
{
	ck_assert(vm_name("abcdefghijklmnopqrstuvwxyz"));
	ck_assert(vm_name("ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
	ck_assert(vm_name("vm0123456789"));
	ck_assert(vm_name("a._+-z"));
	ck_assert(vm_name("."));
	ck_assert(vm_name("_"));
	ck_assert(vm_name("+"));
	ck_assert(vm_name("win-10_guest.2+x"));
}
END_TEST

START_TEST(test_vm_name_empty_is_rejected)
{
	ck_assert(!vm_name(""));
	ck_assert(!valid_vm_name("win10", 0));
}
END_TEST

START_TEST(test_vm_name_leading_dash_is_rejected)
{
	ck_assert(!vm_name("-"));
	ck_assert(!vm_name("-c"));
	ck_assert(!vm_name("--connect"));
	ck_assert(vm_name("c-"));
}
END_TEST

START_TEST(test_vm_name_of_max_length_is_accepted)
{
	char name[MAX_VM_NAME + 2];

	ck_assert(vm_name(repeat(name, 'a', MAX_VM_NAME)));
}
END_TEST

START_TEST(test_vm_name_over_max_length_is_rejected)
{
	char name[MAX_VM_NAME + 2];

	ck_assert(!vm_name(repeat(name, 'a', MAX_VM_NAME + 1)));
}
END_TEST

START_TEST(test_vm_name_slash_is_rejected)
{
	ck_assert(!vm_name("/"));
	ck_assert(!vm_name("a/b"));
	ck_assert(!vm_name("/etc"));
}
END_TEST

START_TEST(test_vm_name_path_traversal_is_rejected)
{
	ck_assert(!vm_name("../x"));
	ck_assert(!vm_name("../../etc/passwd"));
	ck_assert(!vm_name("x/.."));
}
END_TEST

START_TEST(test_vm_name_quotes_are_rejected)
{
	ck_assert(!vm_name("win'10"));
	ck_assert(!vm_name("win\"10"));
	ck_assert(!vm_name("win`10`"));
}
END_TEST

START_TEST(test_vm_name_markup_is_rejected)
{
	ck_assert(!vm_name("win<10"));
	ck_assert(!vm_name("win>10"));
	ck_assert(!vm_name("a&b"));
}
END_TEST

START_TEST(test_vm_name_blanks_are_rejected)
{
	ck_assert(!vm_name("win 10"));
	ck_assert(!vm_name("win\t10"));
	ck_assert(!vm_name("win10 "));
}
END_TEST

START_TEST(test_vm_name_nul_inside_is_rejected)
{
	ck_assert(!valid_vm_name(LIT("win\0" "10")));
	ck_assert(!valid_vm_name(LIT("win10\0")));
	ck_assert(!valid_vm_name(LIT("\0")));
}
END_TEST

START_TEST(test_vm_name_high_bytes_are_rejected)
{
	ck_assert(!vm_name("win\x80" "10"));
	ck_assert(!vm_name("win\xff"));
	ck_assert(!vm_name("\xc3\xa9t\xc3\xa9"));
}
END_TEST

START_TEST(test_vm_name_every_byte_outside_the_whitelist_is_rejected)
{
	const char *ok = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-";

	for (int b = 0; b < 256; b++) {
		char name[3] = { 'a', (char)b, 'z' };
		bool allowed = b != 0 && strchr(ok, b) != NULL;

		ck_assert_msg(valid_vm_name(name, sizeof(name)) == allowed,
		    "byte 0x%02x: expected %s", b,
		    allowed ? "accepted" : "rejected");
	}
}
END_TEST

/* ------------------------------------------------------------------ */
/* parse_device                                                        */

START_TEST(test_device_lower_case_is_kept)
{
	char out[DEVICE_MAX + 1];

	ck_assert(device("046d:c52b", out));
	ck_assert_str_eq(out, "046d:c52b");
}
END_TEST

START_TEST(test_device_upper_case_is_lowered)
{
	char out[DEVICE_MAX + 1];

	ck_assert(device("046D:C52B", out));
	ck_assert_str_eq(out, "046d:c52b");
	ck_assert(device("ABCD:EF01", out));
	ck_assert_str_eq(out, "abcd:ef01");
}
END_TEST

START_TEST(test_device_wrong_length_is_rejected)
{
	char out[DEVICE_MAX + 1];

	ck_assert(!device("", out));
	ck_assert(!device("046d:c52", out));
	ck_assert(!device("46d:c52b", out));
	ck_assert(!device("0046d:c52b", out));
	ck_assert(!parse_device("046d:c52b", DEVICE_LEN - 1, out));
}
END_TEST

START_TEST(test_device_missing_colon_is_rejected)
{
	char out[DEVICE_MAX + 1];

	ck_assert(!device("046d0c52b", out));
	ck_assert(!device("046d-c52b", out));
	ck_assert(!device("046dc52b:", out));
	ck_assert(!device(":046dc52b", out));
}
END_TEST

START_TEST(test_device_non_hex_is_rejected)
{
	char out[DEVICE_MAX + 1];

	ck_assert(!device("04g6:c52b", out));
	ck_assert(!device("046d:c52g", out));
	ck_assert(!device("046d:c5 b", out));
	ck_assert(!device("0x6d:c52b", out));
	ck_assert(!device("046d::52b", out));
}
END_TEST

START_TEST(test_device_extra_characters_are_rejected)
{
	char out[DEVICE_MAX + 1];

	ck_assert(!device("046d:c52b0", out));
	ck_assert(!device("046d:c52b ", out));
	ck_assert(!device("046d:c52b<", out));
	ck_assert(!device("046d:c52b:0000", out));
}
END_TEST

START_TEST(test_device_leading_dash_is_rejected)
{
	char out[DEVICE_MAX + 1];

	ck_assert(!device("-46d:c52b", out));
	ck_assert(!device("-046d:c52b", out));
	ck_assert(!device("--file", out));
}
END_TEST

START_TEST(test_device_nul_inside_is_rejected)
{
	char out[DEVICE_MAX + 1];

	ck_assert(!parse_device(LIT("046d:c5\0" "b"), out));
	ck_assert(!parse_device(LIT("\0" "46d:c52b"), out));
	ck_assert(!parse_device(LIT("046d\0c52b"), out));
}
END_TEST

/* sysfs's numbers: the kernel's text, one newline at most, in range. */
START_TEST(test_sysfs_number_takes_the_kernels_text_only)
{
	ck_assert_int_eq(sysfs_number("3\n", 10, 255), 3);
	ck_assert_int_eq(sysfs_number("255", 10, 255), 255);
	ck_assert_int_eq(sysfs_number("c52b\n", 16, 0xffff), 0xc52b);
	ck_assert_int_eq(sysfs_number("", 10, 255), -1);
	ck_assert_int_eq(sysfs_number("\n", 10, 255), -1);
	ck_assert_int_eq(sysfs_number("256\n", 10, 255), -1);
	ck_assert_int_eq(sysfs_number("-1", 10, 255), -1);
	ck_assert_int_eq(sysfs_number("3x", 10, 255), -1);
	ck_assert_int_eq(sysfs_number("3\n\n", 10, 255), -1);
	ck_assert_int_eq(sysfs_number("99999999999999999999", 10, 255), -1);
}
END_TEST

START_TEST(test_device_at_a_port_is_accepted)
{
	char out[DEVICE_MAX + 1];

	ck_assert(device("046D:C52B@1-2", out));
	ck_assert_str_eq(out, "046d:c52b@1-2");
	ck_assert(device("0627:0001@3-1.4.2", out));
	ck_assert_str_eq(out, "0627:0001@3-1.4.2");
	ck_assert(device("0627:0001@255-255.255.255.255.255.255.255", out));
	ck_assert_uint_eq(strlen(out), DEVICE_MAX);
	ck_assert(device("0627:0001@12-10.1", out));
	ck_assert_str_eq(dev_of(out)->port, "12-10.1");
	ck_assert(device_has_port(dev_of(out)));
	ck_assert(device("0627:0001", out));
	ck_assert(!device_has_port(dev_of(out)));
}
END_TEST

/* Only the kernel's names of devices: no interfaces, root hubs, zeros,
 * leading zeros, empty parts, more than 7 ports or numbers over 255. */
START_TEST(test_device_at_a_bad_port_is_rejected)
{
	static const char *const bad[] = {
		"046d:c52b@", "046d:c52b@1", "046d:c52b@1-", "046d:c52b@-2",
		"046d:c52b@usb1", "046d:c52b@1-2:1.0", "046d:c52b@0-1",
		"046d:c52b@1-0", "046d:c52b@01-2", "046d:c52b@1-02",
		"046d:c52b@1-2.", "046d:c52b@1-2..3", "046d:c52b@1.2",
		"046d:c52b@256-1", "046d:c52b@1-256", "046d:c52b@1-1000",
		"046d:c52b@1-1.1.1.1.1.1.1.1", "046d:c52b@1-2@1-3",
		"046d:c52b@1-2/../x", "046d:c52b@1-2 ", "046d:c52b@ 1-2",
		"046d:c52b@1--2", "046d@1-2", "@1-2",
	};
	char out[DEVICE_MAX + 1];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!device(bad[i], out), "'%s' accepted", bad[i]);
	ck_assert(!parse_device(LIT("046d:c52b@1-\0" "2"), out));
}
END_TEST

START_TEST(test_device_high_bytes_are_rejected)
{
	char out[DEVICE_MAX + 1];

	ck_assert(!device("046d:c52\xff", out));
	ck_assert(!device("\x80" "46d:c52b", out));
}
END_TEST

/* ------------------------------------------------------------------ */
/* line_feed / line_finish                                             */

START_TEST(test_line_in_one_chunk_is_ready)
{
	struct linebuf lb;
	const char *data = "win10 attach 046d:c52b\n";
	size_t n = strlen(data);

	line_clear(&lb);
	ck_assert_int_eq(line_feed(&lb, &data, &n), LINE_READY);
	ck_assert_str_eq(lb.buf, "win10 attach 046d:c52b");
	ck_assert_uint_eq(lb.len, strlen("win10 attach 046d:c52b"));
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_line_fed_byte_by_byte_comes_out_whole)
{
	struct linebuf lb;
	const char *text = "win10 attach 046d:c52b\n";
	size_t last = strlen(text) - 1;

	line_clear(&lb);
	for (size_t i = 0; i <= last; i++) {
		const char *data = text + i;
		size_t n = 1;

		ck_assert_int_eq(line_feed(&lb, &data, &n),
		    i == last ? LINE_READY : LINE_MORE);
		ck_assert_uint_eq(n, 0);
		ck_assert_ptr_eq(data, text + i + 1);
	}
	ck_assert_str_eq(lb.buf, "win10 attach 046d:c52b");
	ck_assert_uint_eq(lb.len, last);
}
END_TEST

START_TEST(test_line_two_in_one_chunk_come_out_one_at_a_time)
{
	struct linebuf lb;
	const char *text = "first line\nsecond\n";
	const char *data = text;
	size_t n = strlen(text);

	line_clear(&lb);
	ck_assert_int_eq(line_feed(&lb, &data, &n), LINE_READY);
	ck_assert_str_eq(lb.buf, "first line");
	ck_assert_uint_eq(lb.len, strlen("first line"));
	ck_assert_ptr_eq(data, text + strlen("first line\n"));
	ck_assert_uint_eq(n, strlen("second\n"));

	ck_assert_int_eq(line_feed(&lb, &data, &n), LINE_READY);
	ck_assert_str_eq(lb.buf, "second");
	ck_assert_uint_eq(lb.len, strlen("second"));
	ck_assert_ptr_eq(data, text + strlen(text));
	ck_assert_uint_eq(n, 0);

	ck_assert_int_eq(line_finish(&lb), LINE_MORE);
}
END_TEST

START_TEST(test_line_partial_then_rest_is_ready)
{
	struct linebuf lb;
	const char *data = "win10 att";
	size_t n = strlen(data);

	line_clear(&lb);
	ck_assert_int_eq(line_feed(&lb, &data, &n), LINE_MORE);
	ck_assert_uint_eq(n, 0);
	data = "ach 046d:c52b\nnext";
	n = strlen(data);
	ck_assert_int_eq(line_feed(&lb, &data, &n), LINE_READY);
	ck_assert_str_eq(lb.buf, "win10 attach 046d:c52b");
	ck_assert_uint_eq(n, strlen("next"));
	ck_assert_int_eq(line_feed(&lb, &data, &n), LINE_MORE);
	ck_assert_int_eq(line_finish(&lb), LINE_READY);
	ck_assert_str_eq(lb.buf, "next");
}
END_TEST

START_TEST(test_line_empty_is_ready_and_empty)
{
	struct linebuf lb;
	const char *data = "\n";
	size_t n = 1;

	line_clear(&lb);
	ck_assert_int_eq(line_feed(&lb, &data, &n), LINE_READY);
	ck_assert_uint_eq(lb.len, 0);
	ck_assert_str_eq(lb.buf, "");
}
END_TEST

START_TEST(test_line_of_max_length_is_ready)
{
	struct linebuf lb;
	char text[MAX_LINE + 2];
	char want[MAX_LINE + 1];
	const char *data = text;
	size_t n = MAX_LINE + 1;

	repeat(text, 'x', MAX_LINE);
	text[MAX_LINE] = '\n';
	repeat(want, 'x', MAX_LINE);
	line_clear(&lb);
	ck_assert_int_eq(line_feed(&lb, &data, &n), LINE_READY);
	ck_assert_uint_eq(lb.len, MAX_LINE);
	ck_assert_str_eq(lb.buf, want);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_line_over_max_length_is_overlong)
{
	struct linebuf lb;
	char text[MAX_LINE + 3];
	const char *data = text;
	size_t n = MAX_LINE + 2;

	repeat(text, 'x', MAX_LINE + 1);
	text[MAX_LINE + 1] = '\n';
	line_clear(&lb);
	ck_assert_int_eq(line_feed(&lb, &data, &n), LINE_OVERLONG);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_le(lb.len, MAX_LINE);
	ck_assert_uint_eq(strlen(lb.buf), lb.len);
}
END_TEST

START_TEST(test_line_after_overlong_is_ready_and_intact)
{
	struct linebuf lb;
	char text[MAX_LINE + 64];
	const char *data = text;
	size_t n;

	repeat(text, 'x', MAX_LINE + 1);
	strcpy(text + MAX_LINE + 1, "\nwin10 attach 046d:c52b\n");
	n = strlen(text);
	line_clear(&lb);
	ck_assert_int_eq(line_feed(&lb, &data, &n), LINE_OVERLONG);
	ck_assert_uint_eq(n, strlen("win10 attach 046d:c52b\n"));
	ck_assert_int_eq(line_feed(&lb, &data, &n), LINE_READY);
	ck_assert_str_eq(lb.buf, "win10 attach 046d:c52b");
	ck_assert_uint_eq(lb.len, strlen("win10 attach 046d:c52b"));
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_line_overlong_across_chunks_is_reported_once)
{
	struct linebuf lb;
	char chunk[100];
	const char *data;
	size_t n;
	int overlong = 0, ready = 0;

	repeat(chunk, 'y', sizeof(chunk) - 1);
	line_clear(&lb);
	/* 30 chunks of 99 bytes: far past MAX_LINE, no newline yet. */
	for (int i = 0; i < 30; i++) {
		data = chunk;
		n = strlen(chunk);
		ck_assert_int_eq(line_feed(&lb, &data, &n), LINE_MORE);
		ck_assert_uint_eq(n, 0);
	}
	data = "yyy\nok\n";
	n = strlen(data);
	while (n > 0) {
		switch (line_feed(&lb, &data, &n)) {
		case LINE_OVERLONG:
			overlong++;
			break;
		case LINE_READY:
			ready++;
			ck_assert_str_eq(lb.buf, "ok");
			break;
		case LINE_MORE:
			break;
		}
	}
	ck_assert_int_eq(overlong, 1);
	ck_assert_int_eq(ready, 1);
	ck_assert_int_eq(line_finish(&lb), LINE_MORE);
}
END_TEST

START_TEST(test_line_overlong_without_newline_is_finished_as_overlong)
{
	struct linebuf lb;
	char text[MAX_LINE + 11];
	const char *data = text;
	size_t n = MAX_LINE + 10;

	repeat(text, 'z', MAX_LINE + 10);
	line_clear(&lb);
	ck_assert_int_eq(line_feed(&lb, &data, &n), LINE_MORE);
	ck_assert_int_eq(line_finish(&lb), LINE_OVERLONG);
	ck_assert_int_eq(line_finish(&lb), LINE_MORE);
}
END_TEST

START_TEST(test_line_last_without_newline_is_finished)
{
	struct linebuf lb;
	const char *data = "first\nlast";
	size_t n = strlen(data);

	line_clear(&lb);
	ck_assert_int_eq(line_feed(&lb, &data, &n), LINE_READY);
	ck_assert_str_eq(lb.buf, "first");
	ck_assert_int_eq(line_feed(&lb, &data, &n), LINE_MORE);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(line_finish(&lb), LINE_READY);
	ck_assert_str_eq(lb.buf, "last");
	ck_assert_uint_eq(lb.len, strlen("last"));
}
END_TEST

START_TEST(test_line_finish_on_nothing_is_more)
{
	struct linebuf lb;

	line_clear(&lb);
	ck_assert_int_eq(line_finish(&lb), LINE_MORE);
}
END_TEST

START_TEST(test_line_finish_after_ready_is_more)
{
	struct linebuf lb;
	const char *data = "done\n";
	size_t n = strlen(data);

	line_clear(&lb);
	ck_assert_int_eq(line_feed(&lb, &data, &n), LINE_READY);
	ck_assert_int_eq(line_finish(&lb), LINE_MORE);
}
END_TEST

START_TEST(test_line_nul_bytes_are_kept)
{
	struct linebuf lb;
	const char text[] = "a\0b\0\0c\n";
	const char *data = text;
	size_t n = sizeof(text) - 1;

	line_clear(&lb);
	ck_assert_int_eq(line_feed(&lb, &data, &n), LINE_READY);
	ck_assert_uint_eq(lb.len, 6);
	ck_assert_mem_eq(lb.buf, "a\0b\0\0c", 7);
}
END_TEST

/* ------------------------------------------------------------------ */
/* parse_line                                                          */

START_TEST(test_parse_attach_command)
{
	expect_command(LIT("win10 attach 046d:c52b"), "win10", ACT_ATTACH,
	    DEV);
}
END_TEST

START_TEST(test_parse_detach_command)
{
	expect_command(LIT("win10 detach 046d:c52b"), "win10", ACT_DETACH,
	    DEV);
}
END_TEST

START_TEST(test_parse_device_is_lowered)
{
	expect_command(LIT("win10 attach 046D:C52B"), "win10", ACT_ATTACH,
	    DEV);
}
END_TEST

START_TEST(test_parse_only_len_bytes_are_read)
{
	expect_command("win10 attach 046d:c52bXYZ", strlen(
	    "win10 attach 046d:c52b"), "win10", ACT_ATTACH, DEV);
}
END_TEST

START_TEST(test_parse_trailing_cr_is_dropped)
{
	expect_command(LIT("win10 attach 046d:c52b\r"), "win10", ACT_ATTACH,
	    DEV);
}
END_TEST

START_TEST(test_parse_surrounding_blanks_are_dropped)
{
	expect_command(LIT("  \twin10 attach 046d:c52b \t "), "win10",
	    ACT_ATTACH, DEV);
	expect_command(LIT("\t win10 detach 046d:c52b\t\r"), "win10",
	    ACT_DETACH, DEV);
}
END_TEST

START_TEST(test_parse_several_blanks_between_fields)
{
	expect_command(LIT("win10   attach\t\t 046d:c52b"), "win10",
	    ACT_ATTACH, DEV);
}
END_TEST

START_TEST(test_parse_vm_name_of_max_length_is_accepted)
{
	char name[MAX_VM_NAME + 1];
	char line[MAX_VM_NAME + 32];

	repeat(name, 'v', MAX_VM_NAME);
	snprintf(line, sizeof(line), "%s attach %s", name, DEV);
	expect_command(line, strlen(line), name, ACT_ATTACH, DEV);
}
END_TEST

START_TEST(test_parse_empty_line_is_empty)
{
	ck_assert_int_eq(parse_only(LIT("")), PARSE_EMPTY);
}
END_TEST

START_TEST(test_parse_blank_line_is_empty)
{
	ck_assert_int_eq(parse_only(LIT(" ")), PARSE_EMPTY);
	ck_assert_int_eq(parse_only(LIT("\t")), PARSE_EMPTY);
	ck_assert_int_eq(parse_only(LIT(" \t  \t")), PARSE_EMPTY);
	ck_assert_int_eq(parse_only(LIT("\r")), PARSE_EMPTY);
	ck_assert_int_eq(parse_only(LIT("  \t\r")), PARSE_EMPTY);
}
END_TEST

START_TEST(test_parse_reply_on)
{
	ck_assert_int_eq(parse_only(LIT("reply on")), PARSE_REPLY_ON);
	ck_assert_int_eq(parse_only(LIT(" reply\t on \r")), PARSE_REPLY_ON);
}
END_TEST

START_TEST(test_parse_reply_off)
{
	ck_assert_int_eq(parse_only(LIT("reply off")), PARSE_REPLY_OFF);
	ck_assert_int_eq(parse_only(LIT("reply   off\r")), PARSE_REPLY_OFF);
}
END_TEST

START_TEST(test_parse_reply_unknown_value_is_error)
{
	expect_parse_error(LIT("reply maybe"));
	expect_parse_error(LIT("reply ON"));
	expect_parse_error(LIT("reply onn"));
	expect_parse_error(LIT("reply"));
	expect_parse_error(LIT("reply on off"));
}
END_TEST

START_TEST(test_parse_one_field_is_error)
{
	expect_parse_error(LIT("win10"));
}
END_TEST

START_TEST(test_parse_two_fields_is_error)
{
	expect_parse_error(LIT("win10 attach"));
}
END_TEST

START_TEST(test_parse_four_fields_is_error)
{
	expect_parse_error(LIT("win10 attach 046d:c52b extra"));
	expect_parse_error(LIT("win10 attach 046d:c52b 046d:c52b a b c"));
}
END_TEST

START_TEST(test_parse_unknown_action_is_error)
{
	expect_parse_error(LIT("win10 attached 046d:c52b"));
	expect_parse_error(LIT("win10 ATTACH 046d:c52b"));
	expect_parse_error(LIT("win10 reattach 046d:c52b"));
	expect_parse_error(LIT("win10 attac 046d:c52b"));
	expect_parse_error(LIT("win10 Detach 046d:c52b"));
}
END_TEST

START_TEST(test_parse_hostile_fields_are_errors)
{
	static const char *const lines[] = {
		"../../etc/passwd attach 046d:c52b",
		"win10 attach ../../x",
		"-c attach 046d:c52b",
		"win10 attach --file",
		"win'10 attach 046d:c52b",
		"win\"10 attach 046d:c52b",
		"win10 attach 046d:c52b<",
		"a&b attach 046d:c52b",
		"<hostdev/> attach 046d:c52b",
		"win10;rm attach 046d:c52b",
		"$(id) attach 046d:c52b",
		"win10 attach -046d:c52",
	};

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		expect_parse_error(lines[i], strlen(lines[i]));
}
END_TEST

START_TEST(test_parse_nul_in_each_field_is_error)
{
	expect_parse_error(LIT("win\0" "10 attach 046d:c52b"));
	expect_parse_error(LIT("\0" "win10 attach 046d:c52b"));
	expect_parse_error(LIT("win10 att\0" "ach 046d:c52b"));
	expect_parse_error(LIT("win10 attach\0 046d:c52b"));
	expect_parse_error(LIT("win10 attach 046d:c5\0" "b"));
	expect_parse_error(LIT("win10 attach 046d:c52b\0"));
}
END_TEST

START_TEST(test_parse_high_byte_in_each_field_is_error)
{
	expect_parse_error(LIT("win\xff" "10 attach 046d:c52b"));
	expect_parse_error(LIT("win10 att\xff" "ach 046d:c52b"));
	expect_parse_error(LIT("win10 attach\xff 046d:c52b"));
	expect_parse_error(LIT("win10 attach 046d:c5\xff" "b"));
	expect_parse_error(LIT("win10 attach 046d:c52b\xff"));
}
END_TEST

START_TEST(test_parse_vm_name_over_max_length_is_error)
{
	char name[MAX_VM_NAME + 2];
	char line[MAX_VM_NAME + 32];

	repeat(name, 'v', MAX_VM_NAME + 1);
	snprintf(line, sizeof(line), "%s attach %s", name, DEV);
	expect_parse_error(line, strlen(line));
}
END_TEST

START_TEST(test_parse_very_long_line_is_error)
{
	char line[4 * MAX_LINE];

	repeat(line, 'v', sizeof(line) - 1);
	memcpy(line + sizeof(line) - 1 - 17, " attach 046d:c52b", 17);
	expect_parse_error(line, strlen(line));
}
END_TEST

/* ------------------------------------------------------------------ */
/* xml_format                                                          */

#define XML_046D_C52B	"<hostdev mode='subsystem' type='usb'><source>" \
	"<vendor id='0x046d'/><product id='0xc52b'/></source></hostdev>\n"

START_TEST(test_xml_document_is_exact)
{
	char buf[XML_MAX];

	ck_assert_int_ge(xml_format(buf, sizeof(buf), dev_of(DEV), NULL), 0);
	ck_assert_str_eq(buf, XML_046D_C52B);
}
END_TEST

START_TEST(test_xml_returns_its_length)
{
	char buf[XML_MAX];
	int n = xml_format(buf, sizeof(buf), dev_of(DEV), NULL);

	ck_assert_int_eq(n, (int)strlen(buf));
	ck_assert_int_eq(n, (int)strlen(XML_046D_C52B));
}
END_TEST

START_TEST(test_xml_fits_in_xml_max)
{
	char buf[XML_MAX];

	ck_assert_int_lt(xml_format(buf, sizeof(buf), dev_of("ffff:ffff"), NULL), XML_MAX);
	ck_assert_int_gt(xml_format(buf, sizeof(buf), dev_of("ffff:ffff"), NULL), 0);
}
END_TEST

START_TEST(test_xml_one_byte_short_is_error)
{
	char buf[XML_MAX];
	size_t need = strlen(XML_046D_C52B) + 1;

	ck_assert_int_eq(xml_format(buf, need - 1, dev_of(DEV), NULL), -1);
}
END_TEST

START_TEST(test_xml_exact_room_fits)
{
	char buf[XML_MAX];
	size_t need = strlen(XML_046D_C52B) + 1;

	ck_assert_int_eq(xml_format(buf, need, dev_of(DEV), NULL),
	    (int)strlen(XML_046D_C52B));
	ck_assert_str_eq(buf, XML_046D_C52B);
}
END_TEST

/* With an address, libvirt matches all four: bus and device number in
 * decimal, no leading zeros (libvirt reads them in base 0). */
START_TEST(test_xml_with_an_address_names_bus_and_device)
{
	const struct usb_addr a = { 3, 9 }, far = { 255, 127 };
	char buf[XML_MAX];

	ck_assert_int_gt(xml_format(buf, sizeof(buf), dev_of("046d:c52b@3-1.4"), &a), 0);
	ck_assert_str_eq(buf, "<hostdev mode='subsystem' type='usb'><source>"
	    "<vendor id='0x046d'/><product id='0xc52b'/>"
	    "<address bus='3' device='9'/></source></hostdev>\n");
	ck_assert_int_gt(xml_format(buf, sizeof(buf),
	    dev_of("ffff:ffff@255-255.255.255.255.255.255.255"), &far), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* escape_text                                                         */

START_TEST(test_escape_printable_passes_unchanged)
{
	char src[96], dst[96];
	size_t n = 0;

	for (int c = 0x20; c < 0x7f; c++)
		if (c != '\\')
			src[n++] = (char)c;
	src[n] = '\0';
	ck_assert_uint_eq(escape_text(dst, sizeof(dst), src, n), n);
	ck_assert_str_eq(dst, src);
}
END_TEST

START_TEST(test_escape_control_bytes_become_hex)
{
	char dst[64];

	ck_assert_uint_eq(escape_text(dst, sizeof(dst), LIT("a\nb\rc\td")),
	    strlen("a\\x0ab\\x0dc\\x09d"));
	ck_assert_str_eq(dst, "a\\x0ab\\x0dc\\x09d");
	escape_text(dst, sizeof(dst), LIT("\x01\x1b\x1f"));
	ck_assert_str_eq(dst, "\\x01\\x1b\\x1f");
}
END_TEST

START_TEST(test_escape_nul_byte_becomes_hex)
{
	char dst[64];

	ck_assert_uint_eq(escape_text(dst, sizeof(dst), LIT("a\0b")), 6);
	ck_assert_str_eq(dst, "a\\x00b");
}
END_TEST

START_TEST(test_escape_del_and_high_bytes_become_hex)
{
	char dst[64];

	escape_text(dst, sizeof(dst), LIT("\x7f\x80\xff"));
	ck_assert_str_eq(dst, "\\x7f\\x80\\xff");
}
END_TEST

START_TEST(test_escape_backslash_becomes_hex)
{
	char dst[64];

	escape_text(dst, sizeof(dst), LIT("a\\b"));
	ck_assert_str_eq(dst, "a\\x5cb");
}
END_TEST

START_TEST(test_escape_hex_is_lower_case)
{
	char dst[64];

	escape_text(dst, sizeof(dst), LIT("\xab\xcd\xef"));
	ck_assert_str_eq(dst, "\\xab\\xcd\\xef");
}
END_TEST

START_TEST(test_escape_every_byte_gives_printable_ascii)
{
	char src[256], dst[4 * 256 + 1];
	size_t n;

	for (int b = 0; b < 256; b++)
		src[b] = (char)b;
	n = escape_text(dst, sizeof(dst), src, sizeof(src));
	ck_assert_uint_eq(n, strlen(dst));
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)dst[i];

		ck_assert_msg(c >= 0x20 && c < 0x7f, "byte 0x%02x at %zu",
		    c, i);
	}
	/* 94 printable bytes (all but '\') stay, the other 162 take 4 each. */
	ck_assert_uint_eq(n, 94 + 162 * 4);
}
END_TEST

START_TEST(test_escape_never_ends_in_partial_escape)
{
	char dst[16];

	/* "a\x01" is 5 bytes: it needs size 6, and size 5 keeps just "a". */
	ck_assert_uint_eq(escape_text(dst, 5, LIT("a\x01")), 1);
	ck_assert_str_eq(dst, "a");
	ck_assert_uint_eq(escape_text(dst, 4, LIT("a\x01")), 1);
	ck_assert_str_eq(dst, "a");
	ck_assert_uint_eq(escape_text(dst, 6, LIT("a\x01")), 5);
	ck_assert_str_eq(dst, "a\\x01");
}
END_TEST

START_TEST(test_escape_stops_at_first_escape_that_does_not_fit)
{
	char dst[16];

	/* No later plain byte may slip in after a dropped escape. */
	ck_assert_uint_eq(escape_text(dst, 4, LIT("a\x01" "bc")), 1);
	ck_assert_str_eq(dst, "a");
}
END_TEST

START_TEST(test_escape_output_never_exceeds_size)
{
	const char src[] = "ab\x01\\c\xff" "de\n\x7f" "fgh";
	char dst[64];

	for (size_t size = 1; size < sizeof(dst); size++) {
		size_t n;

		memset(dst, 'X', sizeof(dst));
		n = escape_text(dst, size, src, sizeof(src) - 1);
		ck_assert_uint_le(n, size - 1);
		ck_assert_uint_eq(strlen(dst), n);
		for (size_t i = size; i < sizeof(dst); i++)
			ck_assert_msg(dst[i] == 'X',
			    "size %zu: wrote byte %zu", size, i);
		/* Never a partial "\xH" at the end. */
		for (size_t i = 0; i < n; i++)
			if (dst[i] == '\\')
				ck_assert_msg(i + 4 <= n,
				    "size %zu: partial escape '%s'", size,
				    dst);
	}
}
END_TEST

START_TEST(test_escape_size_one_gives_empty_string)
{
	char dst[4] = "XXX";

	ck_assert_uint_eq(escape_text(dst, 1, LIT("abc")), 0);
	ck_assert_str_eq(dst, "");
}
END_TEST

START_TEST(test_escape_is_nul_terminated)
{
	char dst[16];

	memset(dst, 'X', sizeof(dst));
	ck_assert_uint_eq(escape_text(dst, sizeof(dst), LIT("hi")), 2);
	ck_assert_int_eq(dst[2], '\0');
	memset(dst, 'X', sizeof(dst));
	ck_assert_uint_eq(escape_text(dst, sizeof(dst), LIT("")), 0);
	ck_assert_int_eq(dst[0], '\0');
	memset(dst, 'X', sizeof(dst));
	ck_assert_uint_eq(escape_text(dst, 8, LIT("0123456789")), 7);
	ck_assert_int_eq(dst[7], '\0');
}
END_TEST

/* ------------------------------------------------------------------ */
/* reply_format / reply_format_invalid                                 */

START_TEST(test_reply_ok)
{
	struct request cmd;
	char buf[MAX_LINE + 1];

	make_command(&cmd, "win10", ACT_ATTACH, DEV);
	ck_assert_int_eq(reply_format(buf, sizeof(buf), &cmd, NULL),
	    (int)strlen("ok win10 attach 046d:c52b\n"));
	ck_assert_str_eq(buf, "ok win10 attach 046d:c52b\n");
}
END_TEST

START_TEST(test_reply_error_with_reason)
{
	struct request cmd;
	char buf[MAX_LINE + 1];

	make_command(&cmd, "win10", ACT_DETACH, DEV);
	ck_assert_int_eq(reply_format(buf, sizeof(buf), &cmd, "boom"),
	    (int)strlen("error win10 detach 046d:c52b: boom\n"));
	ck_assert_str_eq(buf, "error win10 detach 046d:c52b: boom\n");
}
END_TEST

START_TEST(test_reply_reason_control_bytes_are_escaped)
{
	struct request cmd;
	char buf[MAX_LINE + 1];

	make_command(&cmd, "win10", ACT_ATTACH, DEV);
	ck_assert_int_gt(reply_format(buf, sizeof(buf), &cmd,
	    "a\nb\rc\x1b" "d\xff" "e\\f"), 0);
	ck_assert_str_eq(buf, "error win10 attach 046d:c52b: "
	    "a\\x0ab\\x0dc\\x1bd\\xffe\\x5cf\n");
}
END_TEST

START_TEST(test_reply_is_one_line_of_printable_ascii)
{
	struct request cmd;
	char reason[256], buf[2 * MAX_LINE];
	int n;

	for (int b = 1; b < 256; b++)
		reason[b - 1] = (char)b;
	reason[255] = '\0';
	make_command(&cmd, "win10", ACT_ATTACH, DEV);
	n = reply_format(buf, sizeof(buf), &cmd, reason);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(buf[n - 1], '\n');
	for (int i = 0; i < n - 1; i++)
		ck_assert_msg((unsigned char)buf[i] >= 0x20 &&
		    (unsigned char)buf[i] < 0x7f, "byte 0x%02x at %d",
		    (unsigned char)buf[i], i);
}
END_TEST

START_TEST(test_reply_long_reason_is_cut)
{
	struct request cmd;
	char reason[4 * MAX_REASON + 1];
	char buf[4 * MAX_LINE];
	const char *head = "error win10 attach 046d:c52b: ";
	int n;

	repeat(reason, 'r', sizeof(reason) - 1);
	make_command(&cmd, "win10", ACT_ATTACH, DEV);
	n = reply_format(buf, sizeof(buf), &cmd, reason);
	ck_assert_int_eq(n, (int)(strlen(head) + MAX_REASON + 1));
	ck_assert_int_eq(n, (int)strlen(buf));
	ck_assert_int_eq(strncmp(buf, head, strlen(head)), 0);
	ck_assert_ptr_eq(strchr(buf, '\n'), buf + n - 1);
}
END_TEST

START_TEST(test_reply_long_escaped_reason_is_cut_at_an_escape)
{
	struct request cmd;
	char reason[MAX_REASON + 1];
	char buf[4 * MAX_LINE];
	const char *head = "error win10 attach 046d:c52b: ";
	int n;

	/* Each byte escapes to 4: only whole escapes, one newline. */
	repeat(reason, '\x01', MAX_REASON);
	make_command(&cmd, "win10", ACT_ATTACH, DEV);
	n = reply_format(buf, sizeof(buf), &cmd, reason);
	ck_assert_int_gt(n, 0);
	ck_assert_int_le(n, (int)(strlen(head) + MAX_REASON + 1));
	ck_assert_int_eq((n - 1 - (int)strlen(head)) % 4, 0);
	ck_assert_str_eq(buf + n - 5, "\\x01\n");
	ck_assert_ptr_eq(strchr(buf, '\n'), buf + n - 1);
}
END_TEST

START_TEST(test_reply_longest_fits_in_a_line)
{
	struct request cmd;
	char name[MAX_VM_NAME + 1];
	char reason[4 * MAX_REASON + 1];
	char buf[4 * MAX_LINE];
	int n;

	repeat(name, 'v', MAX_VM_NAME);
	repeat(reason, '\xff', sizeof(reason) - 1);
	make_command(&cmd, name, ACT_DETACH, DEV);
	n = reply_format(buf, sizeof(buf), &cmd, reason);
	ck_assert_int_gt(n, 0);
	/* MAX_LINE is the longest line without its '\n'. */
	ck_assert_int_le(n - 1, MAX_LINE);
}
END_TEST

START_TEST(test_reply_buffer_too_small_is_error)
{
	struct request cmd;
	char buf[MAX_LINE + 1];
	size_t ok_len = strlen("ok win10 attach 046d:c52b\n");
	size_t err_len = strlen("error win10 attach 046d:c52b: boom\n");

	make_command(&cmd, "win10", ACT_ATTACH, DEV);
	ck_assert_int_eq(reply_format(buf, ok_len, &cmd, NULL), -1);
	ck_assert_int_eq(reply_format(buf, ok_len + 1, &cmd, NULL),
	    (int)ok_len);
	ck_assert_int_eq(reply_format(buf, err_len, &cmd, "boom"), -1);
	ck_assert_int_eq(reply_format(buf, err_len + 1, &cmd, "boom"),
	    (int)err_len);
	ck_assert_int_eq(reply_format(buf, 1, &cmd, "boom"), -1);
}
END_TEST

START_TEST(test_reply_invalid)
{
	char buf[MAX_LINE + 1];

	ck_assert_int_eq(reply_format_invalid(buf, sizeof(buf),
	    "not a command"), (int)strlen("error: not a command\n"));
	ck_assert_str_eq(buf, "error: not a command\n");
}
END_TEST

START_TEST(test_reply_invalid_why_is_escaped)
{
	char buf[MAX_LINE + 1];

	ck_assert_int_gt(reply_format_invalid(buf, sizeof(buf), "a\nb\\"), 0);
	ck_assert_str_eq(buf, "error: a\\x0ab\\x5c\n");
}
END_TEST

START_TEST(test_reply_invalid_buffer_too_small_is_error)
{
	char buf[MAX_LINE + 1];
	size_t len = strlen("error: WHY\n");

	ck_assert_int_eq(reply_format_invalid(buf, len, "WHY"), -1);
	ck_assert_int_eq(reply_format_invalid(buf, len + 1, "WHY"),
	    (int)len);
	ck_assert_str_eq(buf, "error: WHY\n");
}
END_TEST

/* ------------------------------------------------------------------ */
/* reply_parse                                                         */

/* Formats a reply to cmd and strips its '\n', as the client reads it. */
static void
reply_line(char *buf, size_t size, const struct request *cmd,
    const char *reason)
{
	int n = reply_format(buf, size, cmd, reason);

	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(buf[n - 1], '\n');
	buf[n - 1] = '\0';
}

START_TEST(test_reply_parse_ok_round_trip)
{
	struct request cmd;
	char line[MAX_LINE + 1];
	const char *reason = NULL;

	make_command(&cmd, "win10", ACT_ATTACH, DEV);
	reply_line(line, sizeof(line), &cmd, NULL);
	ck_assert_int_eq(reply_parse(line, &cmd, &reason), REPLY_OK);
}
END_TEST

START_TEST(test_reply_parse_error_round_trip)
{
	struct request cmd;
	char line[MAX_LINE + 1];
	const char *reason = NULL;

	make_command(&cmd, "win10", ACT_DETACH, DEV);
	reply_line(line, sizeof(line), &cmd, "device not found");
	ck_assert_int_eq(reply_parse(line, &cmd, &reason), REPLY_ERROR);
	ck_assert_ptr_nonnull(reason);
	ck_assert_str_eq(reason, "device not found");
}
END_TEST

START_TEST(test_reply_parse_escaped_reason_round_trip)
{
	struct request cmd;
	char line[MAX_LINE + 1];
	const char *reason = NULL;

	make_command(&cmd, "win10", ACT_ATTACH, DEV);
	reply_line(line, sizeof(line), &cmd, "x\ny");
	ck_assert_int_eq(reply_parse(line, &cmd, &reason), REPLY_ERROR);
	ck_assert_str_eq(reason, "x\\x0ay");
}
END_TEST

START_TEST(test_reply_parse_invalid_line_error)
{
	struct request cmd;
	const char *reason = NULL;

	make_command(&cmd, "win10", ACT_ATTACH, DEV);
	ck_assert_int_eq(reply_parse("error: not a command", &cmd, &reason),
	    REPLY_ERROR);
	ck_assert_str_eq(reason, "not a command");
}
END_TEST

START_TEST(test_reply_parse_invalid_round_trip)
{
	struct request cmd;
	char line[MAX_LINE + 1];
	const char *reason = NULL;
	int n;

	make_command(&cmd, "win10", ACT_ATTACH, DEV);
	n = reply_format_invalid(line, sizeof(line), "VM name too long");
	ck_assert_int_gt(n, 0);
	line[n - 1] = '\0';
	ck_assert_int_eq(reply_parse(line, &cmd, &reason), REPLY_ERROR);
	ck_assert_str_eq(reason, "VM name too long");
}
END_TEST

START_TEST(test_reply_parse_other_device_is_unexpected)
{
	struct request cmd, other;
	char line[MAX_LINE + 1];
	const char *reason = NULL;

	make_command(&cmd, "win10", ACT_ATTACH, DEV);
	make_command(&other, "win10", ACT_ATTACH, "046d:c52c");
	reply_line(line, sizeof(line), &other, NULL);
	ck_assert_int_eq(reply_parse(line, &cmd, &reason), REPLY_UNEXPECTED);
	reply_line(line, sizeof(line), &other, "boom");
	ck_assert_int_eq(reply_parse(line, &cmd, &reason), REPLY_UNEXPECTED);
}
END_TEST

START_TEST(test_reply_parse_other_vm_is_unexpected)
{
	struct request cmd, other;
	char line[MAX_LINE + 1];
	const char *reason = NULL;

	make_command(&cmd, "win1", ACT_ATTACH, DEV);
	make_command(&other, "win10", ACT_ATTACH, DEV);
	reply_line(line, sizeof(line), &other, NULL);
	ck_assert_int_eq(reply_parse(line, &cmd, &reason), REPLY_UNEXPECTED);
	reply_line(line, sizeof(line), &other, "boom");
	ck_assert_int_eq(reply_parse(line, &cmd, &reason), REPLY_UNEXPECTED);
	/* and the other way round: a prefix of the name is no match */
	reply_line(line, sizeof(line), &cmd, NULL);
	ck_assert_int_eq(reply_parse(line, &other, &reason),
	    REPLY_UNEXPECTED);
}
END_TEST

START_TEST(test_reply_parse_other_action_is_unexpected)
{
	struct request cmd, other;
	char line[MAX_LINE + 1];
	const char *reason = NULL;

	make_command(&cmd, "win10", ACT_ATTACH, DEV);
	make_command(&other, "win10", ACT_DETACH, DEV);
	reply_line(line, sizeof(line), &other, NULL);
	ck_assert_int_eq(reply_parse(line, &cmd, &reason), REPLY_UNEXPECTED);
	reply_line(line, sizeof(line), &other, "boom");
	ck_assert_int_eq(reply_parse(line, &cmd, &reason), REPLY_UNEXPECTED);
}
END_TEST

START_TEST(test_reply_parse_garbage_is_unexpected)
{
	static const char *const lines[] = {
		"",
		"ok",
		"ok ",
		"okay",
		"error",
		"error:",
		"hello world",
		"OK win10 attach 046d:c52b",
		"ok win10 attach 046d:c52b ",
		"ok win10 attach 046d:c52b extra",
		" ok win10 attach 046d:c52b",
		"ok  win10 attach 046d:c52b",
		"error win10 attach 046d:c52b",
		"error win10 attach 046d:c52b boom",
		"error win10 attach 046d:c52bboom",
		"ok win10 attach 046D:C52B",
	};
	struct request cmd;

	make_command(&cmd, "win10", ACT_ATTACH, DEV);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		const char *reason = NULL;

		ck_assert_msg(reply_parse(lines[i], &cmd, &reason) ==
		    REPLY_UNEXPECTED, "'%s' is not REPLY_UNEXPECTED",
		    lines[i]);
	}
}
END_TEST

/* ------------------------------------------------------------------ */
/* Suites                                                              */

START_TEST(test_vm_name_that_virsh_reads_as_an_id_or_uuid_is_rejected)
{
	/* virsh --domain tries a number, then a UUID, then a name. */
	ck_assert(!valid_vm_name(LIT("5")));
	ck_assert(!valid_vm_name(LIT("2024")));
	ck_assert(!valid_vm_name(LIT("4dea22b3-1d52-d8f3-2516-782e98ab3fa0")));
	ck_assert(!valid_vm_name(LIT("4dea22b31d52d8f32516782e98ab3fa0")));
	ck_assert(!valid_vm_name(LIT("4DEA22B3-1D52-D8F3-2516-782E98AB3FA0")));
	/* strtol takes a sign; libvirt's UUIDs take dashes anywhere. */
	ck_assert(!valid_vm_name(LIT("+1")));
	ck_assert(!valid_vm_name(LIT("+01")));
	ck_assert(!valid_vm_name(LIT("4dea22b31d52d8f3-2516-782e-98ab-3fa0")));
	ck_assert(!valid_vm_name(LIT("4dea22b3-1d52d8f32516-782e-98ab3f-a0")));
}
END_TEST

START_TEST(test_vm_name_with_digits_and_more_is_accepted)
{
	ck_assert(valid_vm_name(LIT("win10")));
	ck_assert(valid_vm_name(LIT("10win")));
	ck_assert(valid_vm_name(LIT("2024.1")));
	ck_assert(valid_vm_name(LIT("+1a")));
	ck_assert(valid_vm_name(LIT("+")));
	/* UUID-sized, but not a UUID */
	ck_assert(valid_vm_name(LIT("4dea22b3-1d52-d8f3-2516-782e98ab3fag")));
	ck_assert(valid_vm_name(LIT("4dea22b3_1d52_d8f3_2516_782e98ab3fa0")));
}
END_TEST

START_TEST(test_parse_numeric_vm_name_says_why)
{
	struct request cmd;
	const char *why = NULL;

	ck_assert_int_eq(parse_line(LIT("3 attach 046d:c52b"), &cmd, &why),
	    PARSE_ERROR);
	ck_assert_str_eq(why, "invalid VM name (a number or UUID, not a name)");
}
END_TEST

/* ------------------------------------------------------------------ */
/* config_line: "allow VID:PID" and comments                           */

START_TEST(test_config_allow_line_gives_the_device)
{
	char vm[MAX_VM_NAME + 1];
	struct usb_device dev;
	char text[DEVICE_TEXT];
	const char *why = NULL;

	ck_assert_int_eq(config_line(LIT("allow 046D:C52B"), &dev, vm, &why),
	    CONFIG_ALLOW);
	ck_assert_str_eq(device_text(&dev, text), "046d:c52b");
	ck_assert_int_eq(config_line(LIT("\tallow  1050:0407  # key\r"), &dev,
	    vm, &why), CONFIG_ALLOW);
	ck_assert_str_eq(device_text(&dev, text), "1050:0407");
}
END_TEST

START_TEST(test_config_assign_line_gives_the_domain_and_device)
{
	char vm[MAX_VM_NAME + 1], text[DEVICE_TEXT];
	struct usb_device dev;
	const char *why = NULL;

	ck_assert_int_eq(config_line(LIT("assign win10 046D:C52B"), &dev, vm,
	    &why), CONFIG_ASSIGN);
	ck_assert_str_eq(vm, "win10");
	ck_assert_str_eq(device_text(&dev, text), "046d:c52b");
	ck_assert_int_eq(config_line(LIT(" assign\tgame.vm  1050:0407@1-2 # k"),
	    &dev, vm, &why), CONFIG_ASSIGN);
	ck_assert_str_eq(vm, "game.vm");
	ck_assert_str_eq(device_text(&dev, text), "1050:0407@1-2");
	ck_assert_ptr_null(why);
}
END_TEST

START_TEST(test_config_blank_and_comment_lines_say_nothing)
{
	char vm[MAX_VM_NAME + 1];
	struct usb_device dev;
	const char *why = NULL;

	ck_assert_int_eq(config_line(LIT(""), &dev, vm, &why),
	    CONFIG_NOTHING);
	ck_assert_int_eq(config_line(LIT("  \t "), &dev, vm, &why),
	    CONFIG_NOTHING);
	ck_assert_int_eq(config_line(LIT("# allow everything"), &dev, vm, &why),
	    CONFIG_NOTHING);
	ck_assert_int_eq(config_line(LIT("   #"), &dev, vm, &why),
	    CONFIG_NOTHING);
	ck_assert_ptr_null(why);
}
END_TEST

START_TEST(test_config_malformed_lines_say_why)
{
	static const char *bad[] = { "allow", "allow 046d", "allow 046d:c52b x",
	    "Allow 046d:c52b", "deny 046d:c52b", "allow=046d:c52b",
	    "allow 046d:c52b:1", "allow ../../etc", "046d:c52b", "allow *",
	    "assign win10", "assign 046d:c52b", "assign ../x 046d:c52b",
	    "assign +1 046d:c52b", "assign win10 046d", "Assign w 046d:c52b",
	    "assign w 046d:c52b x", "assign w x 046d:c52b" };
	char vm[MAX_VM_NAME + 1];
	struct usb_device dev;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;

		ck_assert_msg(config_line(bad[i], strlen(bad[i]), &dev, vm, &why) ==
		    CONFIG_ERROR, "accepted: %s", bad[i]);
		ck_assert_ptr_nonnull(why);
	}
}
END_TEST

START_TEST(test_config_nul_byte_is_malformed)
{
	char vm[MAX_VM_NAME + 1];
	struct usb_device dev;
	const char *why = NULL;

	ck_assert_int_eq(config_line(LIT("allow 046d:c5\0b"), &dev, vm, &why),
	    CONFIG_ERROR);
}
END_TEST

/* ------------------------------------------------------------------ */
/* libvirt's event lines and the ledger's lines                        */

static bool
event_of(const char *line, char vm[MAX_VM_NAME + 1], enum vm_event *ev)
{
	return event_parse(line, strlen(line), vm, ev);
}

START_TEST(test_event_lifecycle_lines_give_domain_and_event)
{
	static const struct { const char *line, *vm; enum vm_event ev; } ok[] = {
		{ "event 'lifecycle' for domain 'win10': Crashed Panicked",
		  "win10", VM_EVENT_CRASHED },
		{ "event 'lifecycle' for domain 'win10': Suspended Paused",
		  "win10", VM_EVENT_SUSPENDED },
		{ "event 'lifecycle' for domain 'a.b_c+d-e': PMSuspended Memory",
		  "a.b_c+d-e", VM_EVENT_PMSUSPENDED },
		{ "event 'lifecycle' for domain 'w': Stopped Shutdown", "w",
		  VM_EVENT_STOPPED },
		{ "event 'lifecycle' for domain 'w': Stopped Destroyed", "w",
		  VM_EVENT_STOPPED },
		{ "event 'lifecycle' for domain 'w': Started Booted", "w",
		  VM_EVENT_STARTED },
		{ "event 'lifecycle' for domain 'w': Resumed Unpaused", "w",
		  VM_EVENT_RESUMED },
		{ "event 'lifecycle' for domain 'w': Shutdown Finished after "
		  "guest request", "w", VM_EVENT_OTHER },
		{ "event 'lifecycle' for domain 'w': Defined Added", "w",
		  VM_EVENT_OTHER },
		{ "event 'lifecycle' for domain 'w': Crashed", "w",
		  VM_EVENT_CRASHED },
		/* A word that only starts like one is another. */
		{ "event 'lifecycle' for domain 'w': CrashedX Panicked", "w",
		  VM_EVENT_OTHER },
	};
	char vm[MAX_VM_NAME + 1];
	enum vm_event ev;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_msg(event_of(ok[i].line, vm, &ev), "%s", ok[i].line);
		ck_assert_str_eq(vm, ok[i].vm);
		ck_assert_int_eq(ev, ok[i].ev);
	}
}
END_TEST

/* Other events, names we never act on, and any line not quite libvirt's
 * are no event at all. */
START_TEST(test_event_other_lines_are_none)
{
	static const char *const bad[] = {
		"",
		"event 'reboot' for domain 'win10'",
		"event 'device-removed' for domain 'win10': hostdev0",
		"event 'lifecycle' for domain 'win10'",
		"event 'lifecycle' for domain 'win10':",
		"event 'lifecycle' for domain 'win10': ",
		"event 'lifecycle' for domain 'win10' Crashed Panicked",
		"event 'lifecycle' for domain win10: Crashed Panicked",
		"event 'lifecycle' for domain '': Crashed Panicked",
		"event 'lifecycle' for domain 'win 10': Crashed Panicked",
		"event 'lifecycle' for domain '1': Crashed Panicked",
		"event 'lifecycle' for domain '-x': Crashed Panicked",
		"event 'lifecycle' for domain '../x': Crashed Panicked",
		"event 'lifecycle' for domain 'win10",
		" event 'lifecycle' for domain 'win10': Crashed Panicked",
		("2026-12-04 10:00:00.000+0000: event 'lifecycle' for domain "
		"'w': Crashed Panicked"),
		"event 'lifecycle' for domain 'w': Crashed Panicked\r",
		"event 'lifecycle' for domain 'w\x01': Crashed Panicked",
		"event 'lifecycle' for domain 'w': Crashed\xff",
		"error: Disconnected from qemu:///system due to end of file",
	};
	char vm[MAX_VM_NAME + 1], name[MAX_VM_NAME + 2], line[300];
	enum vm_event ev;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!event_of(bad[i], vm, &ev), "'%s' taken",
		    bad[i]);
	/* A NUL inside, and a name one byte too long. */
	ck_assert(!event_parse("event 'lifecycle' for domain 'w\0': Crashed "
	    "Panicked", 52, vm, &ev));
	memset(name, 'a', MAX_VM_NAME + 1);
	name[MAX_VM_NAME + 1] = '\0';
	snprintf(line, sizeof(line), EVENT_PREFIX "%s': Crashed P", name);
	ck_assert(!event_of(line, vm, &ev));
	name[MAX_VM_NAME] = '\0';
	snprintf(line, sizeof(line), EVENT_PREFIX "%s': Crashed P", name);
	ck_assert(event_of(line, vm, &ev));
	ck_assert_str_eq(vm, name);
}
END_TEST

START_TEST(test_ledger_line_round_trips)
{
	struct ledger_entry e = { .vm = "win10", .at = "3-1.4.2",
	    .addr = { 3, 127 }, .since = LEDGER_SINCE_MAX }, back;
	char buf[LEDGER_LINE];
	int n;

	ck_assert(device_parse("046d:c52b@3-1.4.2", 17, &e.device));
	n = ledger_format(buf, sizeof(buf), &e);
	ck_assert_str_eq(buf, "win10 046d:c52b@3-1.4.2 3-1.4.2 3 127 "
	    "253402300799\n");
	ck_assert_int_eq(n, (int)strlen(buf));
	ck_assert(ledger_parse(buf, (size_t)n - 1, &back));
	ck_assert_str_eq(back.vm, "win10");
	ck_assert(device_equal(&back.device, &e.device));
	ck_assert_str_eq(back.at, "3-1.4.2");
	ck_assert_uint_eq(back.addr.bus, 3);
	ck_assert_uint_eq(back.addr.dev, 127);
	ck_assert_int_eq(back.since, LEDGER_SINCE_MAX);
	/* Where it sat not known. */
	memset(&e, 0, sizeof(e));
	strcpy(e.vm, "w");
	ck_assert(device_parse("1050:0407", 9, &e.device));
	ledger_format(buf, sizeof(buf), &e);
	ck_assert_str_eq(buf, "w 1050:0407 - 0 0 0\n");
	ck_assert(ledger_parse(buf, strlen(buf) - 1, &back));
	ck_assert_str_eq(back.at, "");
	/* The longest entry fits a LEDGER_LINE. */
	memset(e.vm, 'v', MAX_VM_NAME);
	e.vm[MAX_VM_NAME] = '\0';
	ck_assert(device_parse("046d:c52b@255-255.255.255.255.255.255.255",
	    41, &e.device));
	strcpy(e.at, e.device.port);
	e.addr = (struct usb_addr){ 255, 255 };
	e.since = LEDGER_SINCE_MAX;
	e.serial = ~0ULL;
	ck_assert_int_gt(ledger_format(buf, sizeof(buf), &e), 0);
	ck_assert(ledger_parse(buf, strlen(buf) - 1, &back));
	ck_assert(back.serial == ~0ULL);
	ck_assert_int_eq(ledger_format(buf, 20, &e), -1);
}
END_TEST

/* Version 2: the serial number's hash, when known, last. */
START_TEST(test_ledger_line_keeps_the_serial)
{
	struct ledger_entry e = { .vm = "w", .at = "1-2", .addr = { 1, 5 },
	    .since = 7, .serial = serial_hash("A1B2", 4) }, back;
	char buf[LEDGER_LINE];

	ck_assert(device_parse("046d:c52b", 9, &e.device));
	ck_assert_int_gt(ledger_format(buf, sizeof(buf), &e), 0);
	ck_assert_str_eq(buf, "w 046d:c52b 1-2 1 5 7 2aba198c8c223e97\n");
	ck_assert(ledger_parse(buf, strlen(buf) - 1, &back));
	ck_assert(back.serial == e.serial);
	/* Another serial, another hash; none is never 0. */
	ck_assert(serial_hash("A1B3", 4) != e.serial);
	ck_assert(serial_hash("", 0) != 0);
	/* A version 1 line: no serial known. */
	ck_assert(ledger_parse("w 046d:c52b 1-2 1 5 7", 21, &back));
	ck_assert(back.serial == 0);
}
END_TEST

START_TEST(test_ledger_lines_not_ours_are_refused)
{
	static const char *const bad[] = {
		"",
		"# usbserver ledger 1",
		"win10 046d:c52b - 0 0",
		"win10 046d:c52b - 0 0 1 extra",
		"../etc 046d:c52b - 0 0 1",
		"1 046d:c52b - 0 0 1",
		"win10 046d:c52 - 0 0 1",
		"win10 046d:c52b;x - 0 0 1",
		"win10 046d:c52b 0-1 1 2 1",
		"win10 046d:c52b 1-2/.. 1 2 1",
		"win10 046d:c52b - 1 0 1",
		"win10 046d:c52b - 0 1 1",
		"win10 046d:c52b - 256 1 1",
		"win10 046d:c52b - 1 256 1",
		"win10 046d:c52b - 01 1 1",
		"win10 046d:c52b - +1 1 1",
		"win10 046d:c52b - -1 1 1",
		"win10 046d:c52b - 1 1 01",
		"win10 046d:c52b - 1 1 253402300800",
		"win10 046d:c52b - 1 1 99999999999999999999",
		"win10 046d:c52b - 1 1 1x",
		"win10 046d:c52b - 1 1 1\x1b",
		"win10 046d:c52b\x7f - 1 1 1",
		"win10 046d:c52b - 1 1 1\xc3\xa9",
		"win10 046d:c52b - 1 1 1 0000000000000000",
		"win10 046d:c52b - 1 1 1 e14d4b1c5a8e6b2",
		"win10 046d:c52b - 1 1 1 e14d4b1c5a8e6b2c0",
		"win10 046d:c52b - 1 1 1 E14D4B1C5A8E6B2C",
		"win10 046d:c52b - 1 1 1 e14d4b1c5a8e6b2g",
		"win10 046d:c52b - 1 1 1 e14d4b1c5a8e6b2c x",
	};
	struct ledger_entry e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!ledger_parse(bad[i], strlen(bad[i]), &e),
		    "'%s' taken", bad[i]);
	ck_assert(!ledger_parse("w 046d:c52b - 0 0\0 1", 20, &e));
	ck_assert(!ledger_parse("w\t046d:c52b - 0 0 1", 19, &e));
	/* Runs of spaces between fields, as the line grammar takes them. */
	ck_assert(ledger_parse("w 046d:c52b  -  0 0 1", 21, &e));
}
END_TEST

/* ------------------------------------------------------------------ */
/* release, alive, status: the lines that name no device               */

/* line must parse as a command naming no device: vm ("" for every
 * domain), action and, for alive, lease; its text is line again. */
static void
expect_domain_command(const char *line, const char *vm, enum action action,
    unsigned lease)
{
	struct request cmd, none;
	const char *why = NULL;
	char text[REQUEST_TEXT];

	command_init(&cmd);
	memset(&none, 0, sizeof(none));
	ck_assert_msg(parse_line(line, strlen(line), &cmd, &why) ==
	    PARSE_COMMAND, "'%s': %s", line, why);
	ck_assert_str_eq(cmd.vm, vm);
	ck_assert_int_eq(cmd.action, action);
	ck_assert_uint_eq(cmd.lease, lease);
	ck_assert_mem_eq(&cmd.device, &none.device, sizeof(none.device));
	ck_assert_str_eq(request_text(text, &cmd), line);
}

START_TEST(test_parse_release_of_a_domain_or_of_every_one)
{
	expect_domain_command("release", "", ACT_RELEASE, 0);
	expect_domain_command("win10 release", "win10", ACT_RELEASE, 0);
	/* "reply" is a domain's name like any other before "release" */
	expect_domain_command("reply release", "reply", ACT_RELEASE, 0);
	expect_parse_error("release win10", 13);
	expect_parse_error("win10 release 046d:c52b", 23);
	expect_parse_error("1 release", 9);
	expect_parse_error("-x release", 10);
	/* a release names no device: a third field is no release */
	expect_parse_error("win10 release 5", 15);
}
END_TEST

START_TEST(test_parse_alive_takes_seconds_from_0_to_3600)
{
	static const char *const bad[] = { "win10 alive 3601", "win10 alive -1",
	    "win10 alive 01", "win10 alive 1.5", "win10 alive 1s",
	    "win10 alive 99999999999999999999", "win10 alive", "alive 5",
	    "win10 alive 5 5", "win10 alive +5", "win10 alive 0x10", NULL };

	expect_domain_command("win10 alive 0", "win10", ACT_ALIVE, 0);
	expect_domain_command("win10 alive 1", "win10", ACT_ALIVE, 1);
	expect_domain_command("win10 alive 3600", "win10", ACT_ALIVE, 3600);
	for (const char *const *b = bad; *b != NULL; b++)
		expect_parse_error(*b, strlen(*b));
}
END_TEST

START_TEST(test_parse_status_is_one_word)
{
	expect_domain_command("status", "", ACT_STATUS, 0);
	expect_parse_error("status win10", 12);
	expect_parse_error("win10 status", 12);
	expect_parse_error("win10 status 046d:c52b", 22);
}
END_TEST

START_TEST(test_parse_domains_is_one_word)
{
	struct request q = { .action = ACT_DOMAINS };
	char text[REQUEST_TEXT];

	expect_domain_command("domains", "", ACT_DOMAINS, 0);
	expect_parse_error("domains win10", 13);
	expect_parse_error("win10 domains", 13);
	ck_assert_str_eq(request_text(text, &q), "domains");
}
END_TEST

/* Replies name the request as its line did, so that a client can tell
 * which of its lines each answers. */
START_TEST(test_replies_to_release_alive_and_status)
{
	struct request q = { .action = ACT_RELEASE };
	char buf[MAX_LINE + 1];
	const char *reason;

	ck_assert_int_gt(reply_format(buf, sizeof(buf), &q, NULL), 0);
	ck_assert_str_eq(buf, "ok release\n");
	ck_assert_int_eq(reply_parse("ok release", &q, &reason), REPLY_OK);
	ck_assert_int_eq(reply_parse("ok win10 release", &q, &reason),
	    REPLY_UNEXPECTED);
	strcpy(q.vm, "win10");
	ck_assert_int_gt(reply_format(buf, sizeof(buf), &q, "1 of 2 devices "
	    "could not be given back"), 0);
	ck_assert_str_eq(buf, "error win10 release: 1 of 2 devices could not "
	    "be given back\n");
	buf[strlen(buf) - 1] = '\0';
	ck_assert_int_eq(reply_parse(buf, &q, &reason), REPLY_ERROR);
	ck_assert_str_eq(reason, "1 of 2 devices could not be given back");
	q.action = ACT_ALIVE;
	q.lease = 30;
	ck_assert_int_gt(reply_format(buf, sizeof(buf), &q, NULL), 0);
	ck_assert_str_eq(buf, "ok win10 alive 30\n");
	ck_assert_int_eq(reply_parse("ok win10 alive 30", &q, &reason), REPLY_OK);
	ck_assert_int_eq(reply_parse("ok win10 alive 3", &q, &reason),
	    REPLY_UNEXPECTED);
	q.action = ACT_STATUS;
	ck_assert_int_eq(reply_parse("ok status", &q, &reason), REPLY_OK);
}
END_TEST

START_TEST(test_lease_lines_of_status)
{
	char buf[MAX_LINE], vm[MAX_VM_NAME + 1];
	unsigned seconds, left;
	static const char *const bad[] = { "win10 0 0", "win10 3601 1",
	    "win10 30", "win10 30 1 1", "1 30 1", "win10 30 -1", "win 10 30 1",
	    NULL };

	/* a max under 10 is a bound too */
	ck_assert_int_eq(decimal_parse("5", 1, 3), -1);
	ck_assert_int_eq(decimal_parse("3", 1, 3), 3);
	ck_assert_int_gt(lease_format(buf, sizeof(buf), "win10", 30, 12), 0);
	ck_assert_str_eq(buf, "lease win10 30 12\n");
	ck_assert(lease_parse(buf + 6, strlen(buf + 6) - 1, vm, &seconds,
	    &left));
	ck_assert_str_eq(vm, "win10");
	ck_assert_uint_eq(seconds, 30);
	ck_assert_uint_eq(left, 12);
	for (const char *const *b = bad; *b != NULL; b++)
		ck_assert_msg(!lease_parse(*b, strlen(*b), vm, &seconds, &left),
		    "'%s' taken for a lease", *b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* shell_reply: one command's answer from virsh's shell                */

#define SH_ID	"0123456789abcdef-4"
#define SH_HELLO "0123456789abcdef-3"
#define SH_TAIL	"virsh # echo --err U\"\"" SH_ID "\n" \
		"virsh # echo U\"\"" SH_ID "\n"

/* stdout and stderr of a fresh shell asked "dumpxml --domain win10"
 * (held), as virsh -q writes them on pipes. */
static const char sh_out[] =
    "virsh # echo --err U\"\"" SH_HELLO "\n"
    "virsh # echo U\"\"" SH_HELLO "\n"
    "U" SH_HELLO
    "virsh # dumpxml '--domain' 'win10'\n"
    "<domain type='kvm'>\n  <name>win10</name>\n</domain>\n\n"
    SH_TAIL "U" SH_ID "virsh # ";
static const char sh_err[] =
    "error: failed to connect to the hypervisor\n"	/* as it started */
    "error: U" SH_HELLO "\n"
    "error: Reconnected to the hypervisor\n"
    "error: U" SH_ID "\n";

static void
sh_start(struct shell_reply *s, struct run *r, char *out, size_t size,
    bool fresh)
{
	memset(r, 0, sizeof(*r));
	r->out = out;
	r->outsize = size;
	ck_assert_int_eq(shell_reply_start(s, r, SH_ID, fresh ? SH_HELLO :
	    NULL), 0);
}

START_TEST(test_shell_answer_is_the_output_between_the_markers)
{
	static struct shell_reply s;
	struct run r;
	char out[256];

	sh_start(&s, &r, out, sizeof(out), true);
	shell_feed_out(&s, sh_out, strlen(sh_out));
	ck_assert(!shell_reply_done(&s));
	shell_feed_err(&s, sh_err, strlen(sh_err));
	ck_assert(shell_reply_done(&s));
	/* What virsh said as it started, and that it reconnected, are not
	 * the command's errors. */
	ck_assert(!s.failed);
	ck_assert_str_eq(r.error, "");
	ck_assert_uint_eq(r.outlen, strlen("<domain type='kvm'>\n  <name>"
	    "win10</name>\n</domain>\n\n"));
	ck_assert_int_eq(memcmp(out, "<domain type='kvm'>\n  <name>win10"
	    "</name>\n</domain>\n\n", r.outlen), 0);
}
END_TEST

START_TEST(test_shell_answer_is_the_same_fed_a_byte_at_a_time)
{
	static struct shell_reply s;
	struct run r;
	char out[256], whole[256];
	size_t len;

	sh_start(&s, &r, whole, sizeof(whole), true);
	shell_feed_out(&s, sh_out, strlen(sh_out));
	len = r.outlen;
	sh_start(&s, &r, out, sizeof(out), true);
	for (size_t i = 0; i < strlen(sh_out); i++) {
		/* Done with the marker's last byte, not before. */
		ck_assert_int_eq(s.out == SHELL_DONE, i >= strlen(sh_out) -
		    strlen("virsh # "));
		shell_feed_out(&s, sh_out + i, 1);
	}
	for (size_t i = 0; i < strlen(sh_err); i++)
		shell_feed_err(&s, sh_err + i, 1);
	ck_assert(shell_reply_done(&s));
	ck_assert_uint_eq(r.outlen, len);
	ck_assert_int_eq(memcmp(out, whole, len), 0);
}
END_TEST

START_TEST(test_shell_errors_of_the_command_fail_it_with_the_last)
{
	static struct shell_reply s;
	struct run r;
	static const char out[] = "virsh # attach-device '--domain' 'w'\n"
	    SH_TAIL "U" SH_ID;
	static const char err[] = "error: Failed to attach device from /x\n"
	    "error: Requested operation is not valid: in use\n"
	    "error: U" SH_ID "\n";

	sh_start(&s, &r, NULL, 0, false);
	shell_feed_out(&s, out, strlen(out));
	shell_feed_err(&s, err, strlen(err));
	ck_assert(shell_reply_done(&s));
	ck_assert(s.failed);
	ck_assert_str_eq(r.error, "Requested operation is not valid: in use");
	ck_assert_uint_eq(r.outlen, 0);
}
END_TEST

START_TEST(test_shell_output_without_a_newline_and_a_scrolled_echo)
{
	static struct shell_reply s;
	struct run r;
	char out[64];
	/* readline on a dumb terminal scrolls a long line: one line still. */
	static const char text[] = "virsh # \r<aaaaaaaaaaaa'\nrunning"
	    SH_TAIL "U" SH_ID;

	sh_start(&s, &r, out, sizeof(out), false);
	shell_feed_out(&s, text, strlen(text));
	ck_assert(s.out == SHELL_DONE);
	ck_assert_uint_eq(r.outlen, 7);
	ck_assert_int_eq(memcmp(out, "running", 7), 0);
}
END_TEST

START_TEST(test_shell_marker_only_as_printed_ends_the_output)
{
	static struct shell_reply s;
	struct run r;
	char out[256];
	/* The quoted marker, as an echo shows it, is output like any. */
	static const char text[] = "virsh # x\nU\"\"" SH_ID "\n" SH_TAIL;

	sh_start(&s, &r, out, sizeof(out), false);
	shell_feed_out(&s, text, strlen(text));
	ck_assert(s.out == SHELL_BODY);
	shell_feed_out(&s, "U" SH_ID, strlen("U" SH_ID));
	ck_assert(s.out == SHELL_DONE);
	ck_assert_uint_eq(r.outlen, strlen("U\"\"" SH_ID "\n"));
}
END_TEST

START_TEST(test_shell_out_of_step_when_the_marker_lacks_its_echoes)
{
	static struct shell_reply s;
	struct run r;
	static const char text[] = "virsh # x\nsomething\nU" SH_ID;

	sh_start(&s, &r, NULL, 0, false);
	shell_feed_out(&s, text, strlen(text));
	ck_assert(s.out == SHELL_LOST);
	ck_assert(!shell_reply_done(&s));
}
END_TEST

START_TEST(test_shell_output_past_room_is_cut_and_the_end_still_found)
{
	static struct shell_reply s;
	static char big[100000];
	struct run r;
	char out[1000];

	sh_start(&s, &r, out, sizeof(out), false);
	shell_feed_out(&s, "virsh # dumpxml\n", 16);
	memset(big, 'x', sizeof(big));
	shell_feed_out(&s, big, sizeof(big));
	shell_feed_out(&s, SH_TAIL "U" SH_ID, strlen(SH_TAIL "U" SH_ID));
	ck_assert(s.out == SHELL_DONE);
	ck_assert_uint_eq(r.outlen, sizeof(out));
}
END_TEST

START_TEST(test_shell_before_its_hello_nothing_is_the_commands)
{
	static struct shell_reply s;
	struct run r;
	char out[64];
	/* A shell that died before its hello never read the command. */
	static const char text[] = "virsh # echo --err U\"\"" SH_HELLO "\n";

	sh_start(&s, &r, out, sizeof(out), true);
	shell_feed_out(&s, text, strlen(text));
	shell_feed_err(&s, "error: no connection\n", 21);
	ck_assert(s.out == SHELL_HELLO);
	ck_assert(s.err == SHELL_HELLO);
	ck_assert(!s.failed);
	ck_assert_uint_eq(r.outlen, 0);
}
END_TEST

START_TEST(test_shell_marker_lines_and_overlong_ids)
{
	struct shell_reply *s = malloc(sizeof(*s));
	struct run r;
	char buf[128], id[SHELL_MARK_MAX + 1];

	ck_assert_int_gt(shell_marker_lines(buf, sizeof(buf), SH_ID), 0);
	ck_assert_str_eq(buf, "echo --err U\"\"" SH_ID "\necho U\"\"" SH_ID "\n");
	ck_assert_int_lt(shell_marker_lines(buf, 20, SH_ID), 0);
	memset(id, 'a', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	ck_assert_ptr_nonnull(s);
	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(shell_reply_start(s, &r, id, NULL), -1);
	ck_assert_int_eq(shell_reply_start(s, &r, SH_ID, id), -1);
	free(s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* uevent_parse                                                        */

/* A message as the kernel sends it: the fields given, each NUL-ended. */
static size_t
uevent_msg(char *buf, size_t size, const char *const *fields)
{
	size_t len = 0;

	for (; *fields != NULL; fields++) {
		size_t n = strlen(*fields) + 1;

		ck_assert_uint_le(len + n, size);
		memcpy(buf + len, *fields, n);
		len += n;
	}
	return len;
}

#define KBD_ADD \
	"add@/devices/pci0000:00/0000:00:04.0/usb1/1-1", \
	"ACTION=add", "DEVPATH=/devices/pci0000:00/0000:00:04.0/usb1/1-1", \
	"SUBSYSTEM=usb", "MAJOR=189", "MINOR=1", "DEVNAME=bus/usb/001/002", \
	"DEVTYPE=usb_device", "PRODUCT=627/1/0", "TYPE=0/0/0", \
	"BUSNUM=001", "DEVNUM=002", "SEQNUM=1794"

/* The message of fields parses, as action, port, device, bus:dev. */
static struct uevent
expect_uevent(const char *const *fields, enum uevent_action action,
    const char *port, const char *device, unsigned bus, unsigned dev)
{
	char buf[UEVENT_MAX], text[DEVICE_TEXT];
	struct uevent ev;

	ck_assert(uevent_parse(buf, uevent_msg(buf, sizeof(buf), fields), &ev));
	ck_assert_int_eq(ev.action, action);
	ck_assert_str_eq(ev.port, port);
	ck_assert_str_eq(device_text(&ev.device, text), device);
	ck_assert_uint_eq(ev.addr.bus, bus);
	ck_assert_uint_eq(ev.addr.dev, dev);
	return ev;
}

START_TEST(test_uevent_of_a_usb_device_added_and_removed)
{
	static const char *const add[] = { KBD_ADD, NULL };
	static const char *const removed[] = {
		"remove@/devices/pci0000:00/0000:00:04.0/usb1/1-1/1-1.4",
		"ACTION=remove",
		"DEVPATH=/devices/pci0000:00/0000:00:04.0/usb1/1-1/1-1.4",
		"SUBSYSTEM=usb", "DEVTYPE=usb_device", "PRODUCT=46d/c52b/1201",
		"BUSNUM=003", "DEVNUM=127", "SEQNUM=1", NULL };
	struct uevent ev;

	ev = expect_uevent(add, UEVENT_ADD, "1-1", "0627:0001", 1, 2);
	ck_assert_uint_eq(ev.seqnum, 1794);
	(void)expect_uevent(removed, UEVENT_REMOVE, "1-1.4", "046d:c52b", 3,
	    127);
}
END_TEST

/* Each message here differs from a good one in one way, and is none. */
START_TEST(test_uevents_that_are_not_a_usb_devices_add_or_remove_are_none)
{
	static const char *const bad[][16] = {
		/* an interface, a root hub, another subsystem, action */
		{ "add@/devices/x/usb1/1-1/1-1:1.0", "ACTION=add",
		  "DEVPATH=/devices/x/usb1/1-1/1-1:1.0", "SUBSYSTEM=usb",
		  "DEVTYPE=usb_interface", "PRODUCT=627/1/0", "BUSNUM=001",
		  "DEVNUM=002", "SEQNUM=1", NULL },
		{ "add@/devices/x/usb1", "ACTION=add", "DEVPATH=/devices/x/usb1",
		  "SUBSYSTEM=usb", "DEVTYPE=usb_device", "PRODUCT=1d6b/2/601",
		  "BUSNUM=001", "DEVNUM=001", "SEQNUM=1", NULL },
		{ "add@/devices/x/usb1/1-1", "ACTION=add",
		  "DEVPATH=/devices/x/usb1/1-1", "SUBSYSTEM=input",
		  "DEVTYPE=usb_device", "PRODUCT=627/1/0", "BUSNUM=001",
		  "DEVNUM=002", "SEQNUM=1", NULL },
		{ "bind@/devices/x/usb1/1-1", "ACTION=bind",
		  "DEVPATH=/devices/x/usb1/1-1", "SUBSYSTEM=usb",
		  "DEVTYPE=usb_device", "PRODUCT=627/1/0", "BUSNUM=001",
		  "DEVNUM=002", "SEQNUM=1", NULL },
		/* the header says another action, or another path */
		{ "remove@/devices/x/usb1/1-1", "ACTION=add",
		  "DEVPATH=/devices/x/usb1/1-1", "SUBSYSTEM=usb",
		  "DEVTYPE=usb_device", "PRODUCT=627/1/0", "BUSNUM=001",
		  "DEVNUM=002", "SEQNUM=1", NULL },
		{ "add@/devices/x/usb1/1-2", "ACTION=add",
		  "DEVPATH=/devices/x/usb1/1-1", "SUBSYSTEM=usb",
		  "DEVTYPE=usb_device", "PRODUCT=627/1/0", "BUSNUM=001",
		  "DEVNUM=002", "SEQNUM=1", NULL },
		/* a key twice; one missing; numbers out of range */
		{ "add@/devices/x/usb1/1-1", "ACTION=add",
		  "DEVPATH=/devices/x/usb1/1-1", "SUBSYSTEM=usb",
		  "DEVTYPE=usb_device", "PRODUCT=627/1/0", "PRODUCT=46d/c52b/0",
		  "BUSNUM=001", "DEVNUM=002", "SEQNUM=1", NULL },
		{ "add@/devices/x/usb1/1-1", "ACTION=add",
		  "DEVPATH=/devices/x/usb1/1-1", "SUBSYSTEM=usb",
		  "DEVTYPE=usb_device", "BUSNUM=001", "DEVNUM=002", "SEQNUM=1",
		  NULL },
		{ "add@/devices/x/usb1/1-1", "ACTION=add",
		  "DEVPATH=/devices/x/usb1/1-1", "SUBSYSTEM=usb",
		  "DEVTYPE=usb_device", "PRODUCT=10627/1/0", "BUSNUM=001",
		  "DEVNUM=002", "SEQNUM=1", NULL },
		{ "add@/devices/x/usb1/1-1", "ACTION=add",
		  "DEVPATH=/devices/x/usb1/1-1", "SUBSYSTEM=usb",
		  "DEVTYPE=usb_device", "PRODUCT=627/1/0", "BUSNUM=256",
		  "DEVNUM=002", "SEQNUM=1", NULL },
		{ "add@/devices/x/usb1/1-1", "ACTION=add",
		  "DEVPATH=/devices/x/usb1/1-1", "SUBSYSTEM=usb",
		  "DEVTYPE=usb_device", "PRODUCT=627/1/0", "BUSNUM=001",
		  "DEVNUM=000", "SEQNUM=1", NULL },
		{ "add@/devices/x/usb1/1-1", "ACTION=add",
		  "DEVPATH=/devices/x/usb1/1-1", "SUBSYSTEM=usb",
		  "DEVTYPE=usb_device", "PRODUCT=627/1/0", "BUSNUM=001",
		  "DEVNUM=002", "SEQNUM=-1", NULL },
		/* udevd's messages start with "libudev" */
		{ "libudev", "ACTION=add", NULL },
	};
	char buf[UEVENT_MAX + 2];
	struct uevent ev;
	size_t len;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = uevent_msg(buf, sizeof(buf), bad[i]);
		ck_assert_msg(!uevent_parse(buf, len, &ev), "message %zu taken",
		    i);
	}
	/* the good one, cut short (no last NUL), with a byte that is no
	 * text, and too long */
	static const char *const good[] = { KBD_ADD, NULL };
	len = uevent_msg(buf, sizeof(buf), good);
	ck_assert(uevent_parse(buf, len, &ev));
	ck_assert(!uevent_parse(buf, len - 1, &ev));
	buf[5] = '\x1b';
	ck_assert(!uevent_parse(buf, len, &ev));
	memset(buf, 'a', sizeof(buf));
	buf[UEVENT_MAX] = '\0';
	ck_assert(!uevent_parse(buf, UEVENT_MAX + 1, &ev));
}
END_TEST

Suite *
parse_suite(void)
{
	Suite *s = suite_create("parse");
	TCase *tc;

	tc = tcase_create("valid_vm_name");
	tcase_add_test(tc, test_vm_name_that_virsh_reads_as_an_id_or_uuid_is_rejected);
	tcase_add_test(tc, test_vm_name_with_digits_and_more_is_accepted);
	tcase_add_test(tc, test_parse_numeric_vm_name_says_why);
	tcase_add_test(tc, test_vm_name_plain_is_accepted);
	tcase_add_test(tc,
	    test_vm_name_letters_digits_dot_underscore_plus_dash_are_accepted);
	tcase_add_test(tc, test_vm_name_empty_is_rejected);
	tcase_add_test(tc, test_vm_name_leading_dash_is_rejected);
	tcase_add_test(tc, test_vm_name_of_max_length_is_accepted);
	tcase_add_test(tc, test_vm_name_over_max_length_is_rejected);
	tcase_add_test(tc, test_vm_name_slash_is_rejected);
	tcase_add_test(tc, test_vm_name_path_traversal_is_rejected);
	tcase_add_test(tc, test_vm_name_quotes_are_rejected);
	tcase_add_test(tc, test_vm_name_markup_is_rejected);
	tcase_add_test(tc, test_vm_name_blanks_are_rejected);
	tcase_add_test(tc, test_vm_name_nul_inside_is_rejected);
	tcase_add_test(tc, test_vm_name_high_bytes_are_rejected);
	tcase_add_test(tc,
	    test_vm_name_every_byte_outside_the_whitelist_is_rejected);
	suite_add_tcase(s, tc);


	tc = tcase_create("config_line");
	tcase_add_test(tc, test_config_allow_line_gives_the_device);
	tcase_add_test(tc, test_config_assign_line_gives_the_domain_and_device);
	tcase_add_test(tc, test_config_blank_and_comment_lines_say_nothing);
	tcase_add_test(tc, test_config_malformed_lines_say_why);
	tcase_add_test(tc, test_config_nul_byte_is_malformed);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse_device");
	tcase_add_test(tc, test_device_lower_case_is_kept);
	tcase_add_test(tc, test_device_upper_case_is_lowered);
	tcase_add_test(tc, test_device_wrong_length_is_rejected);
	tcase_add_test(tc, test_device_missing_colon_is_rejected);
	tcase_add_test(tc, test_device_non_hex_is_rejected);
	tcase_add_test(tc, test_device_extra_characters_are_rejected);
	tcase_add_test(tc, test_device_leading_dash_is_rejected);
	tcase_add_test(tc, test_device_nul_inside_is_rejected);
	tcase_add_test(tc, test_device_high_bytes_are_rejected);
	tcase_add_test(tc, test_sysfs_number_takes_the_kernels_text_only);
	tcase_add_test(tc, test_device_at_a_port_is_accepted);
	tcase_add_test(tc, test_device_at_a_bad_port_is_rejected);
	suite_add_tcase(s, tc);

	tc = tcase_create("line_feed");
	tcase_add_test(tc, test_line_in_one_chunk_is_ready);
	tcase_add_test(tc, test_line_fed_byte_by_byte_comes_out_whole);
	tcase_add_test(tc, test_line_two_in_one_chunk_come_out_one_at_a_time);
	tcase_add_test(tc, test_line_partial_then_rest_is_ready);
	tcase_add_test(tc, test_line_empty_is_ready_and_empty);
	tcase_add_test(tc, test_line_of_max_length_is_ready);
	tcase_add_test(tc, test_line_over_max_length_is_overlong);
	tcase_add_test(tc, test_line_after_overlong_is_ready_and_intact);
	tcase_add_test(tc, test_line_overlong_across_chunks_is_reported_once);
	tcase_add_test(tc,
	    test_line_overlong_without_newline_is_finished_as_overlong);
	tcase_add_test(tc, test_line_last_without_newline_is_finished);
	tcase_add_test(tc, test_line_finish_on_nothing_is_more);
	tcase_add_test(tc, test_line_finish_after_ready_is_more);
	tcase_add_test(tc, test_line_nul_bytes_are_kept);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse_line");
	tcase_add_test(tc, test_parse_attach_command);
	tcase_add_test(tc, test_parse_detach_command);
	tcase_add_test(tc, test_parse_device_is_lowered);
	tcase_add_test(tc, test_parse_only_len_bytes_are_read);
	tcase_add_test(tc, test_parse_trailing_cr_is_dropped);
	tcase_add_test(tc, test_parse_surrounding_blanks_are_dropped);
	tcase_add_test(tc, test_parse_several_blanks_between_fields);
	tcase_add_test(tc, test_parse_vm_name_of_max_length_is_accepted);
	tcase_add_test(tc, test_parse_empty_line_is_empty);
	tcase_add_test(tc, test_parse_blank_line_is_empty);
	tcase_add_test(tc, test_parse_reply_on);
	tcase_add_test(tc, test_parse_reply_off);
	tcase_add_test(tc, test_parse_reply_unknown_value_is_error);
	tcase_add_test(tc, test_parse_one_field_is_error);
	tcase_add_test(tc, test_parse_two_fields_is_error);
	tcase_add_test(tc, test_parse_four_fields_is_error);
	tcase_add_test(tc, test_parse_unknown_action_is_error);
	tcase_add_test(tc, test_parse_hostile_fields_are_errors);
	tcase_add_test(tc, test_parse_nul_in_each_field_is_error);
	tcase_add_test(tc, test_parse_high_byte_in_each_field_is_error);
	tcase_add_test(tc, test_parse_vm_name_over_max_length_is_error);
	tcase_add_test(tc, test_parse_very_long_line_is_error);
	suite_add_tcase(s, tc);

	tc = tcase_create("event and ledger lines");
	tcase_add_test(tc, test_event_lifecycle_lines_give_domain_and_event);
	tcase_add_test(tc, test_event_other_lines_are_none);
	tcase_add_test(tc, test_ledger_line_round_trips);
	tcase_add_test(tc, test_ledger_line_keeps_the_serial);
	tcase_add_test(tc, test_ledger_lines_not_ours_are_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("uevents");
	tcase_add_test(tc, test_uevent_of_a_usb_device_added_and_removed);
	tcase_add_test(tc, test_uevents_that_are_not_a_usb_devices_add_or_remove_are_none);
	suite_add_tcase(s, tc);

	tc = tcase_create("release, alive, status");
	tcase_add_test(tc, test_parse_release_of_a_domain_or_of_every_one);
	tcase_add_test(tc, test_parse_alive_takes_seconds_from_0_to_3600);
	tcase_add_test(tc, test_parse_status_is_one_word);
	tcase_add_test(tc, test_parse_domains_is_one_word);
	tcase_add_test(tc, test_replies_to_release_alive_and_status);
	tcase_add_test(tc, test_lease_lines_of_status);
	suite_add_tcase(s, tc);

	return s;
}

Suite *
text_suite(void)
{
	Suite *s = suite_create("text");
	TCase *tc;

	tc = tcase_create("xml_format");
	tcase_add_test(tc, test_xml_document_is_exact);
	tcase_add_test(tc, test_xml_returns_its_length);
	tcase_add_test(tc, test_xml_fits_in_xml_max);
	tcase_add_test(tc, test_xml_one_byte_short_is_error);
	tcase_add_test(tc, test_xml_exact_room_fits);
	tcase_add_test(tc, test_xml_with_an_address_names_bus_and_device);
	suite_add_tcase(s, tc);

	tc = tcase_create("escape_text");
	tcase_add_test(tc, test_escape_printable_passes_unchanged);
	tcase_add_test(tc, test_escape_control_bytes_become_hex);
	tcase_add_test(tc, test_escape_nul_byte_becomes_hex);
	tcase_add_test(tc, test_escape_del_and_high_bytes_become_hex);
	tcase_add_test(tc, test_escape_backslash_becomes_hex);
	tcase_add_test(tc, test_escape_hex_is_lower_case);
	tcase_add_test(tc, test_escape_every_byte_gives_printable_ascii);
	tcase_add_test(tc, test_escape_never_ends_in_partial_escape);
	tcase_add_test(tc, test_escape_stops_at_first_escape_that_does_not_fit);
	tcase_add_test(tc, test_escape_output_never_exceeds_size);
	tcase_add_test(tc, test_escape_size_one_gives_empty_string);
	tcase_add_test(tc, test_escape_is_nul_terminated);
	suite_add_tcase(s, tc);

	tc = tcase_create("reply_format");
	tcase_add_test(tc, test_reply_ok);
	tcase_add_test(tc, test_reply_error_with_reason);
	tcase_add_test(tc, test_reply_reason_control_bytes_are_escaped);
	tcase_add_test(tc, test_reply_is_one_line_of_printable_ascii);
	tcase_add_test(tc, test_reply_long_reason_is_cut);
	tcase_add_test(tc, test_reply_long_escaped_reason_is_cut_at_an_escape);
	tcase_add_test(tc, test_reply_longest_fits_in_a_line);
	tcase_add_test(tc, test_reply_buffer_too_small_is_error);
	tcase_add_test(tc, test_reply_invalid);
	tcase_add_test(tc, test_reply_invalid_why_is_escaped);
	tcase_add_test(tc, test_reply_invalid_buffer_too_small_is_error);
	suite_add_tcase(s, tc);

	tc = tcase_create("shell_reply");
	tcase_add_test(tc, test_shell_answer_is_the_output_between_the_markers);
	tcase_add_test(tc, test_shell_answer_is_the_same_fed_a_byte_at_a_time);
	tcase_add_test(tc, test_shell_errors_of_the_command_fail_it_with_the_last);
	tcase_add_test(tc, test_shell_output_without_a_newline_and_a_scrolled_echo);
	tcase_add_test(tc, test_shell_marker_only_as_printed_ends_the_output);
	tcase_add_test(tc, test_shell_out_of_step_when_the_marker_lacks_its_echoes);
	tcase_add_test(tc, test_shell_output_past_room_is_cut_and_the_end_still_found);
	tcase_add_test(tc, test_shell_before_its_hello_nothing_is_the_commands);
	tcase_add_test(tc, test_shell_marker_lines_and_overlong_ids);
	suite_add_tcase(s, tc);

	tc = tcase_create("reply_parse");
	tcase_add_test(tc, test_reply_parse_ok_round_trip);
	tcase_add_test(tc, test_reply_parse_error_round_trip);
	tcase_add_test(tc, test_reply_parse_escaped_reason_round_trip);
	tcase_add_test(tc, test_reply_parse_invalid_line_error);
	tcase_add_test(tc, test_reply_parse_invalid_round_trip);
	tcase_add_test(tc, test_reply_parse_other_device_is_unexpected);
	tcase_add_test(tc, test_reply_parse_other_vm_is_unexpected);
	tcase_add_test(tc, test_reply_parse_other_action_is_unexpected);
	tcase_add_test(tc, test_reply_parse_garbage_is_unexpected);
	suite_add_tcase(s, tc);

	return s;
}
