#include "devices/legacy/cmos_rtc_state.h"

#include "common/state_codec.h"

namespace vmrun {

namespace {
enum Field : uint32_t { kIndex = 1 };
}  // namespace

StateBlob encode_cmos_rtc_state(const CmosRtcState& s) {
  StateWriter w(CmosRtcState::kVersion);
  w.record(kIndex, s.index);
  return w.take();
}

CmosRtcState decode_cmos_rtc_state(const StateBlob& blob, const std::string& what) {
  StateReader r(blob, what, CmosRtcState::kVersion);
  CmosRtcState s;
  s.index = r.expect_obj<uint8_t>(kIndex);
  r.expect_end();
  if (s.index > 0x7F) throw VmrunError(ErrorCode::Snapshot, what + ": register index " + std::to_string(s.index) + " is out of range");
  return s;
}

}  // namespace vmrun
