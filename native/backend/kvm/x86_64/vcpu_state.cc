#include "backend/kvm/x86_64/vcpu_state.h"

#include "backend/kvm/kvm_uapi.h"

#include <algorithm>
#include <cstring>

#include "arch/x86_64/msr.h"
#include "backend/kvm/kvm_hypervisor.h"
#include "common/hex.h"
#include "common/state_codec.h"

namespace vmrun::kvm {

namespace {

constexpr uint32_t kVersion = 1;
enum Tag : uint32_t {
  kMpState = 1, kRegs, kSregs, kXsave, kXcrs, kDebugRegs, kLapic, kTscKhz, kCpuid, kMsrs, kVcpuEvents,
};
constexpr uint32_t kMaxCpuidEntries = 512;
constexpr uint32_t kMaxMsrs = 4096;
constexpr size_t kMsrChunk = 64;

size_t xsave_size(KvmHypervisor& h) {
  int size = h.check_extension(KVM_CAP_XSAVE2);
  return size > static_cast<int>(sizeof(kvm_xsave)) ? static_cast<size_t>(size) : sizeof(kvm_xsave);
}

std::vector<uint8_t> get_cpuid(int fd) {
  for (uint32_t n = 64; n <= kMaxCpuidEntries; n *= 2) {
    std::vector<uint8_t> buf(sizeof(kvm_cpuid2) + n * sizeof(kvm_cpuid_entry2));
    auto* c = reinterpret_cast<kvm_cpuid2*>(buf.data());
    c->nent = n;
    if (::ioctl(fd, KVM_GET_CPUID2, c) == 0) {
      buf.resize(sizeof(kvm_cpuid2) + c->nent * sizeof(kvm_cpuid_entry2));
      return buf;
    }
    if (errno != E2BIG) throw VmrunError(ErrorCode::Host, errno_message("KVM_GET_CPUID2 failed", errno));
  }
  throw VmrunError(ErrorCode::Host, "KVM_GET_CPUID2: too many entries");
}

std::vector<kvm_msr_entry> get_msrs(KvmHypervisor& h, int fd) {
  std::vector<uint32_t> wanted;
  for (uint32_t i : h.msr_index_list())
    if (vmrun::x86::msr_is_saved(i)) wanted.push_back(i);
  std::vector<kvm_msr_entry> out;
  // KVM_GET_MSRS stops at the first MSR it cannot read: read in chunks and step over
  // each refused one, so one unsupported MSR does not lose the rest.
  size_t next = 0;
  while (next < wanted.size()) {
    size_t n = std::min(kMsrChunk, wanted.size() - next);
    std::vector<uint8_t> buf(sizeof(kvm_msrs) + n * sizeof(kvm_msr_entry));
    auto* m = reinterpret_cast<kvm_msrs*>(buf.data());
    m->nmsrs = static_cast<uint32_t>(n);
    for (size_t i = 0; i < n; i++) m->entries[i].index = wanted[next + i];
    int got = checked_ioctl(fd, KVM_GET_MSRS, m, "GET_MSRS");
    out.insert(out.end(), m->entries, m->entries + got);
    next += static_cast<size_t>(got) + (static_cast<size_t>(got) < n ? 1 : 0);
  }
  return out;
}

void set_msrs(int fd, const std::vector<kvm_msr_entry>& entries) {
  for (size_t next = 0; next < entries.size(); next += kMsrChunk) {
    size_t n = std::min(kMsrChunk, entries.size() - next);
    std::vector<uint8_t> buf(sizeof(kvm_msrs) + n * sizeof(kvm_msr_entry));
    auto* m = reinterpret_cast<kvm_msrs*>(buf.data());
    m->nmsrs = static_cast<uint32_t>(n);
    std::copy(entries.begin() + next, entries.begin() + next + n, m->entries);
    int done = checked_ioctl(fd, KVM_SET_MSRS, m, "SET_MSRS");
    if (static_cast<size_t>(done) != n)
      throw VmrunError(ErrorCode::Snapshot, "this host's KVM refused MSR " + hex(m->entries[done].index) + " from the snapshot");
  }
}

}  // namespace

StateBlob save_vcpu_state(KvmHypervisor& h, int fd) {
  StateWriter w(kVersion);
  // MP_STATE first: KVM_GET_MP_STATE runs kvm_apic_accept_events, settling INIT/SIPI.
  kvm_mp_state mp{};
  checked_ioctl(fd, KVM_GET_MP_STATE, &mp, "GET_MP_STATE");
  w.record(kMpState, mp);
  kvm_regs regs{};
  checked_ioctl(fd, KVM_GET_REGS, &regs, "GET_REGS");
  w.record(kRegs, regs);
  kvm_sregs sregs{};
  checked_ioctl(fd, KVM_GET_SREGS, &sregs, "GET_SREGS");
  w.record(kSregs, sregs);
  std::vector<uint8_t> xsave(xsave_size(h));
  if (xsave.size() > sizeof(kvm_xsave))
    checked_ioctl(fd, KVM_GET_XSAVE2, xsave.data(), "GET_XSAVE2");
  else
    checked_ioctl(fd, KVM_GET_XSAVE, xsave.data(), "GET_XSAVE");
  w.record(kXsave, xsave.data(), xsave.size());
  kvm_xcrs xcrs{};
  if (h.check_extension(KVM_CAP_XCRS)) checked_ioctl(fd, KVM_GET_XCRS, &xcrs, "GET_XCRS");
  w.record(kXcrs, xcrs);
  kvm_debugregs debug{};
  checked_ioctl(fd, KVM_GET_DEBUGREGS, &debug, "GET_DEBUGREGS");
  w.record(kDebugRegs, debug);
  kvm_lapic_state lapic{};
  checked_ioctl(fd, KVM_GET_LAPIC, &lapic, "GET_LAPIC");
  w.record(kLapic, lapic);
  int khz = ::ioctl(fd, KVM_GET_TSC_KHZ, 0);
  uint32_t tsc_khz = khz > 0 ? static_cast<uint32_t>(khz) : 0;
  w.record(kTscKhz, tsc_khz);
  auto cpuid = get_cpuid(fd);
  w.record(kCpuid, cpuid.data(), cpuid.size());
  auto msrs = get_msrs(h, fd);
  w.record(kMsrs, msrs.data(), msrs.size() * sizeof(kvm_msr_entry));
  // Events last: the steps above may have queued an event.
  kvm_vcpu_events events{};
  checked_ioctl(fd, KVM_GET_VCPU_EVENTS, &events, "GET_VCPU_EVENTS");
  w.record(kVcpuEvents, events);
  return w.take();
}

void restore_vcpu_state(KvmHypervisor& h, int fd, const StateBlob& blob) {
  StateReader r(blob, "vCPU state", kVersion);
  auto mp = r.expect_obj<kvm_mp_state>(kMpState);
  auto regs = r.expect_obj<kvm_regs>(kRegs);
  auto sregs = r.expect_obj<kvm_sregs>(kSregs);
  size_t xsave_len;
  const uint8_t* xsave_p = r.expect(kXsave, &xsave_len);
  auto xcrs = r.expect_obj<kvm_xcrs>(kXcrs);
  auto debug = r.expect_obj<kvm_debugregs>(kDebugRegs);
  auto lapic = r.expect_obj<kvm_lapic_state>(kLapic);
  auto tsc_khz = r.expect_obj<uint32_t>(kTscKhz);
  size_t cpuid_len;
  const uint8_t* cpuid_p = r.expect(kCpuid, &cpuid_len);
  size_t msrs_len;
  const uint8_t* msrs_p = r.expect(kMsrs, &msrs_len);
  auto events = r.expect_obj<kvm_vcpu_events>(kVcpuEvents);

  // Validate sizes before any ioctl: nothing is applied from a malformed blob.
  if (xsave_len != xsave_size(h) && !(xsave_len == sizeof(kvm_xsave) && xsave_size(h) >= xsave_len))
    throw VmrunError(ErrorCode::Snapshot, "the snapshot's XSAVE area (" + std::to_string(xsave_len) + " bytes) does not fit this host's (" + std::to_string(xsave_size(h)) + ")");
  if (cpuid_len < sizeof(kvm_cpuid2)) throw VmrunError(ErrorCode::Snapshot, "vCPU state: CPUID record truncated");
  kvm_cpuid2 cpuid_head;
  std::memcpy(&cpuid_head, cpuid_p, sizeof cpuid_head);
  if (cpuid_head.nent > kMaxCpuidEntries || cpuid_len != sizeof(kvm_cpuid2) + cpuid_head.nent * sizeof(kvm_cpuid_entry2))
    throw VmrunError(ErrorCode::Snapshot, "vCPU state: CPUID record has a bad entry count");
  if (msrs_len % sizeof(kvm_msr_entry) != 0 || msrs_len / sizeof(kvm_msr_entry) > kMaxMsrs)
    throw VmrunError(ErrorCode::Snapshot, "vCPU state: MSR record has a bad length");
  (void)tsc_khz;  // compared against the host by the caller before restore

  std::vector<uint8_t> cpuid(cpuid_p, cpuid_p + cpuid_len);
  checked_ioctl(fd, KVM_SET_CPUID2, cpuid.data(), "SET_CPUID2");
  checked_ioctl(fd, KVM_SET_MP_STATE, &mp, "SET_MP_STATE");
  // REGS before VCPU_EVENTS (SET_REGS clears pending exceptions); SREGS restores the
  // APIC base, so before LAPIC; LAPIC before MSRs, or TSC_DEADLINE is lost.
  checked_ioctl(fd, KVM_SET_REGS, &regs, "SET_REGS");
  checked_ioctl(fd, KVM_SET_SREGS, &sregs, "SET_SREGS");
  std::vector<uint8_t> xsave(std::max(xsave_len, sizeof(kvm_xsave)));
  std::memcpy(xsave.data(), xsave_p, xsave_len);
  checked_ioctl(fd, KVM_SET_XSAVE, xsave.data(), "SET_XSAVE");
  if (h.check_extension(KVM_CAP_XCRS)) checked_ioctl(fd, KVM_SET_XCRS, &xcrs, "SET_XCRS");
  checked_ioctl(fd, KVM_SET_DEBUGREGS, &debug, "SET_DEBUGREGS");
  checked_ioctl(fd, KVM_SET_LAPIC, &lapic, "SET_LAPIC");

  std::vector<kvm_msr_entry> msrs(msrs_len / sizeof(kvm_msr_entry));
  std::memcpy(msrs.data(), msrs_p, msrs_len);
  // TSC_DEADLINE goes last, after TSC; a deadline of 0 would lose the pending timer
  // interrupt, so it is written as the TSC value instead (fires at once).
  uint64_t tsc = 0;
  for (const auto& m : msrs)
    if (m.index == vmrun::x86::kMsrTsc) tsc = m.data;
  std::vector<kvm_msr_entry> deadline;
  for (auto it = msrs.begin(); it != msrs.end();) {
    if (it->index == vmrun::x86::kMsrTscDeadline) {
      deadline.push_back(*it);
      if (deadline.back().data == 0) deadline.back().data = tsc;
      it = msrs.erase(it);
    } else {
      ++it;
    }
  }
  set_msrs(fd, msrs);
  set_msrs(fd, deadline);
  checked_ioctl(fd, KVM_SET_VCPU_EVENTS, &events, "SET_VCPU_EVENTS");
  // Tell the guest's kvmclock it was paused, so it does not report soft lockups.
  if (h.check_extension(KVM_CAP_KVMCLOCK_CTRL)) ::ioctl(fd, KVM_KVMCLOCK_CTRL, 0);
}

}  // namespace vmrun::kvm

