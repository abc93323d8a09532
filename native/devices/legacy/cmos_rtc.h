// The CMOS RTC at ports 0x70/0x71: wall-clock time in BCD, the status registers a
// kernel checks before trusting it, and the memory-size bytes firmware would fill.
#pragma once
#include <mutex>

#include "devices/device.h"
#include "devices/legacy/cmos_rtc_state.h"

namespace vmrun {

class CmosRtc : public Device {
 public:
  explicit CmosRtc(uint64_t ram_size) : ram_size_(ram_size) {}
  std::string name() const override { return "cmos"; }
  void read(uint64_t offset, uint8_t* data, uint32_t size) override;
  void write(uint64_t offset, const uint8_t* data, uint32_t size) override;
  StateBlob save() override;
  void restore(const StateBlob& state) override;

 private:
  uint8_t register_value(uint8_t index) const;
  uint64_t ram_size_;
  std::mutex mu_;
  CmosRtcState s_;
};

}  // namespace vmrun
