// What every KVM vCPU shares whatever the architecture: its fd, the mapped kvm_run
// area, KVM_RUN with the exit translated into a VcpuExit, and the kick (a signal plus
// immediate_exit) that interrupts it from another thread. x86_64's and aarch64's
// vCPU classes each own one.
#pragma once
#include "backend/kvm/kvm_uapi.h"
#include <pthread.h>

#include <atomic>

#include "backend/kvm/kvm_fd.h"
#include "backend/vcpu_exit.h"

namespace vmrun::kvm {

class KvmRunArea {
 public:
  /** Creates vCPU `index` on `vm_fd` and maps its run area (`mmap_size` from KVM_GET_VCPU_MMAP_SIZE). */
  KvmRunArea(int vm_fd, int index, size_t mmap_size);
  ~KvmRunArea();
  KvmRunArea(const KvmRunArea&) = delete;
  KvmRunArea& operator=(const KvmRunArea&) = delete;

  int fd() const { return fd_.get(); }
  VcpuExit run();
  void kick();
  void clear_kick();
  VcpuExit complete_pending_io();
  void bind_to_current_thread();

 private:
  VcpuExit translate_exit();
  int index_;
  Fd fd_;
  kvm_run* run_ = nullptr;
  size_t run_size_ = 0;
  std::atomic<bool> bound_{false};
  pthread_t thread_{};
};

}  // namespace vmrun::kvm
