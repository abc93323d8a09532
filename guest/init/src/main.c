/*
 * vmrun-init: PID 1 of a vmrun Linux guest. Sets up the guest, runs the workload
 * described by /.vmrun/run as its child, forwards signals to it, reaps orphans, and
 * when the workload exits reports its status to the VMM and powers the VM off.
 *
 * Two host-side modes exist so the host's tests can exercise the real parsers:
 *   vmrun-init --check-config FILE          prints the parsed configuration
 *   vmrun-init --resolve-user ROOT SPEC [GROUP...]   prints uid/gid/groups/home
 *   vmrun-init --agent --listen-unix PATH    serves the agent protocol on a unix socket
 *   vmrun-init --find-exit-device DIR        prints the arm64 exit device's address
 *                                            found in a sysfs-style device tree
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "agent_protocol.h"
#include "block_root.h"
#include "console.h"
#include "exec_user.h"
#include "exit_device_dt.h"
#include "exit_report.h"
#include "guest_network.h"
#include "guest_setup.h"
#include "run_config.h"
#include "volumes.h"
#include "workload.h"

static int check_config(const char *path) {
  struct run_config cfg;
  char err[256];
  if (run_config_load(path, &cfg, err, sizeof err) != 0) {
    init_log("%s", err);
    return EXIT_SETUP_FAILED;
  }
  if (cfg.workload_from_agent) printf("workload=agent\n");
  printf("hostname=%s\nworkdir=%s\nuser=%s\ntty=%d\ninteractive=%d\nrows=%u\ncols=%u\n",
         cfg.hostname ? cfg.hostname : "", cfg.workdir ? cfg.workdir : "",
         cfg.user ? cfg.user : "", cfg.tty, cfg.interactive, cfg.rows, cfg.cols);
  for (size_t i = 0; i < cfg.argc; i++) printf("arg[%zu]=%s\n", i, cfg.argv[i]);
  for (size_t i = 0; i < cfg.envc; i++) printf("env[%zu]=%s\n", i, cfg.envp[i]);
  for (size_t i = 0; i < cfg.group_addc; i++) printf("group-add[%zu]=%s\n", i, cfg.group_add[i]);
  for (size_t i = 0; i < cfg.volumec; i++) printf("volume[%zu]=%s\n", i, cfg.volumes[i]);
  if (cfg.net_address) printf("net-address=%s\n", cfg.net_address);
  if (cfg.net_gateway) printf("net-gateway=%s\n", cfg.net_gateway);
  if (cfg.net_dns) printf("net-dns=%s\n", cfg.net_dns);
  return 0;
}

static int find_exit_device(const char *dt_base) {
  uint64_t address;
  if (exit_device_find_in(dt_base, &address) != 0) {
    init_log("no \"%s\" node with a 16-byte reg under %s", EXIT_DEVICE_COMPATIBLE, dt_base);
    return EXIT_SETUP_FAILED;
  }
  printf("exit-device=0x%llx\n", (unsigned long long)address);
  return 0;
}

static int resolve_user(const char *root, const char *spec, char *const *group_add) {
  struct exec_user user;
  char err[256];
  if (exec_user_resolve(root, spec, group_add, &user, err, sizeof err) != 0) {
    init_log("%s", err);
    return EXIT_SETUP_FAILED;
  }
  printf("uid=%u gid=%u groups=", (unsigned)user.uid, (unsigned)user.gid);
  for (size_t i = 0; i < user.ngroups; i++) printf("%s%u", i ? "," : "", (unsigned)user.groups[i]);
  printf(" home=%s\n", user.home);
  return 0;
}

/* docker's status for a finished process: its code, or 128 + the killing signal. */
static int docker_status(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return EXIT_SETUP_FAILED;
}

static const int forwarded_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

/* Waits for the workload, forwarding signals and reaping orphans; returns its status. */
static int supervise(pid_t workload, const sigset_t *waited) {
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(waited, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      kill(workload, sig);
      continue;
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
      if (pid == workload) return docker_status(status);
    if (pid < 0 && errno == ECHILD) return EXIT_SETUP_FAILED; /* cannot happen: workload is ours */
  }
}

/* The workload RUN started has ended and the host has its status: the VM ends with it. */
static void power_off_with(int status) { exit_report_and_power_off(status); }

/*
 * Forks the guest agent (exec and copy for the host over vsock), with the workload's
 * user, working directory and configured environment as its defaults. With
 * `runs_workload`, the agent also takes the workload itself (RUN) and powers the VM
 * off when it ends. A VM without a vsock device has no agent: fine when init runs
 * the workload, fatal when the agent must. Returns the agent's pid, or -1.
 */
