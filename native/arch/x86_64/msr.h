// x86_64 model-specific registers vmrun sets at boot and keeps in snapshots.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace vmrun::x86 {

constexpr uint32_t kMsrTsc = 0x10;
constexpr uint32_t kMsrApicBase = 0x1B;
constexpr uint32_t kMsrTscAdjust = 0x3B;
constexpr uint32_t kMsrSpecCtrl = 0x48;
constexpr uint32_t kMsrSysenterCs = 0x174;
constexpr uint32_t kMsrSysenterEsp = 0x175;
constexpr uint32_t kMsrSysenterEip = 0x176;
constexpr uint32_t kMsrMiscEnable = 0x1A0;
constexpr uint32_t kMsrMtrrDefType = 0x2FF;
constexpr uint32_t kMsrTscDeadline = 0x6E0;
constexpr uint32_t kMsrIa32Xss = 0xDA0;
constexpr uint32_t kMsrEfer = 0xC0000080;
constexpr uint32_t kMsrStar = 0xC0000081;
constexpr uint32_t kMsrLstar = 0xC0000082;
constexpr uint32_t kMsrCstar = 0xC0000083;
constexpr uint32_t kMsrSyscallMask = 0xC0000084;
constexpr uint32_t kMsrFsBase = 0xC0000100;
constexpr uint32_t kMsrGsBase = 0xC0000101;
constexpr uint32_t kMsrKernelGsBase = 0xC0000102;
constexpr uint32_t kMsrTscAux = 0xC0000103;

/** MSR values a vCPU starts with (fast strings on, MTRRs enabled write-back). */
std::vector<std::pair<uint32_t, uint64_t>> boot_msrs();

/**
 * Whether a snapshot keeps this MSR (Firecracker's allowlist: the architectural ones
 * a guest relies on, MTRRs, x2APIC, and the KVM paravirt range).
 */
bool msr_is_saved(uint32_t index);

}  // namespace vmrun::x86
