/*
 * fuzz_config.c: libFuzzer target for the daemon's reader of its
 * configuration file's lines. An allow or assign line must give a device
 * we can write back (and assign, a domain name we accept); an error must
 * say why.
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
	char text[DEVICE_TEXT], vm[MAX_VM_NAME + 1];
	struct usb_device device;
	const char *why = NULL;

	switch (config_line((const char *)data, size, &device, vm, &why)) {
	case CONFIG_ASSIGN:
		CHECK(valid_vm_name(vm, strlen(vm)));
		/* FALLTHROUGH */
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
