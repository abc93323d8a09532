#include "devices/bus.h"

#include <algorithm>

#include "common/error.h"
#include "common/hex.h"

namespace vmrun {

void Bus::add(uint64_t base, uint64_t length, std::shared_ptr<Device> device) {
  for (const auto& r : ranges_) {
    if (base < r.base + r.length && r.base < base + length)
      throw VmrunError(ErrorCode::Internal, "device " + device->name() + " at " + hex(base) + " overlaps " + r.device->name());
  }
  ranges_.push_back({base, length, std::move(device)});
  std::sort(ranges_.begin(), ranges_.end(), [](const Range& a, const Range& b) { return a.base < b.base; });
}

const Bus::Range* Bus::find(uint64_t address, uint32_t size) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), address, [](uint64_t a, const Range& r) { return a < r.base; });
  if (it == ranges_.begin()) return nullptr;
  --it;
  // The whole access must fall inside the range (a guest can straddle two devices).
  if (address - it->base >= it->length || size > it->length - (address - it->base)) return nullptr;
  return &*it;
}

bool Bus::read(uint64_t address, uint8_t* data, uint32_t size) const {
  const Range* r = find(address, size);
  if (!r) return false;
  r->device->read(address - r->base, data, size);
  return true;
}

bool Bus::write(uint64_t address, const uint8_t* data, uint32_t size) const {
  const Range* r = find(address, size);
  if (!r) return false;
  r->device->write(address - r->base, data, size);
  return true;
}

std::vector<std::shared_ptr<Device>> Bus::devices() const {
  std::vector<std::shared_ptr<Device>> out;
  for (const auto& r : ranges_)
    if (std::find(out.begin(), out.end(), r.device) == out.end()) out.push_back(r.device);
  return out;
}

}  // namespace vmrun
