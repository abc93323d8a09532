#include "devices/legacy/exit_port.h"

#include <cstring>

namespace vmrun {

void ExitPort::read(uint64_t offset, uint8_t* data, uint32_t size) { std::memset(data, 0xFF, size); }

void ExitPort::write(uint64_t offset, const uint8_t* data, uint32_t size) {
  if (offset != 0) return;
  uint32_t value = 0;
  std::memcpy(&value, data, size > 4 ? 4 : size);
  StopRequest r;
  r.kind = StopRequest::Kind::ExitCode;
  r.exit_code = static_cast<int>(value & 0xFF);
  r.detail = "the guest exited with status " + std::to_string(r.exit_code);
  control_->request_stop(r);
}

}  // namespace vmrun
