// Why a vCPU stopped running guest code, in backend-neutral terms. Backends
// translate their own exit records (kvm_run, hv_vcpu_exit_t) into this.
#pragma once
#include <cstdint>

namespace vmrun {

struct VcpuExit {
  enum class Kind {
    PortIo,            // x86 IN/OUT: port, size, count, is_write, data
    Mmio,              // access to guest-physical memory that is not RAM
    Halt,              // HLT with no in-kernel interrupt controller to wait on
    Shutdown,          // triple fault (x86 CPU shutdown)
    SystemReset,       // the guest asked for a reset through the platform (PSCI, ...)
    SystemShutdown,    // the guest asked to power off through the platform
    EmulationFailure,  // the hypervisor could not emulate an instruction
    InternalError,     // any other internal hypervisor error
    FailEntry,         // the hardware refused to enter the guest (bad state)
    Interrupted,       // kicked by the VMM (pause, stop, snapshot): not the guest's doing
    Unknown,           // an exit reason the backend does not know
    Debug,             // a debug trap the VMM asked for (breakpoint, single step): debug_exception, address = pc
  };
  Kind kind = Kind::Unknown;

  // PortIo and Mmio
  bool is_write = false;
  uint8_t* data = nullptr;  // the bytes written, or where to put the bytes read
  uint16_t port = 0;
  uint32_t size = 0;   // access width in bytes
  uint32_t count = 1;  // PortIo: repetitions (string I/O); data holds size*count bytes
  uint64_t address = 0;

  // Debug: the exception vector (1 = #DB, 3 = #BP) and DR6 (which breakpoint, single step)
  uint32_t debug_exception = 0;
  uint64_t debug_dr6 = 0;

  // Failures: what the user needs to see
  uint32_t raw_reason = 0;   // backend-specific exit reason number
  uint32_t suberror = 0;     // backend-specific
  uint64_t hardware_reason = 0;
  uint8_t instruction[15] = {};
  uint8_t instruction_length = 0;
};

}  // namespace vmrun
