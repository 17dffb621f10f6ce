/*
 * guest.S: the guest of the end-to-end test (test/test_e2e.c), a 512-byte
 * x86 boot sector. It stands for the guest's detach script: the same bytes
 * on the same port. Every second it writes to COM1 (I/O port 0x3f8), in
 * turn the guide's detach line, and three lines that must be refused: a
 * hostile one, one for another domain, and an attach. It halts in between.
 *
 * Assembled with --defsym USB_TEST=1 it is the inner guest of make
 * check-usb (test/usb/checks) instead, driven by bytes on COM2: 'a' has
 * it write an "alive" line (a lease of 2 s) to COM1, and no more, as a
 * guest that hangs; 'p' has it panic through pvpanic (a write of 1 to
 * I/O port 0x505); any other byte has it write the port-form detach line
 * of the outer machine's keyboard, as a user's hotkey would run the
 * guide's script.
 *
 * Assembled with --defsym PANIC_TEST=1 it is the end-to-end suite's
 * second guest: it writes one line, an "alive" line, then panics through
 * pvpanic a second later.
 *
 * Built by the Makefile with GNU as and ld:
 *	as --32 -o guest.o guest.S
 *	ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o guest.img guest.o
 */
	.code16
	.text
	.globl	_start

	.set	COM1, 0x3f8		/* data; with DLAB set: divisor low */
	.set	COM1_LCR, COM1 + 3	/* line control */
	.set	COM1_LSR, COM1 + 5	/* line status */
	.set	LSR_DR, 0x01		/* data ready */
	.set	LSR_THRE, 0x20		/* transmit holding register empty */
	.set	COM2, 0x2f8
	.set	COM2_LSR, COM2 + 5
	.set	BIOS_TICKS, 0x46c	/* BIOS tick count, 18.2 a second */
	.set	SECOND, 18		/* ticks */

_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %ss
	movw	$0x7c00, %sp
	sti

	/* 115200 baud (divisor 1), 8 data bits, no parity, 1 stop bit. */
	movw	$COM1_LCR, %dx
	movb	$0x80, %al		/* DLAB: the next two are the divisor */
	outb	%al, %dx
	movw	$COM1, %dx
	movb	$1, %al
	outb	%al, %dx
	incw	%dx
	xorb	%al, %al
	outb	%al, %dx
	movw	$COM1_LCR, %dx
	movb	$0x03, %al		/* 8N1, DLAB off */
	outb	%al, %dx

	.ifdef	USB_TEST
/* A byte on COM2 says what to do; the timer's tick ends hlt. */
forever:
	movw	$COM2_LSR, %dx
	inb	%dx, %al
	testb	$LSR_DR, %al
	jnz	1f
	hlt
	jmp	forever
1:	movw	$COM2, %dx
	inb	%dx, %al
	cmpb	$'p', %al
	je	panic
	movw	$usb_alive, %si
	cmpb	$'a', %al
	je	2f
	movw	$usb_detach, %si
2:	call	puts
	jmp	forever
	.else
	.ifdef	PANIC_TEST
	movw	$alive, %si
	call	puts
	call	second
	jmp	panic
	.else
forever:
	movw	$valid, %si
	call	puts
	call	second
	movw	$hostile, %si
	call	puts
	movw	$foreign, %si
	call	puts
	movw	$attach, %si
	call	puts
	call	second
	jmp	forever
	.endif
	.endif

	.ifdef	USB_TEST
	.set	WITH_PANIC, 1
	.endif
	.ifdef	PANIC_TEST
	.set	WITH_PANIC, 1
	.endif
	.ifdef	WITH_PANIC
/* pvpanic's "guest panicked" (libvirt's <panic model='isa'/>), then
 * nothing more: as a blue screen. */
	.set	PVPANIC, 0x505
panic:
	movw	$PVPANIC, %dx
	movb	$1, %al
	outb	%al, %dx
	cli
3:	hlt
	jmp	3b
	.endif

/* Writes the NUL-terminated string at %si to COM1. */
puts:
	lodsb
	testb	%al, %al
	jz	1f
	movb	%al, %ah
	movw	$COM1_LSR, %dx
2:	inb	%dx, %al
	testb	$LSR_THRE, %al
	jz	2b
	movw	$COM1, %dx
	movb	%ah, %al
	outb	%al, %dx
	jmp	puts
1:	ret

	.ifndef	USB_TEST
/* Halts until a second of BIOS ticks has passed. */
second:
	movw	BIOS_TICKS, %bx
3:	hlt
	movw	BIOS_TICKS, %ax
	subw	%bx, %ax
	cmpw	$SECOND, %ax
	jb	3b
	ret

	.ifdef	PANIC_TEST
/* The domain's name is E2E_PANIC_VM in test_e2e.c. */
alive:	.asciz	"usbserver-panic alive 60\r\n"
	.else
/* The domain's name is E2E_VM in test_e2e.c. */
valid:	.asciz	"usbserver-e2e detach 046d:c52b\r\n"
hostile: .asciz	"usbserver-e2e detach ../../etc/passwd\r\n"
foreign: .asciz	"other-vm detach 046d:c52b\r\n"
attach:	.asciz	"usbserver-e2e attach 046d:c52b\r\n"
	.endif
	.else
/* The domain is VM in test/usb/checks, the keyboard at port 1 of test/usb/run's
 * xhci controller: 1-1 in the outer kernel. */
usb_detach: .asciz "usbserver-usb detach 0627:0001@1-1\r\n"
usb_alive: .asciz "usbserver-usb alive 2\r\n"
	.endif

	.org	510
	.word	0xaa55			/* the BIOS boots only this signature */
