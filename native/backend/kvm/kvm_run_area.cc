#include "backend/kvm/kvm_run_area.h"

#include <signal.h>
#include <sys/mman.h>

#include <cstring>
#include <mutex>
#include <string>

namespace vmrun::kvm {

// The signal that knocks a vCPU thread out of KVM_RUN. Its handler does nothing: the
// point is the EINTR. A real-time signal, so it never collides with Node's SIGUSR1.
static int kick_signal() { return SIGRTMIN + 4; }

static void install_kick_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    sigaction(kick_signal(), &sa, nullptr);
  });
}

KvmRunArea::KvmRunArea(int vm_fd, int index, size_t mmap_size) : index_(index) {
  install_kick_handler();
  fd_ = Fd(checked_ioctl(vm_fd, KVM_CREATE_VCPU, static_cast<unsigned long>(index), "CREATE_VCPU"));
  run_size_ = mmap_size;
  void* p = mmap(nullptr, run_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (p == MAP_FAILED) throw VmrunError(ErrorCode::Host, errno_message("cannot map the vCPU run area", errno));
  run_ = static_cast<kvm_run*>(p);
}

KvmRunArea::~KvmRunArea() {
  if (run_) munmap(run_, run_size_);
}

void KvmRunArea::bind_to_current_thread() {
  thread_ = pthread_self();
  bound_.store(true, std::memory_order_release);
}

void KvmRunArea::kick() {
  // immediate_exit covers the window before KVM_RUN; the signal covers being inside it.
  __atomic_store_n(&run_->immediate_exit, 1, __ATOMIC_SEQ_CST);
  if (bound_.load(std::memory_order_acquire)) pthread_kill(thread_, kick_signal());
}

void KvmRunArea::clear_kick() { __atomic_store_n(&run_->immediate_exit, 0, __ATOMIC_SEQ_CST); }

VcpuExit KvmRunArea::complete_pending_io() {
  // KVM completes an I/O exit at the start of the next KVM_RUN, before it looks at
  // immediate_exit; with immediate_exit set it then returns EINTR without entering the
  // guest (KVM's selftests and QEMU's cpu_synchronize_state do the same). The flag stays
  // set: the first run() after the pause returns Interrupted and clears it.
  __atomic_store_n(&run_->immediate_exit, 1, __ATOMIC_SEQ_CST);
  return run();
}

VcpuExit KvmRunArea::run() {
  if (::ioctl(fd_.get(), KVM_RUN, 0) < 0) {
    if (errno == EINTR || errno == EAGAIN) {
      VcpuExit e;
      e.kind = VcpuExit::Kind::Interrupted;
      return e;
    }
    throw VmrunError(ErrorCode::Host, errno_message("KVM_RUN failed on vCPU " + std::to_string(index_), errno));
  }
  return translate_exit();
}

VcpuExit KvmRunArea::translate_exit() {
  VcpuExit e;
  e.raw_reason = run_->exit_reason;
  switch (run_->exit_reason) {
    case KVM_EXIT_IO:
      e.kind = VcpuExit::Kind::PortIo;
      e.port = run_->io.port;
      e.size = run_->io.size;
      e.count = run_->io.count;
      e.is_write = run_->io.direction == KVM_EXIT_IO_OUT;
      e.data = reinterpret_cast<uint8_t*>(run_) + run_->io.data_offset;
      break;
    case KVM_EXIT_MMIO:
      e.kind = VcpuExit::Kind::Mmio;
      e.address = run_->mmio.phys_addr;
      e.size = run_->mmio.len;
      e.is_write = run_->mmio.is_write;
      e.data = run_->mmio.data;
      break;
    case KVM_EXIT_HLT:
      e.kind = VcpuExit::Kind::Halt;
      break;
    case KVM_EXIT_SHUTDOWN:
      e.kind = VcpuExit::Kind::Shutdown;
      break;
    case KVM_EXIT_INTR:
      e.kind = VcpuExit::Kind::Interrupted;
      break;
    case KVM_EXIT_DEBUG:
      e.kind = VcpuExit::Kind::Debug;
#if defined(__x86_64__)
      e.debug_exception = run_->debug.arch.exception;
      e.debug_dr6 = run_->debug.arch.dr6;
      e.address = run_->debug.arch.pc;
#endif
      break;
    case KVM_EXIT_SYSTEM_EVENT:
      e.kind = run_->system_event.type == KVM_SYSTEM_EVENT_RESET ? VcpuExit::Kind::SystemReset : VcpuExit::Kind::SystemShutdown;
      break;
    case KVM_EXIT_FAIL_ENTRY:
      e.kind = VcpuExit::Kind::FailEntry;
      e.hardware_reason = run_->fail_entry.hardware_entry_failure_reason;
      break;
    case KVM_EXIT_INTERNAL_ERROR:
      e.suberror = run_->internal.suberror;
      if (run_->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
        e.kind = VcpuExit::Kind::EmulationFailure;
        // Newer KVMs append the failing instruction's bytes (flags bit 0).
        if (run_->emulation_failure.ndata >= 3 && (run_->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
          uint8_t n = run_->emulation_failure.insn_size;
          e.instruction_length = n > 15 ? 15 : n;
          std::memcpy(e.instruction, run_->emulation_failure.insn_bytes, e.instruction_length);
        }
      } else {
        e.kind = VcpuExit::Kind::InternalError;
      }
      break;
    default:
      e.kind = VcpuExit::Kind::Unknown;
  }
  return e;
}

}  // namespace vmrun::kvm
