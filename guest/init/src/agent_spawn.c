/* The child side of agent streams: fd wiring, session, credentials, then exec or tar. */
#include "agent_spawn.h"
#include "agent_protocol.h"
#include "exec_user.h"
#include "tar.h"
#include "workload.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

void agent_set_window_size(int pty_fd, unsigned rows, unsigned cols) {
  struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
  ioctl(pty_fd, TIOCSWINSZ, &ws);
}

/* Opens a pty pair: the master non-blocking and close-on-exec, the slave's path in `slave`. */
static int open_pty(char *slave, size_t len) {
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return -1;
  const char *name = grantpt(master) == 0 && unlockpt(master) == 0 ? ptsname(master) : NULL;
  if (!name || strlen(name) >= len) {
    close(master);
    return -1;
  }
  strcpy(slave, name);
  return master;
}

static void set_nonblocking(int fd) {
  if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Larger pipes mean fewer poll rounds per megabyte (best effort: the limit is pipe-max-size). */
static void widen_pipe(int fd) {
  if (fd >= 0) fcntl(fd, F_SETPIPE_SZ, 1 << 20);
}

/* Closes every fd from `first` up: a copy child does not exec, and must not hold other streams' pipes. */
static void close_from(int first) {
  if (syscall(SYS_close_range, (unsigned)first, ~0u, 0) == 0) return;
  long max = sysconf(_SC_OPEN_MAX);
  for (long fd = first; fd < (max > 0 && max < 65536 ? max : 65536); fd++) close((int)fd);
}

/* Child: copy-in per docker cp (into an existing directory, or to a new name in its parent). */
static __attribute__((noreturn)) void copy_in_child(const struct agent_spawn_request *req) {
  char err[600];
  struct stat st;
  int into = stat(req->path, &st) == 0 && S_ISDIR(st.st_mode);
  int rc;
  if (into) {
    rc = tar_extract(0, req->path, NULL, err, sizeof err);
  } else if (req->flags & AGENT_COPY_INTO_DIR) {
    snprintf(err, sizeof err, "not a directory");
    rc = -1;
  } else {
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof a, "%s", req->path);
    snprintf(b, sizeof b, "%s", req->path);
    const char *parent = dirname(a), *name = basename(b);
    struct stat pst;
    if (stat(parent, &pst) != 0 || !S_ISDIR(pst.st_mode)) {
      snprintf(err, sizeof err, "parent directory \"%s\" does not exist", parent);
      rc = -1;
    } else if (!strcmp(name, "/") || !strcmp(name, ".") || !strcmp(name, "..")) {
      snprintf(err, sizeof err, "not a usable destination name");
      rc = -1;
    } else {
      rc = tar_extract(0, parent, name, err, sizeof err);
    }
  }
  if (rc != 0) {
    dprintf(2, "copy-in \"%s\": %s\n", req->path, err);
    _exit(1);
  }
  _exit(0);
}

static __attribute__((noreturn)) void copy_out_child(const struct agent_spawn_request *req) {
  char err[600];
  struct stat st;
  if (lstat(req->path, &st) != 0) {
    dprintf(2, "copy-out \"%s\": %s\n", req->path, strerror(errno));
    _exit(1);
  }
  if (tar_write_path(1, req->path, err, sizeof err) != 0) {
    dprintf(2, "copy-out \"%s\": %s\n", req->path, err);
    _exit(1);
  }
  _exit(0);
}

static __attribute__((noreturn)) void exec_child(const struct agent_spawn_request *req, const struct agent_defaults *d) {
  const char *spec = req->user && req->user[0] ? req->user : d->user;
  struct exec_user user;
  const char *home = NULL;
  if (spec && spec[0]) {
    char err[300];
    if (exec_user_resolve("", spec, req->group_add, &user, err, sizeof err) != 0) {
      dprintf(2, "vmrun-agent: %s\n", err);
      _exit(EXIT_SETUP_FAILED);
    }
    home = user.home;
  } else {
    home = getenv("HOME");
  }
  char **envp = environment_build((req->flags & AGENT_EXEC_REPLACE_ENV) ? NULL : d->env, req->env, home ? home : "/");
  if (!envp) _exit(EXIT_SETUP_FAILED);
  char cwd[PATH_MAX];
  const char *workdir = req->cwd && req->cwd[0] ? req->cwd : d->workdir ? d->workdir : getcwd(cwd, sizeof cwd);
  if (req->workload && workdir && make_directories(workdir) != 0) {
    dprintf(2, "vmrun-agent: workdir \"%s\": %s\n", workdir, strerror(errno));
    _exit(EXIT_SETUP_FAILED);
  }
  workload_become(workdir ? workdir : "/", spec && spec[0] ? &user : NULL, req->argv, envp);
}

int agent_spawn(const struct agent_spawn_request *req, const struct agent_defaults *defaults,
                struct agent_spawned *out, char *err, size_t errlen) {
  int tty = req->kind == AGENT_SPAWN_EXEC && (req->flags & AGENT_EXEC_TTY);
  int want_stdin = req->kind == AGENT_SPAWN_COPY_IN || (req->kind == AGENT_SPAWN_EXEC && (req->flags & AGENT_EXEC_STDIN));
  int in[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1}, master = -1;
  char slave[64];
  if (tty) {
    master = open_pty(slave, sizeof slave);
    if (master < 0) goto fail;
    if (req->rows && req->cols) agent_set_window_size(master, req->rows, req->cols);
  } else {
    if ((want_stdin && pipe2(in, O_CLOEXEC) != 0) || pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) goto fail;
  }
  pid_t pid = fork();
  if (pid < 0) goto fail;
  if (pid == 0) {
    sigset_t all;
    sigemptyset(&all);
    for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
    sigprocmask(SIG_SETMASK, &all, NULL);
    setsid();
    if (tty) {
      int s = open(slave, O_RDWR);
      if (s < 0 || ioctl(s, TIOCSCTTY, 0) != 0) _exit(EXIT_SETUP_FAILED);
      dup2(s, 0);
      dup2(s, 1);
      dup2(s, 2);
      if (s > 2) close(s);
    } else {
      int input = want_stdin ? in[0] : open("/dev/null", O_RDONLY | O_CLOEXEC);
      dup2(input, 0);
      dup2(outp[1], 1);
      dup2(errp[1], 2);
    }
    close_from(3);
    if (req->kind == AGENT_SPAWN_COPY_IN) copy_in_child(req);
    if (req->kind == AGENT_SPAWN_COPY_OUT) copy_out_child(req);
    exec_child(req, defaults);
  }
  out->pid = pid;
  out->tty = tty;
  if (tty) {
    set_nonblocking(master);
    out->out_fd = master;
    out->in_fd = dup(master); /* one fd per direction, so each can be closed on its own */
    fcntl(out->in_fd, F_SETFD, FD_CLOEXEC);
    out->err_fd = -1;
  } else {
    if (want_stdin) close(in[0]);
    close(outp[1]);
    close(errp[1]);
    out->in_fd = in[1];
    out->out_fd = outp[0];
    out->err_fd = errp[0];
    set_nonblocking(out->in_fd);
    set_nonblocking(out->out_fd);
    set_nonblocking(out->err_fd);
    widen_pipe(out->in_fd);
    widen_pipe(out->out_fd);
  }
  return 0;

fail:
  snprintf(err, errlen, "%s: %s", tty ? "pty" : "pipe or fork", strerror(errno));
  int fds[] = {in[0], in[1], outp[0], outp[1], errp[0], errp[1], master};
  for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
    if (fds[i] >= 0) close(fds[i]);
  return -1;
}
