#include "backend/kvm/x86_64/vcpu_state.h"

#include "backend/kvm/kvm_uapi.h"

#include <algorithm>
#include <cstring>

#include "arch/x86_64/msr.h"
#include "backend/kvm/kvm_hypervisor.h"
#include "backend/kvm/x86_64/cpuid.h"
#include "common/hex.h"

namespace vmrun::kvm {

namespace {

constexpr size_t kMsrChunk = 64;

size_t xsave_size(KvmHypervisor& h) {
  int size = h.check_extension(KVM_CAP_XSAVE2);
  return size > static_cast<int>(sizeof(kvm_xsave)) ? static_cast<size_t>(size) : sizeof(kvm_xsave);
}

std::vector<uint8_t> get_cpuid(int fd) {
  for (uint32_t n = 64; n <= VcpuState::kMaxCpuidEntries; n *= 2) {
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

std::vector<kvm_cpuid_entry2> entries_of(const std::vector<uint8_t>& buf) {
  kvm_cpuid2 head;
  std::memcpy(&head, buf.data(), sizeof head);
  std::vector<kvm_cpuid_entry2> out(head.nent);
  std::memcpy(out.data(), buf.data() + sizeof head, head.nent * sizeof(kvm_cpuid_entry2));
  return out;
}

}  // namespace

std::vector<kvm_cpuid_entry2> current_cpuid(int fd) { return entries_of(get_cpuid(fd)); }

VcpuState capture_vcpu_state(KvmHypervisor& h, int fd) {
  VcpuState s;
  // MP_STATE first: KVM_GET_MP_STATE runs kvm_apic_accept_events, settling INIT/SIPI.
  checked_ioctl(fd, KVM_GET_MP_STATE, &s.mp_state, "GET_MP_STATE");
  checked_ioctl(fd, KVM_GET_REGS, &s.regs, "GET_REGS");
  checked_ioctl(fd, KVM_GET_SREGS, &s.sregs, "GET_SREGS");
  s.xsave.resize(xsave_size(h));
  if (s.xsave.size() > sizeof(kvm_xsave))
    checked_ioctl(fd, KVM_GET_XSAVE2, s.xsave.data(), "GET_XSAVE2");
  else
    checked_ioctl(fd, KVM_GET_XSAVE, s.xsave.data(), "GET_XSAVE");
  if (h.check_extension(KVM_CAP_XCRS)) checked_ioctl(fd, KVM_GET_XCRS, &s.xcrs, "GET_XCRS");
  checked_ioctl(fd, KVM_GET_DEBUGREGS, &s.debugregs, "GET_DEBUGREGS");
  checked_ioctl(fd, KVM_GET_LAPIC, &s.lapic, "GET_LAPIC");
  int khz = ::ioctl(fd, KVM_GET_TSC_KHZ, 0);
  s.tsc_khz = khz > 0 ? static_cast<uint32_t>(khz) : 0;
  s.cpuid = entries_of(get_cpuid(fd));
  s.msrs = get_msrs(h, fd);
  // Events last: the steps above may have queued an event.
  checked_ioctl(fd, KVM_GET_VCPU_EVENTS, &s.events, "GET_VCPU_EVENTS");
  return s;
}

std::unique_ptr<KvmLoadedVcpuState> load_vcpu_state(KvmHypervisor& h, int fd, const StateBlob& blob) {
  auto loaded = std::make_unique<KvmLoadedVcpuState>();
  loaded->state = decode_vcpu_state(blob);
  const VcpuState& s = loaded->state;
  size_t host_xsave = xsave_size(h);
  if (s.xsave.size() != host_xsave && !(s.xsave.size() == sizeof(kvm_xsave) && host_xsave >= s.xsave.size()))
    throw VmrunError(ErrorCode::Snapshot, "the snapshot's XSAVE area (" + std::to_string(s.xsave.size()) + " bytes) does not fit this host's (" + std::to_string(host_xsave) + ")");
  check_cpuid_compatible(current_cpuid(fd), s);
  // A fresh vCPU runs its TSC at the host's frequency (or the VM's default).
  int host_khz = ::ioctl(fd, KVM_GET_TSC_KHZ, 0);
  loaded->tsc = plan_tsc(s.tsc_khz, host_khz > 0 ? static_cast<uint32_t>(host_khz) : 0, h.check_extension(KVM_CAP_TSC_CONTROL) > 0);
  return loaded;
}

void apply_vcpu_state(KvmHypervisor& h, int fd, const KvmLoadedVcpuState& loaded) {
  const VcpuState& s = loaded.state;
  // The TSC frequency before anything that reads or writes the TSC (MSRs below).
  if (loaded.tsc == TscPlan::Scale) checked_ioctl(fd, KVM_SET_TSC_KHZ, static_cast<unsigned long>(s.tsc_khz), "SET_TSC_KHZ");
  std::vector<uint8_t> cpuid(sizeof(kvm_cpuid2) + s.cpuid.size() * sizeof(kvm_cpuid_entry2));
  reinterpret_cast<kvm_cpuid2*>(cpuid.data())->nent = static_cast<uint32_t>(s.cpuid.size());
  std::memcpy(cpuid.data() + sizeof(kvm_cpuid2), s.cpuid.data(), s.cpuid.size() * sizeof(kvm_cpuid_entry2));
  checked_ioctl(fd, KVM_SET_CPUID2, cpuid.data(), "SET_CPUID2");
  kvm_mp_state mp = s.mp_state;
  checked_ioctl(fd, KVM_SET_MP_STATE, &mp, "SET_MP_STATE");
  // REGS before VCPU_EVENTS (SET_REGS clears pending exceptions); SREGS restores the
  // APIC base, so before LAPIC; LAPIC before MSRs, or TSC_DEADLINE is lost.
  kvm_regs regs = s.regs;
  checked_ioctl(fd, KVM_SET_REGS, &regs, "SET_REGS");
  kvm_sregs sregs = s.sregs;
  // On AMD, KVM reports TR as a busy TSS (type 11) because the VMCB does not keep the
  // busy bit (svm_get_segment), and writes that back as is. SVM ignores TR's type, but
  // QEMU's TCG, under which the test harness's KVM runs, refuses every user-space port
  // access through the TSS I/O bitmap unless the cached type is 9 (an LTR caches 9): a
  // restored guest's ioperm()+outb then faults. So a restore caches what LTR would.
  // VMX, whose entry checks demand type 11 in long mode, keeps it.
  if (host_uses_svm() && sregs.tr.type == 11) sregs.tr.type = 9;
  checked_ioctl(fd, KVM_SET_SREGS, &sregs, "SET_SREGS");
  std::vector<uint8_t> xsave(std::max(s.xsave.size(), sizeof(kvm_xsave)));
  std::memcpy(xsave.data(), s.xsave.data(), s.xsave.size());
  checked_ioctl(fd, KVM_SET_XSAVE, xsave.data(), "SET_XSAVE");
  kvm_xcrs xcrs = s.xcrs;
  if (h.check_extension(KVM_CAP_XCRS)) checked_ioctl(fd, KVM_SET_XCRS, &xcrs, "SET_XCRS");
  kvm_debugregs debug = s.debugregs;
  checked_ioctl(fd, KVM_SET_DEBUGREGS, &debug, "SET_DEBUGREGS");
  kvm_lapic_state lapic = s.lapic;
  checked_ioctl(fd, KVM_SET_LAPIC, &lapic, "SET_LAPIC");

  // TSC_DEADLINE goes last, after TSC; a deadline of 0 would lose the pending timer
  // interrupt, so it is written as the TSC value instead (fires at once).
  std::vector<kvm_msr_entry> msrs = s.msrs;
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
  kvm_vcpu_events events = s.events;
  checked_ioctl(fd, KVM_SET_VCPU_EVENTS, &events, "SET_VCPU_EVENTS");
  // Tell the guest's kvmclock it was paused, so it does not report soft lockups.
  if (h.check_extension(KVM_CAP_KVMCLOCK_CTRL)) ::ioctl(fd, KVM_KVMCLOCK_CTRL, 0);
}

}  // namespace vmrun::kvm
