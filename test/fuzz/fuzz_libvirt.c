/*
 * fuzz_libvirt.c: libFuzzer target for what the daemon reads of
 * libvirt's and its own state: lines of "virsh event" and of the ledger
 * file, and what usbctl reads of the daemon's status (a lease or an
 * assign line). An event names a domain the validators take; a ledger
 * entry, a lease or an assignment written back is read back the same.
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
	const char *line = (const char *)data;
	char vm[MAX_VM_NAME + 1], buf[LEDGER_LINE];
	struct ledger_entry e, back;
	char vm2[MAX_VM_NAME + 1];
	unsigned seconds, left, s2, l2;
	struct usb_device d, d2;
	bool attached, a2;
	enum vm_event ev;
	int n;

	if (event_parse(line, size, vm, &ev)) {
		CHECK(valid_vm_name(vm, strlen(vm)));
		CHECK(ev >= VM_EVENT_OTHER && ev <= VM_EVENT_PMSUSPENDED);
	}
	if (ledger_parse(line, size, &e)) {
		CHECK(valid_vm_name(e.vm, strlen(e.vm)));
		CHECK(e.at[0] == '\0' || valid_port(e.at, strlen(e.at)));
		CHECK((e.addr.bus == 0) == (e.addr.dev == 0));
		n = ledger_format(buf, sizeof(buf), &e);
		CHECK(n > 0 && buf[n - 1] == '\n');
		CHECK(ledger_parse(buf, (size_t)n - 1, &back));
		CHECK(strcmp(back.vm, e.vm) == 0 && strcmp(back.at, e.at) == 0 &&
		    device_equal(&back.device, &e.device) &&
		    back.addr.bus == e.addr.bus && back.addr.dev == e.addr.dev &&
		    back.since == e.since && back.serial == e.serial);
	}
	if (assign_parse(line, size, vm, &d, &attached)) {
		CHECK(valid_vm_name(vm, strlen(vm)));
		n = assign_format(buf, sizeof(buf), vm, &d, attached);
		CHECK(n > 7 && buf[n - 1] == '\n');
		CHECK(assign_parse(buf + 7, (size_t)n - 8, vm2, &d2, &a2) &&
		    strcmp(vm, vm2) == 0 && device_equal(&d, &d2) &&
		    attached == a2);
	}
	if (lease_parse(line, size, vm, &seconds, &left)) {
		CHECK(valid_vm_name(vm, strlen(vm)));
		CHECK(seconds >= 1 && seconds <= MAX_LEASE && left <= MAX_LEASE);
		n = lease_format(buf, sizeof(buf), vm, seconds, left);
		CHECK(n > 6 && buf[n - 1] == '\n');
		CHECK(lease_parse(buf + 6, (size_t)n - 7, vm2, &s2, &l2) &&
		    strcmp(vm, vm2) == 0 && s2 == seconds && l2 == left);
	}
	return 0;
}
