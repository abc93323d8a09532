#include "loaders/hermit/hermit_boot.h"

#include "common/error.h"
#include "vmm/builder.h"

namespace vmrun {

// Hermit support is being built (issue 7); until then a Hermit kernel is refused
// with a clear message rather than booted wrongly as Linux.
HermitBootPlan prepare_hermit_boot(const std::vector<uint8_t>&, const MachineConfig& config, const GuestMemory&,
                                   VmControl&, ConsoleOutput&) {
  throw VmrunError(ErrorCode::KernelFormat, "kernel " + config.kernel_path + " is a Hermit unikernel, which this build of vmrun cannot boot yet");
}

}  // namespace vmrun
