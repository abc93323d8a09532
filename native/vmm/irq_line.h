// An interrupt line wired to a GSI of the VM's in-kernel interrupt controller.
#pragma once
#include "backend/hypervisor.h"
#include "devices/device.h"

namespace vmrun {

class VmInterruptLine : public InterruptLine {
 public:
  VmInterruptLine(Vm& vm, uint32_t gsi) : vm_(vm), gsi_(gsi) {}
  void set_level(bool high) override { vm_.set_irq_line(gsi_, high); }

 private:
  Vm& vm_;
  uint32_t gsi_;
};

}  // namespace vmrun
