// PCI configuration mechanism #1 (0xCF8 address, 0xCFC data) with no devices behind
// it: every read answers "no device" (all ones), so a kernel's PCI probe ends fast.
#pragma once
#include <mutex>

#include "devices/device.h"

namespace vmrun {

class PciConfigAbsent : public Device {
 public:
  std::string name() const override { return "pci-config"; }
  // Claims 0xCF8..0xCFF.
  void read(uint64_t offset, uint8_t* data, uint32_t size) override;
  void write(uint64_t offset, const uint8_t* data, uint32_t size) override;

 private:
  std::mutex mu_;
  uint32_t address_ = 0;
};

}  // namespace vmrun
