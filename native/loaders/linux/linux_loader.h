// The Linux x86_64 64-bit boot protocol: loading a bzImage or an uncompressed vmlinux
// ELF, the initrd and the command line, and filling the zero page (setup header,
// e820 map). Produces the start state of the boot vCPU.
#pragma once
#include <string>
#include <vector>

#include "arch/x86_64/cpu_state.h"
#include "loaders/kernel_format.h"
#include "memory/guest_memory.h"

namespace vmrun {

struct LinuxBootInput {
  const std::vector<uint8_t>* kernel;
  KernelFormat format;             // LinuxBzImage or LinuxElf
  std::string kernel_path;         // for messages
  const std::vector<uint8_t>* initrd = nullptr;
  std::string initrd_path;
  std::string cmdline;
};

struct LoadedLinux {
  x86::StartState start;
  uint64_t kernel_end = 0;    // one past the highest byte the kernel occupies
  uint64_t initrd_address = 0;
};

LoadedLinux load_linux(const LinuxBootInput& input, const GuestMemory& memory);

}  // namespace vmrun
