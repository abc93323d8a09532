#include "devices/legacy/pci_config_absent.h"

#include <cstring>

namespace vmrun {

void PciConfigAbsent::read(uint64_t offset, uint8_t* data, uint32_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (offset == 0 && size == 4) {
    std::memcpy(data, &address_, 4);
    return;
  }
  std::memset(data, 0xFF, size);
}

void PciConfigAbsent::write(uint64_t offset, const uint8_t* data, uint32_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (offset == 0 && size == 4) std::memcpy(&address_, data, 4);
}

}  // namespace vmrun
