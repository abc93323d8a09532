#include "backend/kvm/aarch64/vcpu_state_codec.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "common/hex.h"
#include "common/state_codec.h"

namespace vmrun::kvm::arm64 {

namespace {

enum Field : uint32_t {
  kMpState = 1,
  kRegisterIds,
  kRegisterValues,
  kTimerCtlField,
  kTimerCvalField,
  kTimerCountField,
  kSerrorPending,
  kSerrorHasEsr,
  kExtDabtPending,
  kSerrorEsr,
};

[[noreturn]] void bad(const std::string& what, const std::string& why) { throw VmrunError(ErrorCode::Snapshot, what + ": " + why); }

}  // namespace

std::string describe_register(uint64_t id) {
  struct Name {
    uint64_t id;
    const char* name;
  };
  static const Name kNames[] = {
      {kMpidr, "MPIDR_EL1"},          {sys_reg(3, 0, 0, 0, 0), "MIDR_EL1"},       {sys_reg(3, 0, 0, 0, 6), "REVIDR_EL1"},
      {sys_reg(3, 0, 0, 4, 0), "ID_AA64PFR0_EL1"}, {sys_reg(3, 0, 0, 4, 1), "ID_AA64PFR1_EL1"}, {sys_reg(3, 0, 0, 6, 0), "ID_AA64ISAR0_EL1"},
      {sys_reg(3, 0, 0, 6, 1), "ID_AA64ISAR1_EL1"}, {sys_reg(3, 0, 0, 7, 0), "ID_AA64MMFR0_EL1"}, {sys_reg(3, 0, 0, 7, 1), "ID_AA64MMFR1_EL1"},
      {sys_reg(3, 0, 0, 7, 2), "ID_AA64MMFR2_EL1"}, {sys_reg(3, 0, 0, 5, 0), "ID_AA64DFR0_EL1"}, {kTimerCtl, "CNTV_CTL_EL0"},
      {kTimerCval, "CNTV_CVAL_EL0"}, {kTimerCnt, "CNTVCT_EL0"},
  };
  for (const auto& n : kNames)
    if (n.id == id) return hex(id) + " (" + n.name + ")";
  return hex(id);
}

StateBlob encode_vcpu_state(const VcpuState& s) {
  StateWriter w(VcpuState::kVersion);
  w.record(kMpState, s.mp_state);
  std::vector<uint8_t> ids(s.registers.size() * sizeof(uint64_t)), values;
  for (size_t i = 0; i < s.registers.size(); i++) {
    std::memcpy(ids.data() + i * sizeof(uint64_t), &s.registers[i].id, sizeof(uint64_t));
    values.insert(values.end(), s.registers[i].value.begin(), s.registers[i].value.end());
  }
  w.record(kRegisterIds, ids);
  w.record(kRegisterValues, values);
  w.record(kTimerCtlField, s.timer.ctl);
  w.record(kTimerCvalField, s.timer.cval);
  w.record(kTimerCountField, s.timer.count);
  w.record(kSerrorPending, static_cast<uint8_t>(s.events.serror_pending));
  w.record(kSerrorHasEsr, static_cast<uint8_t>(s.events.serror_has_esr));
  w.record(kExtDabtPending, static_cast<uint8_t>(s.events.ext_dabt_pending));
  w.record(kSerrorEsr, s.events.serror_esr);
  return w.take();
}

VcpuState decode_vcpu_state(const StateBlob& blob, const std::string& what) {
  StateReader r(blob, what, VcpuState::kVersion);
  VcpuState s;
  s.mp_state = r.expect_obj<uint32_t>(kMpState);
  // KVM's arm64 MP states: RUNNABLE (0), STOPPED (5), SUSPENDED (9).
  if (s.mp_state != 0 && s.mp_state != 5 && s.mp_state != 9) bad(what, "MP state " + std::to_string(s.mp_state) + " is not one an arm64 vCPU has");
  const std::vector<uint8_t> ids = r.expect_bytes(kRegisterIds, VcpuState::kMaxRegisters * sizeof(uint64_t));
  if (ids.size() % sizeof(uint64_t)) bad(what, "the register list is not a whole number of ids");
  size_t len;
  const uint8_t* values = r.expect(kRegisterValues, &len);
  s.registers.resize(ids.size() / sizeof(uint64_t));
  std::unordered_set<uint64_t> seen;
  size_t at = 0;
  for (size_t i = 0; i < s.registers.size(); i++) {
    uint64_t id;
    std::memcpy(&id, ids.data() + i * sizeof(uint64_t), sizeof id);
    if ((id & kRegArchMask) != kRegArchArm64) bad(what, "register " + hex(id) + " is not an arm64 register id");
    const size_t size = register_size(id);
    if (size > VcpuState::kMaxRegisterBytes) bad(what, "register " + hex(id) + " claims " + std::to_string(size) + " bytes");
    if (is_named_or_host_time_register(id)) bad(what, "register " + describe_register(id) + " belongs in the timer record");
    if (!seen.insert(id).second) bad(what, "register " + hex(id) + " is listed twice");
    if (size > len - at) bad(what, "the register values end before register " + hex(id));
    s.registers[i].id = id;
    s.registers[i].value.assign(values + at, values + at + size);
    at += size;
  }
  if (at != len) bad(what, "the register values are longer than the registers listed");
  s.timer.ctl = r.expect_obj<uint64_t>(kTimerCtlField);
  s.timer.cval = r.expect_obj<uint64_t>(kTimerCvalField);
  s.timer.count = r.expect_obj<uint64_t>(kTimerCountField);
  s.events.serror_pending = r.expect_bool(kSerrorPending);
  s.events.serror_has_esr = r.expect_bool(kSerrorHasEsr);
  s.events.ext_dabt_pending = r.expect_bool(kExtDabtPending);
  s.events.serror_esr = r.expect_obj<uint64_t>(kSerrorEsr);
  if (s.events.serror_esr & ~VcpuState::kSerrorEsrMask) bad(what, "the pending SError's syndrome " + hex(s.events.serror_esr) + " has bits outside ESR's ISS field");
  if (s.events.serror_esr && !(s.events.serror_pending && s.events.serror_has_esr))
    bad(what, "a syndrome is saved for an SError that is not pending with one");
  r.expect_end();
  return s;
}

void check_vcpu_state(const VcpuState& saved, const std::vector<uint64_t>& listed, const std::vector<VcpuState::Register>& identity,
                      const std::string& what) {
  const std::unordered_set<uint64_t> known(listed.begin(), listed.end());
  for (const auto& reg : saved.registers)
    if (!known.count(reg.id))
      bad(what, "register " + describe_register(reg.id) + " from the snapshot is not one this host's KVM has: restore it on a host with the same kernel and CPU");
  std::unordered_map<uint64_t, const std::vector<uint8_t>*> here;
  for (const auto& reg : identity) here[reg.id] = &reg.value;
  for (const auto& reg : saved.registers) {
    if (!is_cpu_identity_register(reg.id)) continue;
    auto it = here.find(reg.id);
    if (it != here.end() && *it->second != reg.value)
      bad(what, "the snapshot was taken on another CPU (" + describe_register(reg.id) + " differs from this host's): restore it on a compatible host");
  }
}

}  // namespace vmrun::kvm::arm64
