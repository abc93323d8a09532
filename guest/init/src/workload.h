/* Starting the workload: credentials, working directory, environment, PATH lookup. */
#ifndef VMRUN_WORKLOAD_H
#define VMRUN_WORKLOAD_H

#include <signal.h>
#include <sys/types.h>

#include "exec_user.h"
#include "run_config.h"

/** docker's exit statuses for failures to start the workload. */
enum {
  EXIT_SETUP_FAILED = 125,   /* bad workdir, unknown user, bad configuration */
  EXIT_CANNOT_INVOKE = 126,  /* found but not executable */
  EXIT_NOT_FOUND = 127,      /* no such program */
};

/** docker's PATH for a configuration that sets none. */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/**
 * Forks the workload. The child restores `child_mask`, takes the console as its
 * controlling tty (cfg->tty), changes directory, drops to `user` and execs cfg->argv
 * with `envp`; a failure prints one line and exits 125/126/127. Returns the pid or -1.
 */
pid_t workload_start(const struct run_config *cfg, const struct exec_user *user,
                     char *const *envp, const sigset_t *child_mask);

/** Creates `path` and its missing parents (mode 0755), like docker does for -w. */
int make_directories(const char *path);

/**
 * In a forked child: changes to `workdir`, drops to `user` (NULL: keeps the current
 * credentials) and execs argv with PATH search; a failure prints one line and exits
 * 125 (setup), 126 (not executable) or 127 (not found), docker's statuses.
 */
__attribute__((noreturn)) void workload_become(const char *workdir, const struct exec_user *user,
                                               char *const *argv, char *const *envp);

/**
 * An environment: `base`, then each of `overrides` (KEY=VALUE) replacing the entry of
 * the same KEY or added, then HOME=`home` if still unset (`home` NULL: none). The
 * strings are shared, not copied. NULL when out of memory.
 */
char **environment_build(char *const *base, char *const *overrides, const char *home);

/** Builds the workload's environment: cfg's env plus HOME (from `user`) if unset. */
char **workload_environment(const struct run_config *cfg, const struct exec_user *user);

#endif
