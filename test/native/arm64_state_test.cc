// arm64 snapshot state without KVM: the vCPU state (every listed register, MP state,
// the virtual timer) and the GIC state (InterruptState) round trip through their
// codecs, and malformed or foreign blobs are refused before anything is applied.
#include <cstring>

#include "arch/aarch64/interrupt_state.h"
#include "backend/kvm/aarch64/vcpu_state_codec.h"
#include "check.h"
#include "common/state_codec.h"

using namespace vmrun;
namespace a64 = vmrun::kvm::arm64;
using vmrun::aarch64::InterruptState;

namespace {

// Core register ids (KVM_REG_ARM_CORE): x0 (64-bit), V0 (128-bit, offset 0x44 words), FPSR (32-bit).
constexpr uint64_t kCore = 0x0010ULL << 16;
constexpr uint64_t kX0 = a64::kRegArchArm64 | a64::kRegSizeU64 | kCore | 0;
constexpr uint64_t kV0 = a64::kRegArchArm64 | 0x0040'0000'0000'0000ULL | kCore | 0x44;
constexpr uint64_t kFpsr = a64::kRegArchArm64 | 0x0020'0000'0000'0000ULL | kCore | 0xD4;
constexpr uint64_t kMidr = a64::sys_reg(3, 0, 0, 0, 0);
constexpr uint64_t kSctlr = a64::sys_reg(3, 0, 1, 0, 0);

a64::VcpuState sample_vcpu() {
  a64::VcpuState s;
  s.mp_state = 5;  // a powered-off secondary
  s.registers.push_back({kX0, {1, 2, 3, 4, 5, 6, 7, 8}});
  std::vector<uint8_t> v0(16);
  for (size_t i = 0; i < v0.size(); i++) v0[i] = static_cast<uint8_t>(0xA0 + i);
  s.registers.push_back({kV0, v0});
  s.registers.push_back({kFpsr, {0x10, 0, 0, 0}});
  s.registers.push_back({kMidr, {0x00, 0xD0, 0x0F, 0x41, 0, 0, 0, 0}});
  s.registers.push_back({kSctlr, {0x05, 0x10, 0xC5, 0x30, 0, 0, 0, 0}});
  s.timer.ctl = 1;
  s.timer.cval = 0x1234'5678;
  s.timer.count = 0x1234'0000;
  s.events.serror_pending = true;
  s.events.serror_has_esr = true;
  s.events.serror_esr = 0x11;
  return s;
}

InterruptState sample_gic(size_t cpus) {
  InterruptState s;
  s.distributor.ctlr = 0x12;
  s.distributor.iidr = 0x3043B;
  s.distributor.isenabler[1] = 0x2;
  s.distributor.icfgr[2] = 0xAAAA;
  s.distributor.irouter[1] = 0x1;
  s.distributor.spi_line_level[1] = 0x2;
  s.cpus.resize(cpus);
  for (size_t i = 0; i < cpus; i++) {
    s.cpus[i].mpidr = 0x8000'0000ULL | i;
    s.cpus[i].redistributor.isenabler0 = 0x0800'FFFF;
    s.cpus[i].redistributor.private_line_level = 1u << 27;  // the virtual timer's PPI
    s.cpus[i].cpu_interface.sre = 7;
    s.cpus[i].cpu_interface.ctlr = 4u << 8;  // 5 priority bits
    s.cpus[i].cpu_interface.igrpen1 = 1;
    s.cpus[i].cpu_interface.ap1r[0] = 0x1;
  }
  s.counter_frequency_hz = 62'500'000;
  s.guest_counter = 0x55'0000'0000ULL;
  return s;
}

/** Offset of record `tag`'s payload in a tagged blob (the first record carrying it). */
size_t payload_of(const StateBlob& b, uint32_t tag) {
  size_t pos = 4;
  while (pos + 8 <= b.size()) {
    uint32_t t, l;
    std::memcpy(&t, &b[pos], 4);
    std::memcpy(&l, &b[pos + 4], 4);
    if (t == tag) return pos + 8;
    pos += 8 + l;
  }
  check::fail(__FILE__, __LINE__, "no such record");
  return 0;
}

}  // namespace

