/* Running the user's commands (--exec, --alert-exec): `sh -c CMD` in a process group of its own,
 * so that a timeout can kill all of it and a terminal's Ctrl-C reaches hookline listen, which
 * then lets the command finish. */
#ifndef HL_SPAWN_H
#define HL_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

/* Starts `/bin/sh -c cmd` with default signal handling and an empty signal mask, stdin from
 * stdin_fd (-1: /dev/null), stdout and stderr ours. Its environment is ours minus
 * HOOKLINE_WEBHOOK_SECRET (a command has no use for it) and minus any variable named in vars,
 * plus vars: nvars "NAME=value" strings (copied by the kernel; nothing is retained). Returns 0
 * and sets *pid (reap it with waitpid), or HL_ENOMEM / HL_EIO with the reason in err. */
int hl_spawn_sh(const char *cmd, int stdin_fd, const char *const *vars, size_t nvars, pid_t *pid,
                char *err, size_t errlen);

#endif
