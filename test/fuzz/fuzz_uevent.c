/*
 * fuzz_uevent.c: libFuzzer target for the kernel's uevent messages as
 * the daemon reads them (common.h's uevent_parse). What it accepts names
 * a port the validators take, ids of four hex digits, and a bus and
 * device number a USB device can have.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>

#include "../../common.h"

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct uevent ev;

	if (!uevent_parse((const char *)data, size, &ev))
		return 0;
	CHECK(ev.action == UEVENT_ADD || ev.action == UEVENT_REMOVE);
	CHECK(valid_port(ev.port, strlen(ev.port)));
	CHECK(ev.device.vendor <= 0xffff && ev.device.product <= 0xffff);
	CHECK(!device_has_port(&ev.device));
	CHECK(ev.addr.bus >= 1 && ev.addr.bus <= 255);
	CHECK(ev.addr.dev >= 1 && ev.addr.dev <= 255);
	return 0;
}
