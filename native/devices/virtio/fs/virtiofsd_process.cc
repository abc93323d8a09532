#include "devices/virtio/fs/virtiofsd_process.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "common/error.h"

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

namespace vmrun::virtio::fs {

namespace {

struct MountAttr {
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};

/** What the child does between fork and exec, prepared before the fork (no allocation after it). */
struct ChildPlan {
  pid_t parent;
  int listen_fd;
  int error_fd;
  std::string uid_map, gid_map;
  const char* source;
  bool read_only;
  unsigned long remount_flags;  // fallback without mount_setattr: the mount's locked flags + RDONLY
  std::vector<char*> argv;
  sock_fprog filter;
};

/** What a failed child reports through its error pipe. */
struct ChildFailure {
  int error;
  char step[80];
};

[[noreturn]] void child_fail(const ChildPlan& p, const char* step) {
  ChildFailure f{};
  f.error = errno;
  std::strncpy(f.step, step, sizeof f.step - 1);
  [[maybe_unused]] ssize_t n = write(p.error_fd, &f, sizeof f);
  _exit(127);
}

bool write_text(const char* path, const std::string& text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

/** Between fork and exec: async-signal-safe calls only (the parent has other threads). */
[[noreturn]] void run_child(ChildPlan& p) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail(p, "set the parent-death signal");
  if (getppid() != p.parent) _exit(0);  // the parent died before the signal was armed
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) child_fail(p, "create a user namespace (unshare)");
  if (!write_text("/proc/self/setgroups", "deny")) child_fail(p, "write /proc/self/setgroups");
  if (!write_text("/proc/self/uid_map", p.uid_map)) child_fail(p, "write /proc/self/uid_map");
  if (!write_text("/proc/self/gid_map", p.gid_map)) child_fail(p, "write /proc/self/gid_map");
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) child_fail(p, "make the mounts private");
  if (p.read_only) {
    // The host enforces :ro: the tree (and every mount below it) is read-only here.
    if (mount(p.source, p.source, nullptr, MS_BIND | MS_REC, nullptr) != 0) child_fail(p, "bind the shared directory");
    MountAttr attr{MOUNT_ATTR_RDONLY, 0, 0, 0};
    if (syscall(SYS_mount_setattr, AT_FDCWD, p.source, AT_RECURSIVE, &attr, sizeof attr) != 0) {
      if (errno != ENOSYS) child_fail(p, "make the shared directory read-only (mount_setattr)");
      if (mount(nullptr, p.source, nullptr, p.remount_flags, nullptr) != 0) child_fail(p, "make the shared directory read-only");
    }
  }
  // fd 3: the listening vhost-user socket (virtiofsd --fd=3); fd 4: the error pipe.
  int listen_fd = fcntl(p.listen_fd, F_DUPFD_CLOEXEC, 10);
  int error_fd = fcntl(p.error_fd, F_DUPFD_CLOEXEC, 10);
  if (listen_fd < 0 || error_fd < 0) child_fail(p, "arrange file descriptors");
  if (dup2(listen_fd, 3) != 3 || dup3(error_fd, 4, O_CLOEXEC) != 4) child_fail(p, "arrange file descriptors");
  p.error_fd = 4;
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0 || dup2(null_fd, 0) != 0) child_fail(p, "open /dev/null");
  if (syscall(SYS_close_range, 5U, ~0U, 0U) != 0) child_fail(p, "close inherited file descriptors");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(p, "set no_new_privs");
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p.filter) != 0) child_fail(p, "install the seccomp filter");
  char* const env[] = {nullptr};
  execve(p.argv[0], p.argv.data(), env);
  child_fail(p, "execute virtiofsd");
}

/**
 * A seccomp filter that fails with EPERM every call setting a mode with the setuid or
 * setgid bit (chmod and friends, and creating files, directories and nodes), and
 * openat2, whose mode the filter cannot read, with ENOSYS (callers fall back to
 * openat). virtiofsd's own filter stacks on top.
 */
std::vector<sock_filter> setid_filter() {
  struct Rule {
    long nr;
    int mode_arg;
  };
  const Rule rules[] = {
#ifdef SYS_chmod
      {SYS_chmod, 1}, {SYS_creat, 1}, {SYS_mkdir, 1}, {SYS_mknod, 1}, {SYS_open, 2},
#endif
      {SYS_fchmod, 1}, {SYS_fchmodat, 2}, {SYS_fchmodat2, 2}, {SYS_mkdirat, 2}, {SYS_mknodat, 2}, {SYS_openat, 3},
  };
  const size_t count = sizeof rules / sizeof *rules;
#if defined(__x86_64__)
  const uint32_t arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  const uint32_t arch = AUDIT_ARCH_AARCH64;
#else
#error "virtiofsd's seccomp filter needs this architecture's AUDIT_ARCH"
#endif
  constexpr uint32_t kSetId = S_ISUID | S_ISGID;
  std::vector<sock_filter> f;
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  // x32 system calls (bit 30) would slip past the numbers below.
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x4000'0000u, 0, 1));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  // Layout after the rule jumps: openat2 jump, allow, then a 4-instruction mode check
  // per argument index 1..3, then the ENOSYS return.
  for (size_t i = 0; i < count; i++) {
    const size_t skip = (count - 1 - i) + 2 + 4 * static_cast<size_t>(rules[i].mode_arg - 1);
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(rules[i].nr), static_cast<uint8_t>(skip), 0));
  }
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 1 + 12, 0));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  for (uint32_t arg = 1; arg <= 3; arg++) {
    // The low 32 bits of the argument (little-endian): mode_t is 32 bits.
    f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(offsetof(seccomp_data, args) + 8 * arg)));
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, kSetId, 0, 1));
    f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)));
    f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  }
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)));
  return f;
}

