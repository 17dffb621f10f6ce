# usbserver: a software KVM switch for libvirt domains.
#
#   make                  build usbserver and usbctl
#   make check            run the test suite, then again under ASan+UBSan
#   make check-deep       that, then under valgrind and ThreadSanitizer
#   make check-usb        install as the README says on a Debian machine
#                         booting systemd under QEMU, and move its real
#                         (emulated) USB keyboard (root; mmdebstrap, cpio,
#                         qemu-system-x86)
#   make bench            usbserver against the guide's Python design
#                         (needs python3, python3-libvirt, socat, virsh)
#   make fuzz             libFuzzer on every reader of outside bytes
#                         (FUZZ_SECONDS=60 a target; needs clang)
#   make install          PREFIX=/usr/local, DESTDIR, BINDIR, MANDIR,
#                         SYSTEMDUNITDIR, SYSUSERSDIR, DOCDIR, BASHCOMPDIR,
#                         LIBEXECDIR (usbctl watch's hooks)
#
# Your CFLAGS are added to ours, never in place of them.

PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
MANDIR	?= $(PREFIX)/share/man
DOCDIR	?= $(PREFIX)/share/doc/usbserver
LIBEXECDIR ?= $(PREFIX)/libexec/usbserver
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
# UNITDIR is this variable's old name.
UNITDIR	?= /etc/systemd/system
SYSTEMDUNITDIR ?= $(UNITDIR)
SYSUSERSDIR ?= /etc/sysusers.d
DESTDIR	?=

CC	?= cc
CFLAGS	?= -O2 -g
WARN	 = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wwrite-strings
HARDEN	 = -fstack-protector-strong -D_FORTIFY_SOURCE=2
MY_CFLAGS = -std=c11 $(WARN) -pthread

# Where a build goes; "make check" builds twice: here and, sanitized,
# under build/sanitize.
O	?= .
SAN	?=
SANITIZE = -fsanitize=address,undefined -fno-sanitize-recover=all \
	   -fno-omit-frame-pointer

CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

# The daemon the live tests run; check-valgrind puts a wrapper here.
DAEMON_BIN ?= $(abspath $(O)/usbserver)

TEST_SRC = test/check_main.c test/helpers.c test/test_common.c \
	   test/test_virsh.c test/test_client.c test/test_daemon.c \
	   test/test_e2e.c test/test_load.c

# -O0 -g for the sanitized build: clear reports; FORTIFY needs -O.
ifeq ($(SAN),)
BUILD_CFLAGS = $(MY_CFLAGS) $(HARDEN) $(CFLAGS)
else
BUILD_CFLAGS = $(MY_CFLAGS) $(CFLAGS) -O1 -g $(SAN)
endif

.PHONY: all check check-plain check-sanitize check-valgrind check-tsan check-deep \
	check-usb usb-image \
	test-run bench bench-libvirt fuzz install uninstall clean

all: $(O)/usbserver $(O)/usbctl

$(O)/usbserver: usbserver.c common.h
	@mkdir -p $(O)
	$(CC) $(BUILD_CFLAGS) $(CPPFLAGS) $(LDFLAGS) -o $@ usbserver.c

$(O)/usbctl: usbctl.c common.h
	@mkdir -p $(O)
	$(CC) $(BUILD_CFLAGS) $(CPPFLAGS) $(LDFLAGS) -o $@ usbctl.c

# The end-to-end suite's guest: a boot sector, built with GNU as and ld.
# Without an x86 assembler there is no image, and that suite says SKIP.
AS	= as
LD	= ld
$(O)/test/guest.img: test/guest.S
	@mkdir -p $(O)/test
	@rm -f $@
	-$(AS) --32 -o $(O)/test/guest.o test/guest.S && \
	$(LD) -m elf_i386 -Ttext 0x7c00 --oformat binary -o $@ $(O)/test/guest.o

# The end-to-end suite's second guest: one line, then a panic (pvpanic).
$(O)/test/guest-panic.img: test/guest.S
	@mkdir -p $(O)/test
	@rm -f $@
	-$(AS) --32 --defsym PANIC_TEST=1 -o $(O)/test/guest-panic.o test/guest.S && \
	$(LD) -m elf_i386 -Ttext 0x7c00 --oformat binary -o $@ $(O)/test/guest-panic.o

