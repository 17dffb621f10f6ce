/*
 * keys.c: make check-usb's hands on a keyboard of the kernel's own: a
 * uinput device, "usb-test keys", that stays with the outer machine
 * whatever usbserver moves. For each line on standard input it presses
 * the chord Left Ctrl + Right Ctrl and lets go, as a person would, and
 * answers "pressed" with the time (CLOCK_MONOTONIC, the clock of the
 * journal's monotonic stamps) just before the second key went down.
 * It prints "ready" once the device is there; EOF ends it.
 */
#define _GNU_SOURCE
#include <linux/uinput.h>

#include <err.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void
emit(int fd, unsigned short type, unsigned short code, int value)
{
	struct input_event ev = { .type = type, .code = code, .value = value };

	if (write(fd, &ev, sizeof(ev)) != (ssize_t)sizeof(ev))
		err(1, "uinput write");
}

static void
key(int fd, unsigned short code, int value)
{
	emit(fd, EV_KEY, code, value);
	emit(fd, EV_SYN, SYN_REPORT, 0);
}

int
main(void)
{
	struct uinput_setup us = { .id = { .bustype = BUS_VIRTUAL,
	    .vendor = 0x1209, .product = 0x0001 } };
	struct timespec ts;
	char line[64];
	int fd;

	if ((fd = open("/dev/uinput", O_WRONLY | O_CLOEXEC)) == -1)
		err(1, "/dev/uinput");
	snprintf(us.name, sizeof(us.name), "usb-test keys");
	if (ioctl(fd, UI_SET_EVBIT, EV_KEY) == -1 ||
	    ioctl(fd, UI_SET_KEYBIT, KEY_LEFTCTRL) == -1 ||
	    ioctl(fd, UI_SET_KEYBIT, KEY_RIGHTCTRL) == -1 ||
	    ioctl(fd, UI_SET_KEYBIT, KEY_A) == -1 ||
	    ioctl(fd, UI_DEV_SETUP, &us) == -1 ||
	    ioctl(fd, UI_DEV_CREATE) == -1)
		err(1, "uinput setup");
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		key(fd, KEY_LEFTCTRL, 1);
		clock_gettime(CLOCK_MONOTONIC, &ts);	/* before: the reader
							 * may run first */
		key(fd, KEY_RIGHTCTRL, 1);
		key(fd, KEY_RIGHTCTRL, 0);
		key(fd, KEY_LEFTCTRL, 0);
		printf("pressed %lld\n", (long long)ts.tv_sec * 1000 +
		    ts.tv_nsec / 1000000);
		fflush(stdout);
	}
	ioctl(fd, UI_DEV_DESTROY);
	close(fd);
	return 0;
}
