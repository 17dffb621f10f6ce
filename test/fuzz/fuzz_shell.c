/*
 * fuzz_shell.c: libFuzzer target for what virsh's shell writes back as
 * the daemon reads it (common.h's shell_reply). The first bytes choose
 * a fresh shell or not, and where stdout ends and stderr begins; both
 * are fed in pieces of varying size. Whatever comes, the output kept
 * fits its room, and an answer found whole holds no marker as printed.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>

#include "../../common.h"

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)
#define ID		"0123456789abcdef-2"
#define HELLO		"0123456789abcdef-1"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct shell_reply s;
	static struct run r;
	static char out[512];
	const char *p = (const char *)data;
	size_t split, step;

	if (size < 3)
		return 0;
	memset(&r, 0, sizeof(r));
	r.out = out;
	r.outsize = sizeof(out);
	CHECK(shell_reply_start(&s, &r, ID, data[0] & 1 ? HELLO : NULL) == 0);
	step = (size_t)(data[0] >> 1) + 1;
	split = data[1] % (size - 1);
	p += 2;
	size -= 2;
	for (size_t i = 0; i < split; i += step)
		shell_feed_out(&s, p + i, split - i < step ? split - i : step);
	for (size_t i = split; i < size; i += step)
		shell_feed_err(&s, p + i, size - i < step ? size - i : step);
	CHECK(r.outlen <= r.outsize);
	CHECK(s.winlen <= sizeof(s.win));
	if (s.out == SHELL_DONE)
		CHECK(memmem(out, r.outlen, "U" ID, strlen("U" ID)) == NULL);
	return 0;
}