# make check-usb's inner guest: the same boot sector, told on COM2 to
# write its detach or alive line, or to panic.
$(O)/test/guest-usb.img: test/guest.S
	@mkdir -p $(O)/test
	$(AS) --32 --defsym USB_TEST=1 -o $(O)/test/guest-usb.o test/guest.S
	$(LD) -m elf_i386 -Ttext 0x7c00 --oformat binary -o $@ $(O)/test/guest-usb.o

# The load tests' virsh: a compiled fake, as the benchmark's. Never
# sanitized: it is a fixture, and it must be quick.
$(O)/test/fast-virsh: test/bench/fast-virsh.c
	@mkdir -p $(O)/test
	$(CC) $(MY_CFLAGS) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) -o $@ test/bench/fast-virsh.c

$(O)/test/check_usbserver: $(TEST_SRC) test/tests.h common.h usbserver.c usbctl.c
	@if [ -z "$(CHECK_LIBS)" ]; then \
		echo "the Check framework is missing: apt-get install check pkg-config" >&2; \
		exit 1; fi
	@mkdir -p $(O)/test
	$(CC) $(BUILD_CFLAGS) $(CPPFLAGS) $(CHECK_CFLAGS) -Itest \
		-DUSBSERVER_BIN='"$(DAEMON_BIN)"' \
		-DUSBCTL_BIN='"$(abspath $(O)/usbctl)"' \
		-DGUEST_IMG='"$(abspath $(O)/test/guest.img)"' \
		-DGUEST_PANIC_IMG='"$(abspath $(O)/test/guest-panic.img)"' \
		-DFAST_VIRSH='"$(abspath $(O)/test/fast-virsh)"' \
		-DSRC_DIR='"$(abspath .)"' -DBUILD_DIR='"$(abspath $(O))"' \
		-DBENCH_PYTHON='"$(BENCH_PYTHON)"' \
		$(LDFLAGS) -o $@ $(TEST_SRC) $(CHECK_LIBS)

test-run: $(O)/usbserver $(O)/usbctl $(O)/test/check_usbserver \
	  $(O)/test/guest.img $(O)/test/guest-panic.img $(O)/test/fast-virsh
	$(O)/test/check_usbserver

check: check-plain check-sanitize

check-plain:
	$(MAKE) test-run

check-sanitize:
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1 \
	$(MAKE) O=build/sanitize SAN="$(SANITIZE)" test-run

# The whole suite with the daemon under valgrind memcheck, and built with
# ThreadSanitizer; check-deep runs all three. There every virsh run is
# slow: LOAD_COMMANDS=N gives the load test's 500 clients N commands
# each instead of 20 (CI: 2, to fit its time).
LOAD_COMMANDS ?=
VG = build/valgrind
check-deep: check check-valgrind check-tsan