/** The mount flags a bind remount inside a user namespace must keep (the kernel locks them). */
unsigned long locked_mount_flags(const std::string& dir) {
  struct statvfs st {};
  if (statvfs(dir.c_str(), &st) != 0) return 0;
  unsigned long flags = 0;
  if (st.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (st.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

/** A private (0700) directory for the listening socket: in $XDG_RUNTIME_DIR, else $TMPDIR, else /tmp. */
std::string private_socket_dir() {
  std::string base = "/tmp";
  for (const char* name : {"XDG_RUNTIME_DIR", "TMPDIR"}) {
    const char* dir = getenv(name);
    if (dir && dir[0] == '/' && access(dir, W_OK | X_OK) == 0) {
      base = dir;
      break;
    }
  }
  std::string tmpl = base + "/vmrun-fs-XXXXXX";
  if (!mkdtemp(tmpl.data())) throw VmrunError(ErrorCode::Host, errno_message("cannot create a directory for virtiofsd's socket in " + base, errno));
  return tmpl;
}

}  // namespace

std::vector<std::string> virtiofsd_arguments(const VolumeConfig& config) {
  return {
      config.virtiofsd_path,
      "--fd=3",
      // Leave RLIMIT_NOFILE alone: raising it needs a capability the user namespace lacks.
      "--rlimit-nofile=0",
      "-o", "source=" + config.host_dir,
      "-o", "sandbox=namespace",
      "-o", "cache=auto",
      "-o", "no_xattr",
      "-o", "announce_submounts",
      "-o", "modcaps=-mknod:-setfcap",
      "-o", "log_level=err",
  };
}

VirtiofsdProcess VirtiofsdProcess::start(const VolumeConfig& config) {
  const std::string what = "virtiofsd for " + config.host_dir;
  if (access(config.virtiofsd_path.c_str(), X_OK) != 0)
    throw VmrunError(ErrorCode::Host, errno_message("cannot run virtiofsd " + config.virtiofsd_path, errno));
  const std::string dir = private_socket_dir();
  const std::string path = dir + "/vhost-user.sock";
  auto cleanup_dir = [&] {
    unlink(path.c_str());
    rmdir(dir.c_str());
  };
  int listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    if (listen_fd >= 0) close(listen_fd);
    cleanup_dir();
    throw VmrunError(ErrorCode::Host, "the socket path " + path + " is too long");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (listen_fd < 0 || bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listen_fd, 1) != 0) {
    int e = errno;
    if (listen_fd >= 0) close(listen_fd);
    cleanup_dir();
    throw VmrunError(ErrorCode::Host, errno_message("cannot listen for " + what, e));
  }
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    int e = errno;
    close(listen_fd);
    cleanup_dir();
    throw VmrunError(ErrorCode::Host, errno_message("pipe for " + what, e));
  }

  ChildPlan plan;
  plan.parent = getpid();
  plan.listen_fd = listen_fd;
  plan.error_fd = pipe_fds[1];
  plan.uid_map = "0 " + std::to_string(getuid()) + " 1\n";
  plan.gid_map = "0 " + std::to_string(getgid()) + " 1\n";
  plan.source = config.host_dir.c_str();
  plan.read_only = config.read_only;
  plan.remount_flags = MS_REMOUNT | MS_BIND | MS_RDONLY | locked_mount_flags(config.host_dir);
  std::vector<std::string> args = virtiofsd_arguments(config);
  for (auto& a : args) plan.argv.push_back(a.data());
  plan.argv.push_back(nullptr);
  std::vector<sock_filter> filter = setid_filter();
  plan.filter = {static_cast<unsigned short>(filter.size()), filter.data()};

  pid_t pid = fork();
  if (pid == 0) run_child(plan);
  int fork_errno = errno;
  close(pipe_fds[1]);
  close(listen_fd);  // the child has its own copy; connect() below still reaches it
  if (pid < 0) {
    close(pipe_fds[0]);
    cleanup_dir();
    throw VmrunError(ErrorCode::Host, errno_message("fork for " + what, fork_errno));
  }
  // The pipe closes at exec (or carries the step that failed before it).
  ChildFailure failure{};
  ssize_t got;
  do got = read(pipe_fds[0], &failure, sizeof failure);
  while (got < 0 && errno == EINTR);
  close(pipe_fds[0]);
  auto reap = [&] {
    kill(pid, SIGKILL);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {}
  };
  if (got > 0) {
    reap();
    cleanup_dir();
    failure.step[sizeof failure.step - 1] = 0;
    std::string hint = failure.error == EPERM && std::strstr(failure.step, "user namespace")
                           ? " (user namespaces are disabled on this host, or vmrun runs chroot-ed)"
                           : "";
    throw VmrunError(ErrorCode::Host, errno_message("cannot start " + what + ": " + failure.step, failure.error) + hint);
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  // The socket listens already (the child inherited it): connect() completes from the backlog.
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    reap();
    cleanup_dir();
    throw VmrunError(ErrorCode::Host, errno_message("cannot connect to " + what, e));
  }
  cleanup_dir();
  return VirtiofsdProcess(pid, fd);
}

void VirtiofsdProcess::stop() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {}
    pid_ = -1;
  }
  if (socket_ >= 0) close(socket_);
  socket_ = -1;
}

}  // namespace vmrun::virtio::fs