TEST("arm64 vcpu state: every register (64-, 128- and 32-bit), the MP state and the timer come back") {
  const a64::VcpuState s = sample_vcpu();
  const StateBlob blob = a64::encode_vcpu_state(s);
  const a64::VcpuState d = a64::decode_vcpu_state(blob, "vCPU 1 state");
  CHECK_EQ(d.mp_state, 5u);
  CHECK_EQ(d.registers.size(), s.registers.size());
  for (size_t i = 0; i < s.registers.size() && i < d.registers.size(); i++) {
    CHECK_EQ(d.registers[i].id, s.registers[i].id);
    CHECK(d.registers[i].value == s.registers[i].value);
  }
  CHECK_EQ(d.registers[1].value.size(), 16u);
  CHECK_EQ(d.timer.ctl, 1u);
  CHECK_EQ(d.timer.cval, 0x1234'5678u);
  CHECK_EQ(d.timer.count, 0x1234'0000u);
  CHECK(d.events.serror_pending);
  CHECK(d.events.serror_has_esr);
  CHECK(!d.events.ext_dabt_pending);
  CHECK_EQ(d.events.serror_esr, 0x11u);
  CHECK(a64::encode_vcpu_state(d) == blob);
}

TEST("arm64 vcpu state: register ids and values that do not add up are refused") {
  const StateBlob good = a64::encode_vcpu_state(sample_vcpu());
  // A register value one byte short: the id says 16 bytes for V0.
  a64::VcpuState short_v = sample_vcpu();
  short_v.registers[1].value.resize(15);
  CHECK_THROWS(a64::decode_vcpu_state(a64::encode_vcpu_state(short_v), "vCPU 0 state"), "vCPU 0 state: the register values end before register");
  a64::VcpuState long_v = sample_vcpu();
  long_v.registers.back().value.push_back(0);
  CHECK_THROWS(a64::decode_vcpu_state(a64::encode_vcpu_state(long_v), "vCPU 0 state"), "longer than the registers listed");
  a64::VcpuState twice = sample_vcpu();
  twice.registers.push_back(twice.registers[0]);
  CHECK_THROWS(a64::decode_vcpu_state(a64::encode_vcpu_state(twice), "vCPU 0 state"), "is listed twice");
  a64::VcpuState x86 = sample_vcpu();
  x86.registers[0].id = 0x2030'0000'0000'0000ULL | 1;  // KVM_REG_X86
  CHECK_THROWS(a64::decode_vcpu_state(a64::encode_vcpu_state(x86), "vCPU 0 state"), "is not an arm64 register id");
  a64::VcpuState huge = sample_vcpu();
  huge.registers[0].id = a64::kRegArchArm64 | 0x00A0'0000'0000'0000ULL | kCore;  // 2^10 bytes
  huge.registers[0].value.resize(1024);
  CHECK_THROWS(a64::decode_vcpu_state(a64::encode_vcpu_state(huge), "vCPU 0 state"), "claims 1024 bytes");
  a64::VcpuState timer_in_list = sample_vcpu();
  timer_in_list.registers.push_back({a64::kTimerCnt, std::vector<uint8_t>(8)});
  CHECK_THROWS(a64::decode_vcpu_state(a64::encode_vcpu_state(timer_in_list), "vCPU 0 state"), "belongs in the timer record");
  a64::VcpuState mp = sample_vcpu();
  mp.mp_state = 3;  // KVM_MP_STATE_HALTED: x86's
  CHECK_THROWS(a64::decode_vcpu_state(a64::encode_vcpu_state(mp), "vCPU 0 state"), "MP state 3 is not one an arm64 vCPU has");
  StateBlob odd_ids = good;
  const size_t ids = payload_of(odd_ids, 2);
  uint32_t len;
  std::memcpy(&len, &odd_ids[ids - 4], 4);
  len -= 1;  // the id list is no longer whole ids (and the blob no longer parses after it)
  std::memcpy(&odd_ids[ids - 4], &len, 4);
  CHECK_THROWS(a64::decode_vcpu_state(odd_ids, "vCPU 0 state"), "vCPU 0 state");
  // Version 1 had no pending exceptions: refused by name rather than restored without them.
  StateBlob v1 = good;
  v1[0] = 1;
  CHECK_THROWS(a64::decode_vcpu_state(v1, "vCPU 0 state"), "vCPU 0 state has version 1, expected 2");
  a64::VcpuState wide = sample_vcpu();
  wide.events.serror_esr = 0x0200'0000;  // EC bits: not a syndrome KVM takes
  CHECK_THROWS(a64::decode_vcpu_state(a64::encode_vcpu_state(wide), "vCPU 0 state"), "has bits outside ESR's ISS field");
  a64::VcpuState stray = sample_vcpu();
  stray.events.serror_has_esr = false;  // a syndrome with nothing to deliver it with
  CHECK_THROWS(a64::decode_vcpu_state(a64::encode_vcpu_state(stray), "vCPU 0 state"), "not pending with one");
  StateBlob not_bool = good;
  not_bool[payload_of(not_bool, 7)] = 2;
  CHECK_THROWS(a64::decode_vcpu_state(not_bool, "vCPU 0 state"), "record 7 is not a boolean");
  StateBlob padded = good;
  padded.push_back(0);
  CHECK_THROWS(a64::decode_vcpu_state(padded, "vCPU 0 state"), "bytes after its last record");
  for (size_t cut = 0; cut < good.size(); cut += 7)
    CHECK_THROWS(a64::decode_vcpu_state(StateBlob(good.begin(), good.begin() + static_cast<long>(cut)), "vCPU 0 state"), "vCPU 0 state");
}

TEST("arm64 vcpu state: a register this KVM does not list, or another CPU's identity, is refused") {
  const a64::VcpuState s = sample_vcpu();
  std::vector<uint64_t> listed;
  for (const auto& r : s.registers) listed.push_back(r.id);
  std::vector<a64::VcpuState::Register> identity = {{kMidr, s.registers[3].value}};
  a64::check_vcpu_state(s, listed, identity, "vCPU 0 state");
  std::vector<uint64_t> fewer(listed.begin(), listed.end() - 1);
  CHECK_THROWS(a64::check_vcpu_state(s, fewer, identity, "vCPU 0 state"), "vCPU 0 state: register 0x603000000013c080 from the snapshot is not one this host's KVM has");
  identity[0].value[2] = 0x0E;  // another part number
  CHECK_THROWS(a64::check_vcpu_state(s, listed, identity, "vCPU 0 state"), "the snapshot was taken on another CPU (0x603000000013c000 (MIDR_EL1) differs");
  CHECK(a64::is_cpu_identity_register(kMidr));
  CHECK(!a64::is_cpu_identity_register(a64::kMpidr));
  CHECK(!a64::is_cpu_identity_register(kSctlr));
  CHECK(!a64::is_cpu_identity_register(kX0));
  CHECK_EQ(a64::register_size(kV0), 16u);
  CHECK_EQ(a64::register_size(kFpsr), 4u);
}

TEST("arm64 GIC state: distributor, per-vCPU redistributor and CPU interface, and the counter come back") {
  const InterruptState s = sample_gic(2);
  const StateBlob blob = aarch64::encode_interrupt_state(s);
  const InterruptState d = aarch64::decode_interrupt_state(blob);
  CHECK_EQ(d.distributor.ctlr, 0x12u);
  CHECK_EQ(d.distributor.iidr, 0x3043Bu);
  CHECK_EQ(d.distributor.icfgr[2], 0xAAAAu);
  CHECK_EQ(d.distributor.irouter[1], 1u);
  CHECK_EQ(d.distributor.spi_line_level[1], 2u);
  CHECK_EQ(d.cpus.size(), 2u);
  CHECK_EQ(d.cpus[1].mpidr, 0x8000'0001u);
  CHECK_EQ(d.cpus[1].redistributor.private_line_level, 1u << 27);
  CHECK_EQ(d.cpus[1].cpu_interface.ap_registers(), 1);
  CHECK_EQ(d.cpus[0].cpu_interface.ap1r[0], 1u);
  CHECK_EQ(d.counter_frequency_hz, 62'500'000u);
  CHECK_EQ(d.guest_counter, 0x55'0000'0000u);
  CHECK(aarch64::encode_interrupt_state(d) == blob);
  InterruptState seven = s;
  seven.cpus[0].cpu_interface.ctlr = 6u << 8;
  CHECK_EQ(seven.cpus[0].cpu_interface.ap_registers(), 4);
  CHECK_EQ(aarch64::vgic_mpidr(0xFF'8000'0102ULL), 0xFF00'0102u);
}

TEST("arm64 GIC state: a bad vCPU count, a repeated MPIDR, no counter frequency or a damaged blob are refused") {
  const StateBlob good = aarch64::encode_interrupt_state(sample_gic(2));
  CHECK_THROWS(aarch64::decode_interrupt_state(aarch64::encode_interrupt_state(sample_gic(0))), "GIC state is for 0 vCPUs");
  InterruptState twice = sample_gic(2);
  twice.cpus[1].mpidr = twice.cpus[0].mpidr;
  CHECK_THROWS(aarch64::decode_interrupt_state(aarch64::encode_interrupt_state(twice)), "names one MPIDR for two vCPUs");
  InterruptState no_hz = sample_gic(1);
  no_hz.counter_frequency_hz = 0;
  CHECK_THROWS(aarch64::decode_interrupt_state(aarch64::encode_interrupt_state(no_hz)), "has no counter frequency");
  // A vCPU count larger than the records that follow: refused when they run out, never over-read.
  StateBlob more = good;
  const size_t count = payload_of(more, 20);
  const uint32_t big = 100;
  std::memcpy(&more[count], &big, 4);
  CHECK_THROWS(aarch64::decode_interrupt_state(more), "GIC state");
  const uint32_t huge = 1u << 30;
  std::memcpy(&more[count], &huge, 4);
  CHECK_THROWS(aarch64::decode_interrupt_state(more), "GIC state is for 1073741824 vCPUs");
  StateBlob short_array = good;
  const size_t prio = payload_of(short_array, 7);  // GICD_IPRIORITYR
  uint32_t len;
  std::memcpy(&len, &short_array[prio - 4], 4);
  len -= 4;
  std::memcpy(&short_array[prio - 4], &len, 4);
  CHECK_THROWS(aarch64::decode_interrupt_state(short_array), "GIC state");
  StateBlob v2 = good;
  v2[0] = 2;
  CHECK_THROWS(aarch64::decode_interrupt_state(v2), "GIC state has version 2, expected 1");
  for (size_t cut = 0; cut < good.size(); cut += 13)
    CHECK_THROWS(aarch64::decode_interrupt_state(StateBlob(good.begin(), good.begin() + static_cast<long>(cut))), "GIC state");
}
