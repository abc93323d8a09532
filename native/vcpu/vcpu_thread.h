// The loop that runs one vCPU on its own native thread: enter the guest, dispatch each
// exit in native code (port I/O and MMIO to the buses, failures to a stop request),
// and park when the machine pauses. Nothing here crosses into JavaScript.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "backend/hypervisor.h"
#include "devices/bus.h"
#include "vcpu/port_io_handler.h"

namespace vmrun {

/** What the vCPU loop shares with the machine that owns it. */
class VcpuHost : public VmControl {
 public:
  virtual const Bus& port_bus() const = 0;
  virtual const Bus& mmio_bus() const = 0;
  virtual const GuestMemory& memory() const = 0;
  virtual PortIoHandler* port_io_handler() const = 0;
  /**
   * Blocks while the machine is paused; returns false when the vCPU must stop. Before
   * the vCPU parks, `before_park` runs on the vCPU thread (outside the host's lock): the
   * vCPU completes the I/O it was in the middle of there, so what a snapshot captures
   * while it is parked is whole.
   */
  virtual bool wait_while_paused(int vcpu, const std::function<void()>& before_park) = 0;
  virtual bool stop_requested() const = 0;
  /** Called once by each vCPU thread as it ends. */
  virtual void vcpu_finished(int vcpu) = 0;
  /** Called by each vCPU thread just before it first enters the guest. */
  virtual void entering_guest(int vcpu) = 0;
  /** A debug exit (breakpoint, single step): true if a debugger took it. */
  virtual bool debug_exit(int, const VcpuExit&) { return false; }
  /** Per-kind exit counters, for --stats. */
  virtual void count_exit(VcpuExit::Kind kind) = 0;
};

class VcpuThread {
 public:
  VcpuThread(std::unique_ptr<Vcpu> vcpu, VcpuHost& host);
  ~VcpuThread();
  void start();
  void kick() { vcpu_->kick(); }
  void join();
  Vcpu& vcpu() { return *vcpu_; }

 private:
  void run_loop();
  void dispatch(const VcpuExit& exit);
  void complete_pending_io();
  void report_failure(const VcpuExit& exit);

  std::unique_ptr<Vcpu> vcpu_;
  VcpuHost& host_;
  std::thread thread_;
  bool io_pending_ = false;  // the last exit was port I/O or MMIO that KVM has not completed yet
};

}  // namespace vmrun
