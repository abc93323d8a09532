// vmrun native error: every failure the addon reports carries a code that the
// TypeScript side maps onto a VmrunError kind (src/errors.ts, nativeCodeToKind).
#pragma once
#include <stdexcept>
#include <string>

namespace vmrun {

enum class ErrorCode {
  Host,          // the host cannot do it: no /dev/kvm, permission, missing capability
  KernelFormat,  // the kernel file is not a format vmrun boots, or is truncated
  Usage,         // a bad argument (memory size, cpu count...)
  NotFound,      // a file that does not exist
  Guest,         // the guest did something the VMM cannot continue from
  Snapshot,      // a corrupt, truncated or incompatible snapshot
  Internal,      // a bug in vmrun
};

/** The one exception type the addon throws; binding/ turns it into a JS Error with `code`. */
class VmrunError : public std::runtime_error {
 public:
  VmrunError(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

inline const char* error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::Host: return "VMRUN_HOST";
    case ErrorCode::KernelFormat: return "VMRUN_KERNEL_FORMAT";
    case ErrorCode::Usage: return "VMRUN_USAGE";
    case ErrorCode::NotFound: return "VMRUN_NOT_FOUND";
    case ErrorCode::Guest: return "VMRUN_GUEST";
    case ErrorCode::Snapshot: return "VMRUN_SNAPSHOT";
    case ErrorCode::Internal: return "VMRUN_INTERNAL";
  }
  return "VMRUN_INTERNAL";
}

/** Formats errno as "what: strerror" for host-call failures. */
std::string errno_message(const std::string& what, int err);

}  // namespace vmrun
