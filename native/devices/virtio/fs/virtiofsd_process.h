// virtiofsd, the vhost-user back end that serves a volume's FUSE requests, started by
// the process that runs the VM and ended with it. It runs in a user namespace of its
// own where the caller's uid and gid are root and nothing else is mapped, so it works
// for a caller who is not root and can never give a file to another host user; with
// a read-only volume the directory is bound read-only in that namespace before
// virtiofsd starts; a seccomp filter refuses any mode with setuid or setgid bits;
// and the kernel ends it when its parent thread dies (PR_SET_PDEATHSIG), even by
// SIGKILL. The reasons for each option are in docs/volumes.md.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

namespace vmrun::virtio::fs {

/** One volume as the host asks for it. */
struct VolumeConfig {
  /** The virtio-fs tag the guest mounts it by (at most kMaxTagBytes). */
  std::string tag;
  /** Absolute path of an existing directory. */
  std::string host_dir;
  bool read_only = false;
  /** The virtiofsd binary (QEMU's C virtiofsd, /usr/lib/qemu/virtiofsd on Debian). */
  std::string virtiofsd_path;
};

/** The virtiofsd command line for a volume whose vhost-user socket is fd 3 (exported for tests and the benchmark). */
std::vector<std::string> virtiofsd_arguments(const VolumeConfig& config);

/** A running virtiofsd and the front end's end of its vhost-user socket. */
class VirtiofsdProcess {
 public:
  /**
   * Starts virtiofsd for `config` and connects to it. Must be called on a thread that
   * lives as long as the VM (the parent-death signal follows the forking thread).
   * Throws VmrunError(Host) with the failing step if it cannot start.
   */
  static VirtiofsdProcess start(const VolumeConfig& config);

  VirtiofsdProcess(VirtiofsdProcess&& o) noexcept : pid_(o.pid_), socket_(o.socket_) { o.pid_ = -1; o.socket_ = -1; }
  VirtiofsdProcess(const VirtiofsdProcess&) = delete;
  VirtiofsdProcess& operator=(const VirtiofsdProcess&) = delete;
  /** Kills and reaps the process (stop()). */
  ~VirtiofsdProcess() { stop(); }
  /**
   * Ends virtiofsd with SIGKILL and reaps it. Before the front end closes its socket:
   * virtiofsd writes through to the host files and keeps nothing to flush, and a
   * closed socket would make it log an error on the way out.
   */
  void stop();

  pid_t pid() const { return pid_; }
  /** Hands the connected socket to the caller (once). */
  int take_socket() {
    int fd = socket_;
    socket_ = -1;
    return fd;
  }

 private:
  VirtiofsdProcess(pid_t pid, int socket) : pid_(pid), socket_(socket) {}
  pid_t pid_;
  int socket_;
};

}  // namespace vmrun::virtio::fs
