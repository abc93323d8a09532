#include "vcpu/vcpu_thread.h"

#include <signal.h>

#include <cstring>

#include "arch/x86_64/page_walk.h"
#include "arch/x86_64/shutdown_report.h"
#include "arch/x86_64/vcpu.h"
#include "common/error.h"
#include "common/hex.h"

namespace vmrun {

VcpuThread::VcpuThread(std::unique_ptr<Vcpu> vcpu, VcpuHost& host) : vcpu_(std::move(vcpu)), host_(host) {}

VcpuThread::~VcpuThread() { join(); }

void VcpuThread::start() { thread_ = std::thread([this] { run_loop(); }); }

void VcpuThread::join() {
  if (thread_.joinable()) thread_.join();
}

void VcpuThread::run_loop() {
  // The kick signal must reach this thread even if the creator blocked it.
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, SIGRTMIN + 4);
  pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
  vcpu_->bind_to_current_thread();
  const int index = vcpu_->index();
  host_.entering_guest(index);
  try {
    for (;;) {
      if (host_.stop_requested()) break;
      if (!host_.wait_while_paused(index, [this] { complete_pending_io(); })) break;
      VcpuExit exit = vcpu_->run();
      host_.count_exit(exit.kind);
      dispatch(exit);
    }
  } catch (const VmrunError& e) {
    StopRequest r;
    r.kind = StopRequest::Kind::HostError;
    r.vcpu = index;
    r.detail = e.what();
    host_.request_stop(r);
  } catch (const std::exception& e) {
    StopRequest r;
    r.kind = StopRequest::Kind::HostError;
    r.vcpu = index;
    r.detail = std::string("internal error on vCPU ") + std::to_string(index) + ": " + e.what();
    host_.request_stop(r);
  }
  host_.vcpu_finished(index);
}

// An exit handed to userspace leaves the instruction half done (an OUT's RIP not yet
// advanced, an IN's RAX not yet written) until the next KVM_RUN. Parking there would
// let a snapshot capture the instruction as not yet run, and a restore run it twice.
void VcpuThread::complete_pending_io() {
  // A completion can itself exit (the next piece of a split MMIO access): handle those
  // too, up to a bound, so a hostile guest cannot keep the vCPU from parking.
  constexpr int kMaxCompletionExits = 16;
  for (int i = 0; i < kMaxCompletionExits && io_pending_; i++) {
    VcpuExit exit = vcpu_->complete_pending_io();
    if (exit.kind == VcpuExit::Kind::Interrupted) {
      io_pending_ = false;
      return;
    }
    host_.count_exit(exit.kind);
    dispatch(exit);
  }
}

void VcpuThread::dispatch(const VcpuExit& exit) {
  using K = VcpuExit::Kind;
  io_pending_ = exit.kind == K::PortIo || exit.kind == K::Mmio;
  switch (exit.kind) {
    case K::PortIo: {
      PortIoHandler* handler = host_.port_io_handler();
      if (handler && handler->handle(*vcpu_, exit)) return;
      for (uint32_t i = 0; i < exit.count; i++) {
        uint8_t* data = exit.data + static_cast<size_t>(i) * exit.size;
        bool claimed = exit.is_write ? host_.port_bus().write(exit.port, data, exit.size) : host_.port_bus().read(exit.port, data, exit.size);
        // Nothing at this port: reads float high, writes vanish, as on a PC's ISA bus.
        if (!claimed && !exit.is_write) std::memset(data, 0xFF, exit.size);
      }
      return;
    }
    case K::Mmio: {
      bool claimed = exit.is_write ? host_.mmio_bus().write(exit.address, exit.data, exit.size) : host_.mmio_bus().read(exit.address, exit.data, exit.size);
      if (!claimed && !exit.is_write) std::memset(exit.data, 0xFF, exit.size);
      return;
    }
    case K::Interrupted:
      vcpu_->clear_kick();
      return;
    case K::Debug:
      if (host_.debug_exit(vcpu_->index(), exit)) return;
      report_failure(exit);
      return;
    case K::Halt:
      // With the in-kernel LAPIC, KVM waits on HLT itself; seeing one means the vCPU
      // halted with interrupts off for good. Yield instead of spinning.
      std::this_thread::yield();
      return;
    default:
      report_failure(exit);
  }
}

void VcpuThread::report_failure(const VcpuExit& exit) {
  using K = VcpuExit::Kind;
  StopRequest r;
  r.vcpu = vcpu_->index();
  try {
    r.rip = vcpu_->instruction_pointer();
  } catch (...) {
  }
  switch (exit.kind) {
    case K::Shutdown:
      r.kind = StopRequest::Kind::TripleFault;
      r.detail = "the guest triple-faulted (CPU shutdown) at RIP " + hex(r.rip);
      // Every register KVM hands back, or, when KVM has reset them (AMD SVM), that the
      // place of the fault was lost: 0xfff0 is the reset vector, not where it faulted.
      if (X86Vcpu* x = vcpu_->x86()) {
        try {
          r.detail = x86::describe_shutdown(x->general_registers(), x->paging_state());
        } catch (...) {
        }
      }
      break;
    case K::SystemReset:
      r.kind = StopRequest::Kind::Reset;
      r.detail = "the guest requested a reset";
      break;
    case K::SystemShutdown:
      r.kind = StopRequest::Kind::PowerOff;
      r.detail = "the guest powered off";
      break;
    case K::EmulationFailure: {
      r.kind = StopRequest::Kind::EmulationFailure;
      r.instruction.assign(exit.instruction, exit.instruction + exit.instruction_length);
      if (r.instruction.empty() && vcpu_->x86()) {
        // Older KVMs do not report the bytes: fetch them through the guest's page tables.
        uint8_t bytes[15];
        size_t n = x86::read_guest_virtual(host_.memory(), vcpu_->x86()->paging_state(), r.rip, bytes, sizeof bytes);
        r.instruction.assign(bytes, bytes + n);
      }
      r.detail = "KVM could not emulate the instruction at RIP " + hex(r.rip) + (r.instruction.empty() ? "" : " (bytes " + hex_bytes(r.instruction.data(), r.instruction.size()) + ")");
      break;
    }
    case K::FailEntry:
      r.kind = StopRequest::Kind::GuestError;
      r.detail = "KVM failed to enter the guest (hardware reason " + hex(exit.hardware_reason) + ") at RIP " + hex(r.rip);
      break;
    case K::InternalError:
      r.kind = StopRequest::Kind::GuestError;
      r.detail = "KVM internal error (suberror " + std::to_string(exit.suberror) + ") at RIP " + hex(r.rip);
      break;
    default:
      r.kind = StopRequest::Kind::GuestError;
      r.detail = "unexpected KVM exit reason " + std::to_string(exit.raw_reason) + " at RIP " + hex(r.rip);
  }
  host_.request_stop(r);
}

}  // namespace vmrun
