/*
 * fuzz_ctlconf.c: libFuzzer target for usbctl's configuration file (a
 * user's, or one a user was handed) and its hotkeys' chord matcher. Each
 * line goes through ctl_line_parse; the hotkeys it takes are then fed
 * the input's bytes as key events, three bytes an event (code, code,
 * value). The source is included whole, its main renamed, as the tests
 * do.
 */
int usbctl_main(int, char *[]);
#define main usbctl_main
#include "../../usbctl.c"	/* first: it sets _GNU_SOURCE */
#undef main

#include <stdint.h>

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ctl_line l;
	struct hotkey hk[MAX_HOTKEYS];
	struct keys_down k = { .n = 0 };
	const char *p = (const char *)data, *end = p + size, *nl;
	int nh = 0, fired;

	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		switch (ctl_line_parse(p, (size_t)(nl - p), &l)) {
		case CTL_HOOK:
			CHECK(l.hook.nwords >= 1 && l.hook.nwords <= HOOK_ARGS + 1);
			CHECK(l.hook.words[0] == '/');
			break;
		case CTL_HOTKEY:
			CHECK(l.hotkey.chord.n >= 1 &&
			    l.hotkey.chord.n <= CHORD_KEYS);
			for (unsigned i = 0; i < l.hotkey.chord.n; i++)
				CHECK(l.hotkey.chord.key[i] >= 1 &&
				    l.hotkey.chord.key[i] <= KEY_MAX);
			if (nh < MAX_HOTKEYS)
				hk[nh++] = l.hotkey;
			break;
		case CTL_ERROR:
			CHECK(l.why != NULL);
			break;
		case CTL_KEYBOARD:
			CHECK(strlen(l.keyboard.name) <= MAX_CONFIG_LINE);
			break;
		default:
			break;
		}
	}
	for (size_t i = 0; i + 3 <= size; i += 3) {
		fired = chord_feed(&k, hk, nh, (unsigned)data[i] << 8 | data[i + 1],
		    (int)(data[i + 2] % 4) - 1);
		CHECK(fired >= -1 && fired < nh);
		CHECK(k.n <= KEY_MAX + 1);
		if (fired >= 0)
			CHECK(k.n == hk[fired].chord.n);
	}
	return 0;
}
