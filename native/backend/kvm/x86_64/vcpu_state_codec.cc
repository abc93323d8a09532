#include "backend/kvm/x86_64/vcpu_state_codec.h"

#include <cstring>

#include "common/hex.h"
#include "common/state_codec.h"

namespace vmrun::kvm {

namespace {

enum Field : uint32_t {
  kMpState = 1, kRegs, kSregs, kXsave, kXcrs, kDebugRegs, kLapic, kTscKhz, kCpuid, kMsrs, kVcpuEvents,
};
constexpr const char* kWhat = "vCPU state";

[[noreturn]] void bad(const std::string& what) { throw VmrunError(ErrorCode::Snapshot, std::string(kWhat) + ": " + what); }

}  // namespace

StateBlob encode_vcpu_state(const VcpuState& s) {
  StateWriter w(VcpuState::kVersion);
  w.record(kMpState, s.mp_state);
  w.record(kRegs, s.regs);
  w.record(kSregs, s.sregs);
  w.record(kXsave, s.xsave);
  w.record(kXcrs, s.xcrs);
  w.record(kDebugRegs, s.debugregs);
  w.record(kLapic, s.lapic);
  w.record(kTscKhz, s.tsc_khz);
  // CPUID as KVM_GET_CPUID2 returns it: the kvm_cpuid2 head, then the entries.
  std::vector<uint8_t> cpuid(sizeof(kvm_cpuid2) + s.cpuid.size() * sizeof(kvm_cpuid_entry2));
  kvm_cpuid2 head{};
  head.nent = static_cast<uint32_t>(s.cpuid.size());
  std::memcpy(cpuid.data(), &head, sizeof head);
  if (!s.cpuid.empty()) std::memcpy(cpuid.data() + sizeof head, s.cpuid.data(), s.cpuid.size() * sizeof(kvm_cpuid_entry2));
  w.record(kCpuid, cpuid);
  w.record(kMsrs, s.msrs.data(), s.msrs.size() * sizeof(kvm_msr_entry));
  w.record(kVcpuEvents, s.events);
  return w.take();
}

VcpuState decode_vcpu_state(const StateBlob& blob) {
  StateReader r(blob, kWhat, VcpuState::kVersion);
  VcpuState s;
  s.mp_state = r.expect_obj<kvm_mp_state>(kMpState);
  s.regs = r.expect_obj<kvm_regs>(kRegs);
  s.sregs = r.expect_obj<kvm_sregs>(kSregs);
  s.xsave = r.expect_bytes(kXsave, VcpuState::kMaxXsaveBytes);
  if (s.xsave.size() < sizeof(kvm_xsave)) bad("the XSAVE record is shorter than KVM's 4 KiB area");
  s.xcrs = r.expect_obj<kvm_xcrs>(kXcrs);
  s.debugregs = r.expect_obj<kvm_debugregs>(kDebugRegs);
  s.lapic = r.expect_obj<kvm_lapic_state>(kLapic);
  s.tsc_khz = r.expect_obj<uint32_t>(kTscKhz);
  size_t len;
  const uint8_t* p = r.expect(kCpuid, &len);
  kvm_cpuid2 head;
  if (len < sizeof head) bad("CPUID record truncated");
  std::memcpy(&head, p, sizeof head);
  if (head.nent > VcpuState::kMaxCpuidEntries || len != sizeof(kvm_cpuid2) + head.nent * sizeof(kvm_cpuid_entry2))
    bad("CPUID record has a bad entry count");
  s.cpuid.resize(head.nent);
  if (head.nent) std::memcpy(s.cpuid.data(), p + sizeof head, head.nent * sizeof(kvm_cpuid_entry2));
  p = r.expect(kMsrs, &len);
  if (len % sizeof(kvm_msr_entry) != 0 || len / sizeof(kvm_msr_entry) > VcpuState::kMaxMsrs) bad("MSR record has a bad length");
  s.msrs.resize(len / sizeof(kvm_msr_entry));
  if (len) std::memcpy(s.msrs.data(), p, len);
  s.events = r.expect_obj<kvm_vcpu_events>(kVcpuEvents);
  r.expect_end();
  return s;
}

namespace {
struct FeatureWord {
  uint32_t function, index;
  int reg;  // 0 eax, 1 ebx, 2 ecx, 3 edx
  uint32_t ignore;  // bits vmrun or KVM set per vCPU at run time, not host features
  const char* name;
};
// The feature words a guest kernel keys its code paths on. Bits vmrun sets itself
// (hypervisor, HTT) and OSXSAVE (mirrors the guest's CR4) are not host features.
const FeatureWord kFeatureWords[] = {
    {1, 0, 2, (1u << 31) | (1u << 27), "CPUID.1:ECX"},
    {1, 0, 3, 1u << 28, "CPUID.1:EDX"},
    {7, 0, 1, 0, "CPUID.7.0:EBX"},
    {7, 0, 2, 1u << 4, "CPUID.7.0:ECX"},  // OSPKE (bit 4) mirrors the guest's CR4.PKE
    {7, 0, 3, 0, "CPUID.7.0:EDX"},
    {0xD, 1, 0, 0, "CPUID.0xD.1:EAX"},
    {0x80000001, 0, 2, 0, "CPUID.0x80000001:ECX"},
    {0x80000001, 0, 3, 0, "CPUID.0x80000001:EDX"},
};
uint32_t reg_of(const kvm_cpuid_entry2& e, int reg) { return reg == 0 ? e.eax : reg == 1 ? e.ebx : reg == 2 ? e.ecx : e.edx; }
const kvm_cpuid_entry2* find(const std::vector<kvm_cpuid_entry2>& entries, uint32_t function, uint32_t index) {
  for (const auto& e : entries)
    if (e.function == function && (!(e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e.index == index)) return &e;
  return nullptr;
}
}  // namespace

void check_cpuid_compatible(const std::vector<kvm_cpuid_entry2>& supported, const VcpuState& saved) {
  for (const auto& w : kFeatureWords) {
    const auto* s = find(saved.cpuid, w.function, w.index);
    if (!s) continue;
    const auto* h = find(supported, w.function, w.index);
    uint32_t missing = reg_of(*s, w.reg) & ~(h ? reg_of(*h, w.reg) : 0) & ~w.ignore;
    if (missing)
      throw VmrunError(ErrorCode::Snapshot, std::string("the snapshot was taken on a CPU with features this host lacks (") + w.name + " bits " + hex(missing) + "): restore it on a compatible host");
  }
}

TscPlan plan_tsc(uint32_t saved_khz, uint32_t host_khz, bool tsc_control) {
  if (saved_khz == 0 || host_khz == 0) return TscPlan::Keep;
  uint64_t diff = saved_khz > host_khz ? saved_khz - host_khz : host_khz - saved_khz;
  if (diff * 1'000'000 <= static_cast<uint64_t>(saved_khz) * kTscTolerancePpM) return TscPlan::Keep;
  if (tsc_control) return TscPlan::Scale;
  throw VmrunError(ErrorCode::Snapshot, "the snapshot's TSC ran at " + std::to_string(saved_khz) + " kHz and this host's runs at " + std::to_string(host_khz) +
                                            " kHz (more than " + std::to_string(kTscTolerancePpM) +
                                            " ppm apart), and this host's KVM cannot scale a guest's TSC (no KVM_CAP_TSC_CONTROL): restore it on a host with the same TSC frequency");
}

}  // namespace vmrun::kvm
