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

/** Builds the workload's environment: cfg's env plus HOME (from `user`) if unset. */
char **workload_environment(const struct run_config *cfg, const struct exec_user *user);

#endif
