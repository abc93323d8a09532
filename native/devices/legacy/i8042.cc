#include "devices/legacy/i8042.h"

#include <cstring>

namespace vmrun {

static constexpr uint64_t kCommandPort = 4;
static constexpr uint8_t kCommandCpuReset = 0xFE;

void I8042::read(uint64_t offset, uint8_t* data, uint32_t size) {
  // Status 0: output buffer empty, input buffer empty. Data reads return 0.
  std::memset(data, 0, size);
}

void I8042::write(uint64_t offset, const uint8_t* data, uint32_t size) {
  if (offset == kCommandPort && size >= 1 && data[0] == kCommandCpuReset) {
    StopRequest r;
    r.kind = StopRequest::Kind::Reset;
    r.detail = "the guest reset the machine through the i8042 controller";
    control_->request_stop(r);
  }
}

}  // namespace vmrun