static pid_t start_agent(const struct run_config *cfg, int runs_workload) {
  pid_t pid = fork();
  if (pid != 0) {
    if (pid < 0) init_log("agent: fork: %s", strerror(errno));
    return pid;
  }
  int fd = agent_listen_vsock(AGENT_VSOCK_PORT);
  if (fd < 0) {
    if (runs_workload) init_log("agent: cannot listen on vsock port %u: %s", AGENT_VSOCK_PORT, strerror(errno));
    _exit(runs_workload ? EXIT_SETUP_FAILED : 0);
  }
  struct agent_defaults defaults = {
      .user = cfg->user && cfg->user[0] ? cfg->user : "0",
      .workdir = cfg->workdir ? cfg->workdir : "/",
      .env = cfg->envp,
      .workload_ended = runs_workload ? power_off_with : NULL,
      .applies_identity = 1,
      .hosts_gateway = cfg->net_gateway,
      .volumes = cfg->volumes,
      .volumec = cfg->volumec,
  };
  _exit(agent_serve(fd, &defaults));
}

static __attribute__((noreturn)) void run_as_pid1(void) {
  if (block_root_switch() != 0) {
    console_attach_init_stdio();
    exit_report_and_power_off(EXIT_SETUP_FAILED);
  }
  guest_mount_filesystems();
  console_attach_init_stdio();

  struct run_config cfg;
  char err[300];
  if (run_config_load(RUN_CONFIG_PATH, &cfg, err, sizeof err) != 0) {
    init_log("%s", err);
    exit_report_and_power_off(EXIT_SETUP_FAILED);
  }
  console_configure(cfg.tty, cfg.rows, cfg.cols);
  guest_set_hostname(cfg.hostname);
  guest_write_hosts(cfg.hostname, cfg.net_gateway);
  guest_loopback_up();
  if (cfg.net_address) {
    /* A workload that needs the network fails on its own if this did not work; say why first. */
    if (guest_interface_up("eth0", cfg.net_address, cfg.net_gateway, err, sizeof err) != 0) init_log("network: %s", err);
    guest_write_resolv_conf(cfg.net_dns);
  }

  volumes_mount(&cfg);

  sigset_t waited, original;
  sigemptyset(&waited);
  sigaddset(&waited, SIGCHLD);
  for (size_t i = 0; i < sizeof forwarded_signals / sizeof *forwarded_signals; i++)
    sigaddset(&waited, forwarded_signals[i]);

  if (cfg.workload_from_agent) {
    /* The host sends the workload over the agent (RUN); init only reaps orphans meanwhile. */
    sigprocmask(SIG_BLOCK, &waited, &original);
    pid_t agent = start_agent(&cfg, 1);
    if (agent < 0) exit_report_and_power_off(EXIT_SETUP_FAILED);
    int status = supervise(agent, &waited);
    init_log("the guest agent ended (status %d) before the workload did", status);
    exit_report_and_power_off(EXIT_SETUP_FAILED);
  }

  struct exec_user user;
  if (exec_user_resolve("", cfg.user, cfg.group_add, &user, err, sizeof err) != 0) {
    init_log("%s", err);
    exit_report_and_power_off(EXIT_SETUP_FAILED);
  }
  if (cfg.workdir && make_directories(cfg.workdir) != 0) {
    init_log("workdir \"%s\": %s", cfg.workdir, strerror(errno));
    exit_report_and_power_off(EXIT_SETUP_FAILED);
  }
  char **envp = workload_environment(&cfg, &user);
  if (!envp) {
    init_log("out of memory");
    exit_report_and_power_off(EXIT_SETUP_FAILED);
  }

  start_agent(&cfg, 0);
  sigprocmask(SIG_BLOCK, &waited, &original);

  pid_t workload = workload_start(&cfg, &user, envp, &original);
  if (workload < 0) {
    init_log("fork: %s", strerror(errno));
    exit_report_and_power_off(EXIT_SETUP_FAILED);
  }
  exit_report_and_power_off(supervise(workload, &waited));
}

/* Host mode of the agent (tests): the same protocol on a unix socket, this process's defaults. */
static int serve_agent_on_unix(const char *path) {
  int fd = agent_listen_unix(path);
  if (fd < 0) {
    init_log("agent: listen on %s: %s", path, strerror(errno));
    return EXIT_SETUP_FAILED;
  }
  extern char **environ;
  /* RUN works here too, for tests: this process exits with the workload's status. */
  struct agent_defaults defaults = {.user = NULL, .workdir = NULL, .env = environ, .workload_ended = exit};
  return agent_serve(fd, &defaults);
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--agent") == 0 && strcmp(argv[2], "--listen-unix") == 0)
    return serve_agent_on_unix(argv[3]);
  if (argc == 3 && strcmp(argv[1], "--check-config") == 0) return check_config(argv[2]);
  if (argc == 3 && strcmp(argv[1], "--find-exit-device") == 0) return find_exit_device(argv[2]);
  if (argc >= 4 && strcmp(argv[1], "--resolve-user") == 0) return resolve_user(argv[2], argv[3], argv + 4);
  if (getpid() != 1) {
    init_log("must run as PID 1 of a vmrun guest (host modes: --check-config FILE, "
             "--resolve-user ROOT SPEC [GROUP...], --agent --listen-unix PATH, --find-exit-device DIR)");
    return 2;
  }
  run_as_pid1();
}
