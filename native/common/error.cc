#include "common/error.h"

#include <cstring>

namespace vmrun {

std::string errno_message(const std::string& what, int err) {
  return what + ": " + std::strerror(err);
}

}  // namespace vmrun
