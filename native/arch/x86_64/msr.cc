#include "arch/x86_64/msr.h"

namespace vmrun::x86 {

std::vector<std::pair<uint32_t, uint64_t>> boot_msrs() {
  constexpr uint64_t kMiscEnableFastStrings = 1;
  constexpr uint64_t kMtrrEnable = 1 << 11, kMtrrTypeWriteBack = 6;
  return {
      {kMsrSysenterCs, 0},  {kMsrSysenterEsp, 0}, {kMsrSysenterEip, 0},
      {kMsrStar, 0},        {kMsrCstar, 0},       {kMsrKernelGsBase, 0},
      {kMsrSyscallMask, 0}, {kMsrLstar, 0},       {kMsrTsc, 0},
      {kMsrMiscEnable, kMiscEnableFastStrings},
      {kMsrMtrrDefType, kMtrrEnable | kMtrrTypeWriteBack},
  };
}

bool msr_is_saved(uint32_t i) {
  switch (i) {
    case kMsrTsc: case kMsrApicBase: case kMsrTscAdjust: case kMsrSpecCtrl:
    case kMsrSysenterCs: case kMsrSysenterEsp: case kMsrSysenterEip:
    case kMsrMiscEnable: case kMsrTscDeadline: case kMsrIa32Xss:
    case kMsrEfer: case kMsrStar: case kMsrLstar: case kMsrCstar: case kMsrSyscallMask:
    case kMsrFsBase: case kMsrGsBase: case kMsrKernelGsBase: case kMsrTscAux:
    case 0x277:  // IA32_PAT
      return true;
    default:
      break;
  }
  if (i >= 0x200 && i <= 0x2FF) return true;                // MTRRs
  if (i >= 0x800 && i <= 0xBFF) return true;                // x2APIC
  if (i >= 0x4B564D00 && i <= 0x4B564DFF) return true;      // KVM paravirt (kvmclock, async PF...)
  if (i == 0x11 || i == 0x12) return true;                  // legacy kvmclock MSRs
  return false;
}

}  // namespace vmrun::x86
