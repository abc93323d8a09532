// vmrun's guest exit-status port (0xF4, where QEMU puts isa-debug-exit): a write of
// the status ends the VM and the status becomes vmrun's exit code. The guest init
// uses it so `vmrun run` can pass the container's exit code through.
#pragma once
#include "devices/device.h"

namespace vmrun {

constexpr uint16_t kExitPortAddress = 0xF4;

class ExitPort : public Device {
 public:
  explicit ExitPort(VmControl* control) : control_(control) {}
  std::string name() const override { return "exit-port"; }
  void read(uint64_t offset, uint8_t* data, uint32_t size) override;
  void write(uint64_t offset, const uint8_t* data, uint32_t size) override;

 private:
  VmControl* control_;
};

}  // namespace vmrun
