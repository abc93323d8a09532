// What the CMOS RTC saves in a snapshot: the register index the guest selected. The
// time itself is not state: it is read from the host clock at every access.
#pragma once
#include <cstdint>
#include <string>

#include "devices/device.h"

namespace vmrun {

struct CmosRtcState {
  /** 1: one record per field. (Before it: a single unversioned byte, refused.) */
  static constexpr uint32_t kVersion = 1;
  uint8_t index = 0;  // register selected through port 0x70, NMI-mask bit removed
};

StateBlob encode_cmos_rtc_state(const CmosRtcState& state);
/** Throws VmrunError(Snapshot) naming `what` for a blob that is not a version-1 CMOS state. */
CmosRtcState decode_cmos_rtc_state(const StateBlob& blob, const std::string& what);

}  // namespace vmrun