check-valgrind:
	rm -rf $(VG)/logs $(VG)/test
	mkdir -p $(VG)/logs
	USBSERVER_LOAD_COMMANDS=$(LOAD_COMMANDS) \
	VALGRIND_LOGS=$(abspath $(VG)/logs) \
	VALGRIND_DAEMON=$(abspath $(VG)/usbserver) \
	$(MAKE) O=$(VG) DAEMON_BIN=$(abspath test/valgrind-usbserver) test-run
	@# "--PID--" lines are valgrind's notes on itself (it does not know
	@# pidfd_open, so the daemon's fallback without pidfds runs here).
	@if cat $(VG)/logs/* | grep -v '^--[0-9]*-- ' | grep -q .; then \
		cat $(VG)/logs/*; echo "valgrind: errors in the daemon" >&2; \
		exit 1; fi; echo "valgrind: the daemon ran clean"

# The install path and a real keyboard (test/usb/): a Debian machine
# built here with mmdebstrap boots systemd under QEMU with USB devices of
# its own, installs this build as the README says, and moves them into a
# domain of its libvirtd. Needs root, mmdebstrap, cpio and
# qemu-system-x86. The machine is built again when test/usb/mkimage
# changes, or after make clean; USB_DEADLINE=SECONDS bounds its run.
USB = build/usb
$(USB)/vmlinuz: test/usb/mkimage
	test/usb/mkimage $(USB)

usb-image: $(USB)/vmlinuz

# Its hands on a keyboard of the kernel's own (uinput), for the hotkeys.
$(O)/test/usb-keys: test/usb/keys.c
	@mkdir -p $(O)/test
	$(CC) $(MY_CFLAGS) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) -o $@ test/usb/keys.c

check-usb: $(O)/usbserver $(O)/usbctl $(O)/test/guest-usb.img $(O)/test/usb-keys \
	$(USB)/vmlinuz
	test/usb/run $(USB) $(O)

# The benchmark (test/bench/): it reports figures, it does not judge
# them. BENCH_FLAGS=--quick runs a small one, as CI does.
BENCH_PYTHON ?= /usr/bin/python3
BENCH_FLAGS ?=
BENCH_CFLAGS = $(MY_CFLAGS) $(HARDEN) $(CFLAGS)

build/bench/bench: test/bench/bench.c
	@mkdir -p build/bench
	$(CC) $(BENCH_CFLAGS) $(CPPFLAGS) $(LDFLAGS) -o $@ test/bench/bench.c

build/bench/fast-virsh: test/bench/fast-virsh.c
	@mkdir -p build/bench
	$(CC) $(BENCH_CFLAGS) $(CPPFLAGS) $(LDFLAGS) -o $@ test/bench/fast-virsh.c

bench: $(O)/usbserver $(O)/usbctl build/bench/bench build/bench/fast-virsh
	build/bench/bench --usbserver $(O)/usbserver --usbctl $(O)/usbctl \
		--fake-virsh build/bench/fast-virsh --python $(BENCH_PYTHON) \
		--server test/bench/guide_server.py \
		--client test/bench/guide_client.py \
		--json build/bench/bench.json $(BENCH_FLAGS)
	$(MAKE) bench-libvirt

# Against a real libvirtd, the one the end-to-end suite starts (as root):
# virsh started per command, a line to its answer, usbctl's round trip
# and the guide's client, side by side in one run.
bench-libvirt: $(O)/usbserver $(O)/usbctl $(O)/test/check_usbserver \
	  $(O)/test/guest.img $(O)/test/guest-panic.img
	@mkdir -p build/bench
	USBSERVER_BENCH=$(abspath build/bench/libvirt.json) \
		CK_RUN_SUITE=e2e CK_RUN_CASE=bench $(O)/test/check_usbserver

# The installed units and the root fallback name the installed binaries.
UNIT_SED = sed -e 's|/usr/local/bin/|$(BINDIR)/|' \
	-e 's|/usr/local/libexec/usbserver/|$(LIBEXECDIR)/|'
GUEST_FILES = contrib/detach.ps1 contrib/detach.ahk contrib/usb-detach

# libFuzzer targets (test/fuzz/): client lines, the configuration file's
# lines, usbctl's readers of virsh output, the daemon's of virsh event
# and its ledger. Each starts from its
# seeds in test/fuzz/corpus/ and keeps what it finds in build/fuzz/.
FUZZ_SECONDS ?= 60
FUZZ_CC	?= clang
FUZZ_TARGETS = line config usbctl libvirt uevent shell ctlconf
FUZZ_FLAGS = -std=c11 -g -O1 $(WARN) -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all

build/fuzz/fuzz_%: test/fuzz/fuzz_%.c common.h usbctl.c
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $<

fuzz: $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p build/fuzz/corpus/$$t; \
		build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
			-print_final_stats=1 -artifact_prefix=build/fuzz/ \
			build/fuzz/corpus/$$t test/fuzz/corpus/$$t \
			> build/fuzz/$$t.log 2>&1; st=$$?; \
		echo "fuzz_$$t ($(FUZZ_SECONDS) s):" \
			$$(grep -E 'DONE' build/fuzz/$$t.log | tail -1); \
		[ $$st -eq 0 ] || { tail -40 build/fuzz/$$t.log; exit 1; }; \
	done

# The whole suite built with ThreadSanitizer; any report fails it.
TS = build/tsan
check-tsan:
	rm -rf $(TS)/logs
	mkdir -p $(TS)/logs
	USBSERVER_LOAD_COMMANDS=$(LOAD_COMMANDS) \
	TSAN_OPTIONS="halt_on_error=1 log_path=$(abspath $(TS)/logs)/tsan" \
	$(MAKE) O=$(TS) SAN="-fsanitize=thread -fno-omit-frame-pointer" test-run
	@if ls $(TS)/logs/* >/dev/null 2>&1; then cat $(TS)/logs/*; \
		echo "tsan: data races reported" >&2; exit 1; fi; \
		echo "tsan: no data race reported"

install: $(O)/usbserver $(O)/usbctl
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSTEMDUNITDIR) \
		$(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(LIBEXECDIR) \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(BASHCOMPDIR)
	install -m 0755 $(O)/usbserver $(O)/usbctl $(DESTDIR)$(BINDIR)/
	install -m 0644 usbctl.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 usbserver.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 contrib/usbctl.bash $(DESTDIR)$(BASHCOMPDIR)/usbctl
	$(UNIT_SED) contrib/usbserver.service > \
		$(DESTDIR)$(SYSTEMDUNITDIR)/usbserver.service
	install -m 0644 contrib/usbserver.socket $(DESTDIR)$(SYSTEMDUNITDIR)/
	$(UNIT_SED) contrib/usbctl-watch.service > \
		$(DESTDIR)$(SYSTEMDUNITDIR)/usbctl-watch.service
	$(UNIT_SED) contrib/ddc-input > $(DESTDIR)$(LIBEXECDIR)/ddc-input
	chmod 0755 $(DESTDIR)$(LIBEXECDIR)/ddc-input
	$(UNIT_SED) contrib/usbserver-root.service > \
		$(DESTDIR)$(DOCDIR)/usbserver-root.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/usbserver.service \
		$(DESTDIR)$(SYSTEMDUNITDIR)/usbctl-watch.service \
		$(DESTDIR)$(DOCDIR)/usbserver-root.service
	install -m 0644 README.md $(GUEST_FILES) $(DESTDIR)$(DOCDIR)/
	install -m 0644 contrib/usbserver.sysusers \
		$(DESTDIR)$(SYSUSERSDIR)/usbserver.conf
	@# The service's user, in group libvirt: made now, not at next boot.
	@if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null; then \
		echo "systemd-sysusers $(SYSUSERSDIR)/usbserver.conf"; \
		systemd-sysusers $(SYSUSERSDIR)/usbserver.conf; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/usbserver $(DESTDIR)$(BINDIR)/usbctl \
		$(DESTDIR)$(MANDIR)/man1/usbctl.1 $(DESTDIR)$(MANDIR)/man8/usbserver.8 \
		$(DESTDIR)$(BASHCOMPDIR)/usbctl \
		$(DESTDIR)$(SYSTEMDUNITDIR)/usbserver.service \
		$(DESTDIR)$(SYSTEMDUNITDIR)/usbserver.socket \
		$(DESTDIR)$(SYSTEMDUNITDIR)/usbctl-watch.service \
		$(DESTDIR)$(LIBEXECDIR)/ddc-input \
		$(DESTDIR)$(DOCDIR)/usbserver-root.service \
		$(DESTDIR)$(DOCDIR)/README.md \
		$(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(GUEST_FILES))) \
		$(DESTDIR)$(SYSUSERSDIR)/usbserver.conf
	-rmdir $(DESTDIR)$(DOCDIR) $(DESTDIR)$(LIBEXECDIR)
	@# The user make install made (known by its comment, from
	@# usbserver.sysusers), and its group; stop the units first.
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && getent passwd usbserver | \
	    cut -d: -f5 | grep -q '^usbserver, moves USB devices'; then \
		echo "userdel usbserver"; userdel usbserver; \
		if getent group usbserver >/dev/null; then \
			echo "groupdel usbserver"; groupdel usbserver; fi; fi

clean:
	rm -rf --one-file-system usbserver usbctl test/check_usbserver \
		test/guest.o test/fast-virsh \
		test/guest-usb.o test/guest-usb.img test/usb-keys \
		test/guest-panic.o test/guest-panic.img \
		test/guest.img build
