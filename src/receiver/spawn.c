/* Running the user's commands; see spawn.h. */
#include "receiver/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"

extern char **environ;

/* True when kv ("NAME=value") sets the webhook secret or a variable that one of vars sets. */
static int replaced(const char *kv, const char *const *vars, size_t nvars)
{
    static const char secret[] = "HOOKLINE_WEBHOOK_SECRET=";
    if (strncmp(kv, secret, sizeof(secret) - 1) == 0)
        return 1;
    for (size_t i = 0; i < nvars; i++) {
        const char *eq = strchr(vars[i], '=');
        size_t n = eq ? (size_t)(eq - vars[i]) + 1 : strlen(vars[i]);
        if (strncmp(kv, vars[i], n) == 0)
            return 1;
    }
    return 0;
}

int hl_spawn_sh(const char *cmd, int stdin_fd, const char *const *vars, size_t nvars, pid_t *pid,
                char *err, size_t errlen)
{
    int rc = HL_ENOMEM;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t sa;
    int have_fa = 0, have_sa = 0;
    size_t n = 0, k = 0;
    while (environ && environ[n])
        n++;
    char **envp = calloc(n + nvars + 1, sizeof(char *));
    if (!envp) {
        snprintf(err, errlen, "out of memory");
        return HL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        if (!replaced(environ[i], vars, nvars))
            envp[k++] = environ[i];
    for (size_t i = 0; i < nvars; i++)
        envp[k++] = (char *)vars[i];
    if (posix_spawn_file_actions_init(&fa) || posix_spawnattr_init(&sa)) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    have_fa = have_sa = 1;
    /* Default handling for what we block or ignore, so the command behaves as from a shell. */
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGINT);
    sigaddset(&dflt, SIGTERM);
    int e = stdin_fd >= 0
                ? posix_spawn_file_actions_adddup2(&fa, stdin_fd, STDIN_FILENO)
                : posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (e || posix_spawnattr_setsigmask(&sa, &none) || posix_spawnattr_setsigdefault(&sa, &dflt) ||
        posix_spawnattr_setpgroup(&sa, 0) ||
        posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                          POSIX_SPAWN_SETPGROUP)) {
        snprintf(err, errlen, "cannot set up the command");
        rc = HL_EIO;
        goto out;
    }
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)cmd, NULL};
    e = posix_spawn(pid, "/bin/sh", &fa, &sa, argv, envp);
    if (e != 0) {
        snprintf(err, errlen, "cannot run /bin/sh: %s", strerror(e));
        rc = HL_EIO;
        goto out;
    }
    rc = HL_OK;
out:
    if (have_fa)
        posix_spawn_file_actions_destroy(&fa);
    if (have_sa)
        posix_spawnattr_destroy(&sa);
    free(envp);
    return rc;
}
