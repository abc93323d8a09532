// What every emulated device implements: port or MMIO accesses, and the small
// save()/restore() pair that snapshots use. The snapshot code never reaches into a
// device; adding a device never touches the snapshot format.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vmrun {

using StateBlob = std::vector<uint8_t>;

class Device {
 public:
  virtual ~Device() = default;
  /** A stable name, used as the device's key in a snapshot ("uart0", "i8042"). */
  virtual std::string name() const = 0;
  /** Reads `size` bytes at `offset` from the device's base (port or MMIO). */
  virtual void read(uint64_t offset, uint8_t* data, uint32_t size) = 0;
  virtual void write(uint64_t offset, const uint8_t* data, uint32_t size) = 0;
  /** Device state for a snapshot; empty for stateless devices. */
  virtual StateBlob save() { return {}; }
  virtual void restore(const StateBlob& /*state*/) {}
  /**
   * Devices that work on threads of their own stop touching guest memory from
   * pause_work() until resume_work(): the machine brackets snapshots with them,
   * after the vCPUs are parked.
   */
  virtual void pause_work() {}
  virtual void resume_work() {}
};

/** An interrupt line a device drives (an ISA IRQ / GSI on the in-kernel irqchip). */
class InterruptLine {
 public:
  virtual ~InterruptLine() = default;
  virtual void set_level(bool high) = 0;
};

/** Why the VM stops; requested by a device or a vCPU, reported to the host. */
struct StopRequest {
  enum class Kind {
    Reset,             // i8042 reset / platform reset: a normal guest-initiated end
    PowerOff,          // platform power-off
    ExitCode,          // the guest reported an exit status (exit port, hypercall)
    TripleFault,       // CPU shutdown
    EmulationFailure,  // the hypervisor could not run an instruction
    GuestError,        // internal error / failed entry / unknown exit
    HostError,         // the VMM failed
    Killed,            // the host asked the VM to stop
  };
  Kind kind = Kind::Killed;
  int exit_code = 0;
  int vcpu = -1;
  uint64_t rip = 0;
  std::string detail;
  std::vector<uint8_t> instruction;
};

/** How a device asks the machine to stop (reset, guest exit code...). */
class VmControl {
 public:
  virtual ~VmControl() = default;
  virtual void request_stop(const StopRequest& request) = 0;
};

}  // namespace vmrun
