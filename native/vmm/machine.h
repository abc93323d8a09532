// A running VM as the host sees it: memory, devices, vCPU threads, and the controls
// the library drives (start, pause, resume, stop, console input, state capture).
// vmm/builder.cc assembles one for a boot or a restore; this file only runs it.
#pragma once
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/hypervisor.h"
#include "devices/bus.h"
#include "devices/console_input.h"
#include "devices/console_output.h"
#include "devices/legacy/uart_16550.h"
#include "devices/virtio/net/network_config.h"
#include "snapshot/memory_image.h"
#include "debug/gdb_stub.h"
#include "vcpu/vcpu_thread.h"

namespace vmrun {

namespace virtio {
class VirtioMmioTransport;
}

/** How the host hears from the machine. Both are called on native threads. */
struct MachineCallbacks {
  ConsoleOutput::Sink console;                      // batches of guest console output
  std::function<void(const StopRequest&)> stopped;  // once, after every vCPU ended
};

/** What a virtio device's guest got wrong (each time the device needed a reset). */
struct VirtioFailureStats {
  std::string device;
  uint64_t count = 0;
  std::string last;
};

/** Exit counters and timings, for --stats and benchmarks. */
struct MachineStats {
  std::map<std::string, uint64_t> exits;
  int64_t first_entry_ns = 0;  // CLOCK_MONOTONIC when vCPU 0 first entered the guest (0: not yet)
  std::vector<std::pair<std::string, double>> setup_ms;  // how long each set-up step took (boot or restore)
  uint64_t console_bytes = 0;
  double run_seconds = 0;
  std::vector<VirtioFailureStats> virtio_failures;  // one per virtio device
};

/** Everything a snapshot needs from the machine, captured while it is paused. */
struct MachineState {
  StateBlob vm;
  std::vector<StateBlob> vcpus;
  std::vector<std::pair<std::string, StateBlob>> devices;
};

/** What a snapshot save produced: state, the RAM chunk index, and how long the guest was stopped. */
struct SnapshotCapture {
  MachineState state;
  std::vector<MemoryChunk> chunks;
  uint64_t data_length = 0;
  uint64_t touched_pages = 0;
  double paused_ms = 0;   // guest stopped: state capture and copying the pages out
  double write_ms = 0;    // compressing and writing (the guest runs meanwhile unless stopping)
};

/**
 * Who holds a pause. The vCPUs stay parked while any holder holds one, so a snapshot
 * taken while the user has the machine paused leaves it paused, and one holder's resume
 * never releases another's pause.
 */
enum class PauseHolder { User, Snapshot, Debugger };

class Machine : public VcpuHost {
 public:
  ~Machine() override;

  /** Starts every vCPU thread. */
  void start();
  /**
   * Takes `holder`'s pause (again, if it already holds one) and blocks the caller (a
   * worker thread) until every vCPU is parked outside the guest. On timeout the holder's
   * pause is released and false returned.
   */
  bool pause(PauseHolder holder, std::chrono::milliseconds timeout);
  /** Releases `holder`'s pause; the vCPUs run again once no holder is left. */
  void resume(PauseHolder holder);
  /** Asks the machine to stop; `stopped` is called when the last vCPU ended. */
  void stop();
  /** Host input for the guest's console: the UART, or for Hermit guests their fd 0 and serial-read hypercalls. */
  void write_console(const uint8_t* data, size_t len);
  /** Whether host input is attached: Hermit reads of fd 0 wait for it while it is, and see end of input after. */
  void set_console_input_open(bool open) { console_input_->set_source_open(open); }
  /** Blocks until everything the guest wrote so far reached the console sink. */
  void flush_console() { console_->flush(); }

  /** Captures VM, vCPU and device state; the machine must be paused. */
  MachineState capture_state();
  /** Applies captured state in the restore order: vCPUs and VM (in the order Vm::state_precedes_vcpus says), devices last. */
  void restore_state(const MachineState& state, bool catch_up_wall_clock = false);

