// Hermit unikernels booted the way uhyve boots them (notes/uhyve-abi.md): ELF loading
// and relocation, boot info, FDT, GDT, page tables, and the hypercall handler.
#pragma once
#include <memory>
#include <optional>
#include <vector>

#include "arch/x86_64/cpu_state.h"
#include "devices/console_input.h"
#include "devices/console_output.h"
#include "devices/device.h"
#include "memory/guest_memory.h"
#include "vcpu/port_io_handler.h"

namespace vmrun {

struct MachineConfig;

/** What the builder needs to start a Hermit guest. */
struct HermitBootPlan {
  std::vector<x86::StartState> vcpu_states;  // one per vCPU (they differ only in RSI)
  std::unique_ptr<PortIoHandler> hypercalls;
  /** What a relocatable kernel's link-time addresses were moved by (0 for ET_EXEC): gdb's symbol-file -o. */
  uint64_t load_bias = 0;
  std::optional<x86::StartState> start_state_for(int vcpu) const {
    if (vcpu < 0 || static_cast<size_t>(vcpu) >= vcpu_states.size()) return std::nullopt;
    return vcpu_states[static_cast<size_t>(vcpu)];
  }
};

/** Loads the kernel into `memory` and prepares its boot; throws KernelFormat/Usage errors. */
HermitBootPlan prepare_hermit_boot(const std::vector<uint8_t>& kernel, const MachineConfig& config,
                                   const GuestMemory& memory, VmControl& control, ConsoleOutput& console,
                                   std::shared_ptr<ConsoleInput> input);

}  // namespace vmrun
