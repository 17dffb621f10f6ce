/*
 * fuzz_usbctl.c: libFuzzer target for usbctl's readers of virsh output:
 * "virsh list --name" and a domain's XML ("virsh dumpxml", which holds
 * whatever the domain's owner wrote). The source is included whole, its
 * main renamed, as the tests do.
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
	static char buf[XML_READ_MAX + 1];
	struct hostdev devs[MAX_HOSTDEVS];
	char name[MAX_VM_NAME + 1];
	int n;

	if (size > XML_READ_MAX)
		size = XML_READ_MAX;
	memcpy(buf, data, size);
	buf[size] = '\0';		/* as domain_hostdevs() does */
	if (list_first(buf, size, name, sizeof(name)) == 0)
		CHECK(strlen(name) < sizeof(name));
	n = hostdevs_parse(buf, size, devs, MAX_HOSTDEVS);
	CHECK(n >= 0 && n <= MAX_HOSTDEVS);
	for (int i = 0; i < n; i++)
		CHECK(devs[i].device.vendor <= 0xffff &&
		    devs[i].device.product <= 0xffff && devs[i].device.port[0] == '\0');
	n = domain_hostdevs_parse(buf, size, devs, MAX_HOSTDEVS);
	CHECK(n >= -1 && n <= MAX_HOSTDEVS);
	return 0;
}