  /**
   * Saves a snapshot's machine state and RAM: pauses, captures state and the non-zero
   * pages, resumes (unless `stop_after`), then compresses the pages into `fd` at
   * `data_offset`. Blocks the caller (a worker thread). Saves of one machine run one at
   * a time: a second waits for the first.
   */
  SnapshotCapture save_snapshot(int fd, uint64_t data_offset, bool stop_after, int zstd_level);

  /** The gdb stub's address ("HOST:PORT"), empty without one. */
  std::string gdb_address() const { return gdb_ ? gdb_->address() : std::string(); }
  /** vCPU `i`'s backend object, for the debugger (only while the vCPU is parked). */
  Vcpu& vcpu(int i) { return vcpus_[static_cast<size_t>(i)]->vcpu(); }
  /** A vCPU thread stopped for the debugger: every vCPU parks (the Debugger pause) until release_for_debugger. */
  void hold_for_debugger();
  /** Releases the Debugger pause; vCPU i runs again only if run[i] (the others stay parked). */
  void release_for_debugger(const std::vector<bool>& run);

  MachineStats stats() const;
  /** The ports the network device publishes (empty without one). */
  const std::vector<PortForward>& published_ports() const { return published_ports_; }
  const GuestMemory& memory() const override { return memory_; }
  int vcpu_count() const { return static_cast<int>(vcpus_.size()); }

  // VcpuHost
  const Bus& port_bus() const override { return port_bus_; }
  const Bus& mmio_bus() const override { return mmio_bus_; }
  PortIoHandler* port_io_handler() const override { return port_io_handler_.get(); }
  bool wait_while_paused(int vcpu, const std::function<void()>& before_park) override;
  bool stop_requested() const override { return stop_.load(std::memory_order_acquire); }
  void vcpu_finished(int vcpu) override;
  void count_exit(VcpuExit::Kind kind) override;
  void entering_guest(int vcpu) override;
  void request_stop(const StopRequest& request) override;
  bool debug_exit(int vcpu, const VcpuExit& exit) override;

 private:
  friend class MachineBuilder;
  Machine() = default;
  bool paused_locked() const;  // any holder holds a pause; mu_ held

  std::unique_ptr<Hypervisor> hypervisor_;
  std::unique_ptr<Vm> vm_;
  GuestMemory memory_;
  Bus port_bus_, mmio_bus_;
  std::unique_ptr<ConsoleOutput> console_;
  std::shared_ptr<Uart16550> uart_;
  std::shared_ptr<ConsoleInput> console_input_ = std::make_shared<ConsoleInput>();
  std::unique_ptr<PortIoHandler> port_io_handler_;
  std::vector<std::unique_ptr<VcpuThread>> vcpus_;
  std::vector<std::shared_ptr<virtio::VirtioMmioTransport>> virtio_;  // in slot order (vmm/platform.h)
  MachineCallbacks callbacks_;

  mutable std::mutex mu_;
  std::condition_variable state_changed_;
  std::atomic<bool> stop_{false};
  std::array<bool, 3> pause_held_{};  // by PauseHolder
  std::vector<char> debug_hold_;      // per vCPU: left parked by the debugger (single-stepping another)
  std::unique_ptr<GdbStub> gdb_;      // with --gdb; built last, shut down first
  std::mutex save_mu_;                // one save at a time
  int parked_ = 0;
  int finished_ = 0;
  bool started_ = false;
  StopRequest stop_request_;
  std::array<std::atomic<uint64_t>, 16> exit_counts_{};
  std::chrono::steady_clock::time_point started_at_;
  std::chrono::steady_clock::time_point stopped_at_;
  std::atomic<int64_t> first_entry_ns_{0};
  std::vector<std::pair<std::string, double>> setup_ms_;  // written by the builder only
  std::vector<PortForward> published_ports_;              // written by the builder only
};

}  // namespace vmrun