namespace vmrun::kvm {

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
const kvm_cpuid_entry2* find(const kvm_cpuid_entry2* entries, size_t n, uint32_t function, uint32_t index) {
  for (size_t i = 0; i < n; i++)
    if (entries[i].function == function && (!(entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || entries[i].index == index)) return &entries[i];
  return nullptr;
}
}  // namespace

std::vector<kvm_cpuid_entry2> current_cpuid(int fd) {
  auto buf = get_cpuid(fd);
  kvm_cpuid2 head;
  std::memcpy(&head, buf.data(), sizeof head);
  std::vector<kvm_cpuid_entry2> out(head.nent);
  std::memcpy(out.data(), buf.data() + sizeof head, head.nent * sizeof(kvm_cpuid_entry2));
  return out;
}

void check_cpuid_compatible(const std::vector<kvm_cpuid_entry2>& supported, const StateBlob& blob) {
  StateReader r(blob, "vCPU state", kVersion);
  size_t len;
  for (uint32_t tag : {kMpState, kRegs, kSregs, kXsave, kXcrs, kDebugRegs, kLapic, kTscKhz}) r.expect(tag, &len);
  const uint8_t* p = r.expect(kCpuid, &len);
  kvm_cpuid2 head;
  if (len < sizeof head) throw VmrunError(ErrorCode::Snapshot, "vCPU state: CPUID record truncated");
  std::memcpy(&head, p, sizeof head);
  if (head.nent > kMaxCpuidEntries || len != sizeof(kvm_cpuid2) + head.nent * sizeof(kvm_cpuid_entry2))
    throw VmrunError(ErrorCode::Snapshot, "vCPU state: CPUID record has a bad entry count");
  std::vector<kvm_cpuid_entry2> saved(head.nent);
  std::memcpy(saved.data(), p + sizeof head, head.nent * sizeof(kvm_cpuid_entry2));
  for (const auto& w : kFeatureWords) {
    const auto* s = find(saved.data(), saved.size(), w.function, w.index);
    if (!s) continue;
    const auto* h = find(supported.data(), supported.size(), w.function, w.index);
    uint32_t missing = reg_of(*s, w.reg) & ~(h ? reg_of(*h, w.reg) : 0) & ~w.ignore;
    if (missing)
      throw VmrunError(ErrorCode::Snapshot, std::string("the snapshot was taken on a CPU with features this host lacks (") + w.name + " bits " + hex(missing) + "): restore it on a compatible host");
  }
}

}  // namespace vmrun::kvm
