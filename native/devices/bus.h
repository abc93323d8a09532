// Address decoding for port I/O and MMIO exits: a sorted list of [base, base+length)
// ranges, each owned by one device. Built before the vCPUs start and read-only after,
// so vCPU threads look it up without a lock.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "devices/device.h"

namespace vmrun {

class Bus {
 public:
  /** Adds a device at [base, base+length); throws if it overlaps another. */
  void add(uint64_t base, uint64_t length, std::shared_ptr<Device> device);
  /** Dispatches an access; returns false if no device claims the address. */
  bool read(uint64_t address, uint8_t* data, uint32_t size) const;
  bool write(uint64_t address, const uint8_t* data, uint32_t size) const;
  /** Every device on the bus once, in address order (for snapshots). */
  std::vector<std::shared_ptr<Device>> devices() const;

 private:
  struct Range {
    uint64_t base, length;
    std::shared_ptr<Device> device;
  };
  const Range* find(uint64_t address, uint32_t size) const;
  std::vector<Range> ranges_;
};

}  // namespace vmrun
