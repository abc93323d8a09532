/* Starting what an agent stream runs: a program (exec) or a tar process (copy in/out). */
#ifndef VMRUN_AGENT_SPAWN_H
#define VMRUN_AGENT_SPAWN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** What the agent uses when a request leaves a field empty (the workload's settings in a guest). */
struct agent_defaults {
  const char *user;    /* docker -u spec; NULL or "": keep the agent's credentials */
  const char *workdir; /* NULL: the agent's working directory */
  char **env;          /* the base environment of exec */
  /** RUN's end: called with the workload's status once the host has it (NULL: RUN is refused). */
  void (*workload_ended)(int status);
  /** Whether IDENTITY is applied (in a guest) or refused (the host mode must not touch the host). */
  int applies_identity;
  /** IDENTITY rewrites /etc/hosts with host.vmrun.internal at this address (NULL: none). */
  const char *hosts_gateway;
  /** VOLUMES unmounts and mounts these "TAG:ro|rw:/PATH" records (volumes.h); none in host mode. */
  char *const *volumes;
  size_t volumec;
};

enum agent_spawn_kind { AGENT_SPAWN_EXEC, AGENT_SPAWN_COPY_IN, AGENT_SPAWN_COPY_OUT };

/** A decoded EXEC, COPY_IN or COPY_OUT request (strings owned by the caller). */
struct agent_spawn_request {
  enum agent_spawn_kind kind;
  uint32_t flags;
  unsigned rows, cols;
  char *user;
  char *cwd;
  char **argv; /* NULL-terminated */
  char **env;  /* NULL-terminated */
  char **group_add; /* RUN: docker --group-add (NULL-terminated, or NULL) */
  int workload; /* RUN: the VM's workload (its working directory is created, like docker -w) */
  char *path;  /* copy in/out */
};

/** The parent's ends of a started child: -1 where absent. With a tty, in_fd and out_fd are the pty master. */
struct agent_spawned {
  pid_t pid;
  int in_fd;
  int out_fd;
  int err_fd;
  int tty;
};

/**
 * Forks the child a request describes, wired to pipes (or a pty with AGENT_EXEC_TTY);
 * the parent's ends are non-blocking and close-on-exec. Returns 0, or -1 with a reason.
 */
int agent_spawn(const struct agent_spawn_request *req, const struct agent_defaults *defaults,
                struct agent_spawned *out, char *err, size_t errlen);

/** Sets a pty's size (the kernel sends SIGWINCH to its foreground group). */
void agent_set_window_size(int pty_fd, unsigned rows, unsigned cols);

#endif
