#include "devices/legacy/cmos_rtc.h"

#include <cstring>
#include <ctime>


namespace vmrun {

static uint8_t bcd(int v) { return static_cast<uint8_t>(((v / 10) << 4) | (v % 10)); }

uint8_t CmosRtc::register_value(uint8_t index) const {
  std::time_t now = std::time(nullptr);
  std::tm t{};
  gmtime_r(&now, &t);
  uint64_t above_16m = ram_size_ > (16ULL << 20) ? (ram_size_ - (16ULL << 20)) >> 16 : 0;
  if (above_16m > 0xFFFF) above_16m = 0xFFFF;
  switch (index) {
    case 0x00: return bcd(t.tm_sec);
    case 0x02: return bcd(t.tm_min);
    case 0x04: return bcd(t.tm_hour);
    case 0x06: return bcd(t.tm_wday + 1);
    case 0x07: return bcd(t.tm_mday);
    case 0x08: return bcd(t.tm_mon + 1);
    case 0x09: return bcd(t.tm_year % 100);
    case 0x32: return bcd(19 + t.tm_year / 100);
    case 0x0A: return 0x26;  // divider on, 1024 Hz, no update in progress
    case 0x0B: return 0x02;  // 24-hour mode, BCD
    case 0x0C: return 0x00;
    case 0x0D: return 0x80;  // valid RAM and time (battery good)
    case 0x34: return static_cast<uint8_t>(above_16m & 0xFF);
    case 0x35: return static_cast<uint8_t>(above_16m >> 8);
    default: return 0x00;
  }
}

void CmosRtc::read(uint64_t offset, uint8_t* data, uint32_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  std::memset(data, 0xFF, size);
  if (size >= 1) data[0] = offset == 0 ? s_.index : register_value(s_.index);
}

void CmosRtc::write(uint64_t offset, const uint8_t* data, uint32_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (offset == 0 && size >= 1) s_.index = data[0] & 0x7F;  // bit 7 is the NMI mask
}

StateBlob CmosRtc::save() {
  std::lock_guard<std::mutex> lock(mu_);
  return encode_cmos_rtc_state(s_);
}

void CmosRtc::restore(const StateBlob& blob) {
  CmosRtcState restored = decode_cmos_rtc_state(blob, "cmos state");
  std::lock_guard<std::mutex> lock(mu_);
  s_ = restored;
}

}  // namespace vmrun
