/* `hookline listen` and `hookline verify` (issue 5). */
#include "receiver/listen.h"

#include <stdio.h>

int hl_listen_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "hookline listen: not available in this build yet (issue 5)\n");
    return 2;
}

int hl_verify_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "hookline verify: not available in this build yet (issue 5)\n");
    return 2;
}
