// The i8042 keyboard controller, only as far as a guest uses it on a headless VM:
// status reads say "nothing to read", and the CPU-reset command (0xFE on port 0x64)
// ends the VM, which is how Linux reboots with reboot=k and how test guests exit.
#pragma once
#include "devices/device.h"

namespace vmrun {

class I8042 : public Device {
 public:
  explicit I8042(VmControl* control) : control_(control) {}
  std::string name() const override { return "i8042"; }
  // Claims ports 0x60..0x64; offset 0 is data, offset 4 is status/command.
  void read(uint64_t offset, uint8_t* data, uint32_t size) override;
  void write(uint64_t offset, const uint8_t* data, uint32_t size) override;

 private:
  VmControl* control_;
};

}  // namespace vmrun
