/*
 * fuzz_peer.c: libFuzzer target for the daemon's other readers of bytes
 * it does not control: a peer's command line (/proc/PID/cmdline, where
 * the peer may be a compromised QEMU) and the allow lines of the
 * configuration file. A guest's name, when found, must be one the
 * validator accepts.
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
	char name[MAX_VM_NAME + 1], text[DEVICE_TEXT];
	struct usb_device device;
	const char *why = NULL;

	if (qemu_peer_name((const char *)data, size, name) == PEER_GUEST)
		CHECK(valid_vm_name(name, strlen(name)));
	switch (config_line((const char *)data, size, &device, &why)) {
	case CONFIG_ALLOW:
		device_text(&device, text);
		CHECK(strlen(text) >= DEVICE_LEN && text[4] == ':');
		break;
	case CONFIG_ERROR:
		CHECK(why != NULL);
		break;
	case CONFIG_NOTHING:
		break;
	}
	return 0;
}
