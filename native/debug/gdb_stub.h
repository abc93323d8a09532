// A GDB remote-serial-protocol stub for a running machine (`vmrun boot --gdb`): its own
// native thread serves one debugger connection over TCP, with every vCPU as a thread.
// The vCPU threads hand it only debug exits (breakpoints, single steps); normal exits
// never come here and nothing crosses into JavaScript. All-stop: when one vCPU stops,
// the others are paused through the machine's pause machinery.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/hypervisor.h"
#include "debug/gdb_packet.h"
#include "devices/device.h"

namespace vmrun {

class Machine;

/** Where the stub listens: `host` is an IP address or name, port 0 picks a free one. */
struct GdbListenConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
};

class GdbStub {
 public:
  /** Binds and listens now, so a port in use fails the boot before the guest runs. */
  GdbStub(Machine& machine, const GdbListenConfig& config, DebugTrapSupport traps, std::string note = {});
  ~GdbStub();
  GdbStub(const GdbStub&) = delete;
  GdbStub& operator=(const GdbStub&) = delete;

  /** Starts the stub's thread and says on stderr where it waits. */
  void start();
  /** Ends the thread (the machine is going away). */
  void shut_down();
  /** "HOST:PORT" it listens on (the real port when 0 was asked for). */
  const std::string& address() const { return address_; }

  /**
   * Called on a vCPU thread for each debug exit. Returns false if the stub has no use
   * for it; otherwise the vCPU either goes on (a step of breakpoint emulation that hit
   * nothing) or has asked the machine to pause every vCPU and woken the stub.
   */
  bool on_debug_exit(int vcpu, const VcpuExit& exit);
  /** Called once when the machine ended: the debugger hears the exit (bounded wait). */
  void machine_stopped(const StopRequest& request);

 private:
  enum class StopKind { Signal, SoftwareBreakpoint, HardwareBreakpoint, Step, Interrupt };
  struct Stop {
    int vcpu = 0;
    StopKind kind = StopKind::Signal;
  };
  enum class Action { None, Continue, Step };
  struct PatchedBreakpoint {
    uint64_t address, physical;
    uint8_t original;
  };
  enum class SessionEnd { Detached, Killed, Disconnected, MachineEnded, ShutDown };

  void thread_main();
  SessionEnd session(int fd);
  /** Handles one packet while stopped; nullopt when the guest was resumed (the reply comes at the next stop). */
  std::optional<std::string> handle(std::string_view packet, SessionEnd* end);
  std::string stop_reply(const Stop& stop) const;
  std::string exit_reply() const;
  void send_packet(int fd, std::string_view payload);
  void send_raw(int fd, std::string_view bytes);
  void wake();

  // While stopped (every vCPU parked):
  std::string read_registers(int vcpu);
  std::string write_registers(int vcpu, std::string_view hex);
  std::string read_register(int vcpu, std::string_view args);
  std::string write_register(int vcpu, std::string_view args);
  std::string read_memory(std::string_view args);
  std::string write_memory(std::string_view args, bool binary);
  size_t access_memory(uint64_t address, uint8_t* data, size_t len, bool write);
  std::string insert_breakpoint(std::string_view args, bool insert);
  std::optional<std::string> resume_packet(std::string_view actions);
  void resume(const std::vector<Action>& actions);
  void pause_all();
  void release_all();  // detach: breakpoints out, debug traps off, every vCPU runs
  std::optional<int> parse_thread(std::string_view id) const;  // -1 = all, else a vCPU index

  Machine& machine_;
  const DebugTrapSupport traps_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  std::string address_;
  std::string note_;  // a line for the user beside the address (where a relocated kernel's symbols are)
  std::thread thread_;
  std::atomic<bool> shut_down_{false};

  // The stub thread's own state.
  bool stopped_ = true;
  bool no_ack_ = false;
  Stop last_stop_;
  int g_vcpu_ = 0;  // the thread g/G/p/P/m/M act on (Hg)
  int c_vcpu_ = -1;  // the thread c/s act on (Hc; -1 = all)
  std::string last_reply_;
  std::vector<PatchedBreakpoint> patched_;  // int3 in guest memory
  std::vector<uint64_t> hardware_;          // DR0-DR3
  std::vector<std::pair<uint64_t, StopKind>> emulated_;  // breakpoints checked at each single step

  // Shared with the vCPU threads (read by them only while they run: written while all are parked).
  std::vector<std::pair<uint64_t, StopKind>> emulated_snapshot_;
  std::vector<char> user_step_;
  bool emulating_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Stop> pending_;
  bool machine_ended_ = false;
  bool end_reported_ = false;
  StopRequest end_;
};

}  // namespace vmrun
