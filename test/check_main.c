/*
 * check_main.c: runs every suite. The binaries under test are the ones
 * the Makefile built beside this runner (USBSERVER_BIN, USBCTL_BIN).
 */
#include <stdlib.h>
#include <string.h>

#include "tests.h"

int
main(int argc, char *argv[])
{
	SRunner *sr;
	int failed;

	if (argc > 1 && strcmp(argv[1], "peer") == 0)
		return peer_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], "nopidfd") == 0)
		return nopidfd_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], "enter") == 0)
		return enter_main(argc, argv);
	sr = srunner_create(parse_suite());
	srunner_add_suite(sr, text_suite());
	srunner_add_suite(sr, virsh_suite());
	srunner_add_suite(sr, client_suite());
	srunner_add_suite(sr, daemon_suite());
	srunner_add_suite(sr, load_suite());
	srunner_add_suite(sr, e2e_suite());
	(void)scratch_dir();		/* before the tests fork */
	srunner_run_all(sr, CK_ENV);	/* CK_VERBOSITY picks the detail */
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	scratch_remove();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
