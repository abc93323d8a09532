/* The workload's child side: everything between fork and execve. */
#include "workload.h"
#include "console.h"
#include "guest_setup.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int make_directories(const char *path) {
  char buf[PATH_MAX];
  if ((size_t)snprintf(buf, sizeof buf, "%s", path) >= sizeof buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || *p == '\0') {
      char saved = *p;
      *p = '\0';
      if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
      *p = saved;
      if (saved == '\0') break;
    }
  }
  return 0;
}

static const char *env_lookup(char *const *envp, const char *key) {
  size_t klen = strlen(key);
  for (; *envp; envp++)
    if (strncmp(*envp, key, klen) == 0 && (*envp)[klen] == '=') return *envp + klen + 1;
  return NULL;
}

/* Length of the KEY part of a KEY=VALUE entry (the whole entry if it has no '='). */
static size_t env_key_length(const char *entry) {
  const char *eq = strchr(entry, '=');
  return eq ? (size_t)(eq - entry) : strlen(entry);
}

static size_t env_count(char *const *envp) {
  size_t n = 0;
  while (envp && envp[n]) n++;
  return n;
}

char **environment_build(char *const *base, char *const *overrides, const char *home) {
  size_t nbase = env_count(base), nover = env_count(overrides);
  char **envp = calloc(nbase + nover + 2, sizeof(char *));
  if (!envp) return NULL;
  size_t n = 0;
  for (size_t i = 0; i < nbase; i++) envp[n++] = base[i];
  for (size_t i = 0; i < nover; i++) {
    size_t klen = env_key_length(overrides[i]);
    size_t j = 0;
    while (j < n && !(env_key_length(envp[j]) == klen && strncmp(envp[j], overrides[i], klen) == 0)) j++;
    envp[j] = overrides[i];
    if (j == n) n++;
  }
  envp[n] = NULL;
  if (home && !env_lookup(envp, "HOME")) {
    size_t len = strlen(home) + 6;
    char *entry = malloc(len);
    if (!entry) return NULL;
    snprintf(entry, len, "HOME=%s", home);
    envp[n++] = entry;
    envp[n] = NULL;
  }
  return envp;
}

char **workload_environment(const struct run_config *cfg, const struct exec_user *user) {
  return environment_build(cfg->envp, NULL, user->home);
}

/* The status docker uses for an exec errno. */
static int exec_failure_status(int err) {
  return err == ENOENT || err == ENOTDIR ? EXIT_NOT_FOUND : EXIT_CANNOT_INVOKE;
}

/* execve with PATH search like Go's exec.LookPath (no /bin/sh fallback). */
static void exec_program(char *const *argv, char *const *envp) {
  const char *name = argv[0];
  if (strchr(name, '/')) {
    execve(name, argv, envp);
    int err = errno;
    init_log("exec \"%s\": %s", name, strerror(err));
    _exit(exec_failure_status(err));
  }
  const char *path = env_lookup(envp, "PATH");
  if (!path) path = DEFAULT_PATH;
  int denied = 0, other = 0;
  while (1) {
    const char *end = strchr(path, ':');
    size_t dlen = end ? (size_t)(end - path) : strlen(path);
    char candidate[PATH_MAX];
    int n = dlen ? snprintf(candidate, sizeof candidate, "%.*s/%s", (int)dlen, path, name)
                 : snprintf(candidate, sizeof candidate, "./%s", name);
    if (n > 0 && (size_t)n < sizeof candidate) {
      execve(candidate, argv, envp);
      if (errno == EACCES) denied = 1;
      else if (errno != ENOENT && errno != ENOTDIR) {
        other = errno;
        init_log("exec \"%s\": %s", candidate, strerror(other));
        _exit(EXIT_CANNOT_INVOKE);
      }
    }
    if (!end) break;
    path = end + 1;
  }
  if (denied) {
    init_log("exec \"%s\": permission denied", name);
    _exit(EXIT_CANNOT_INVOKE);
  }
  init_log("exec \"%s\": executable file not found in $PATH", name);
  _exit(EXIT_NOT_FOUND);
}

pid_t workload_start(const struct run_config *cfg, const struct exec_user *user,
                     char *const *envp, const sigset_t *child_mask) {
  pid_t pid = fork();
  if (pid != 0) return pid;

  for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
  sigprocmask(SIG_SETMASK, child_mask, NULL);
  if (cfg->tty) {
    if (console_make_controlling() != 0) init_log("controlling terminal: %s", strerror(errno));
  } else {
    setsid();
    /* Without -i docker gives the process no input: reads see end of file at once. */
    if (!cfg->interactive) {
      int devnull = open("/dev/null", O_RDONLY);
      if (devnull >= 0 && devnull != 0) {
        dup2(devnull, 0);
        close(devnull);
      }
    }
  }
  workload_become(cfg->workdir ? cfg->workdir : "/", user, cfg->argv, envp);
}

void workload_become(const char *workdir, const struct exec_user *user, char *const *argv, char *const *envp) {
  if (chdir(workdir) != 0) {
    init_log("workdir \"%s\": %s", workdir, strerror(errno));
    _exit(EXIT_SETUP_FAILED);
  }
  if (user && (setgroups(user->ngroups, user->groups) != 0 || setgid(user->gid) != 0 || setuid(user->uid) != 0)) {
    init_log("switch to uid %u gid %u: %s", (unsigned)user->uid, (unsigned)user->gid, strerror(errno));
    _exit(EXIT_SETUP_FAILED);
  }
  exec_program(argv, envp);
  _exit(EXIT_NOT_FOUND); /* not reached */
}
