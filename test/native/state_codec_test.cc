// The tagged-record codec and the vCPU state struct built on it: round trips, and
// refusal of every malformed blob before anything is applied.
#include <cstring>

#include "backend/kvm/x86_64/vcpu_state_codec.h"
#include "check.h"
#include "common/state_codec.h"

using namespace vmrun;
using namespace vmrun::kvm;

namespace {

VcpuState sample_state() {
  VcpuState s;
  s.mp_state.mp_state = KVM_MP_STATE_RUNNABLE;
  s.regs.rip = 0x100200;
  s.regs.rax = 0x1234;
  s.sregs.cr0 = 0x80050033;
  s.xsave.assign(sizeof(kvm_xsave), 0xAB);
  s.xcrs.nr_xcrs = 1;
  s.debugregs.dr7 = 0x400;
  s.lapic.regs[0x20] = 7;
  s.tsc_khz = 2'000'000;
  kvm_cpuid_entry2 leaf7{};
  leaf7.function = 7;
  leaf7.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
  leaf7.ebx = 0x9;
  s.cpuid = {leaf7};
  s.msrs = {{0x10, 0, 12345}, {0x6E0, 0, 0}};
  s.events.exception.injected = 1;
  return s;
}

/** The blob with record `tag`'s length field replaced. */
StateBlob with_record_length(StateBlob blob, uint32_t tag, uint32_t length) {
  size_t pos = 4;
  while (pos + 8 <= blob.size()) {
    uint32_t t, l;
    std::memcpy(&t, &blob[pos], 4);
    std::memcpy(&l, &blob[pos + 4], 4);
    if (t == tag) {
      std::memcpy(&blob[pos + 4], &length, 4);
      return blob;
    }
    pos += 8 + l;
  }
  return blob;
}

}  // namespace

TEST("state codec: records come back by tag; a wrong tag, an overrun or a wrong size is refused") {
  StateWriter w(3);
  uint16_t value = 0xBEEF;
  w.record(1, value);
  w.record(2, std::vector<uint8_t>{1, 2, 3});
  StateBlob blob = w.take();
  {
    StateReader r(blob, "thing", 3);
    CHECK_EQ(r.expect_obj<uint16_t>(1), 0xBEEF);
    CHECK(r.expect_bytes(2, 3) == std::vector<uint8_t>({1, 2, 3}));
    r.expect_end();
  }
  CHECK_THROWS(StateReader(blob, "thing", 4), "thing has version 3, expected 4");
  CHECK_THROWS(StateReader(blob, "thing", 3).expect_obj<uint32_t>(1), "record 1 has 2 bytes, expected 4");
  CHECK_THROWS(StateReader(blob, "thing", 3).expect_obj<uint16_t>(2), "expected record 2, found 1");
  {
    StateBlob overrun = with_record_length(blob, 2, 1000);
    StateReader r(overrun, "thing", 3);
    r.expect_obj<uint16_t>(1);
    CHECK_THROWS(r.expect_bytes(2, 2000), "record 2 overruns the state");
  }
  {
    StateReader r(blob, "thing", 3);
    r.expect_obj<uint16_t>(1);
    CHECK_THROWS(r.expect_bytes(2, 2), "at most 2 allowed");
  }
  StateWriter bools(1);
  bools.record(1, uint8_t{2});
  StateBlob not_bool = bools.take();
  CHECK_THROWS(StateReader(not_bool, "flag", 1).expect_bool(1), "not a boolean");
  StateBlob tiny{1, 0};
  CHECK_THROWS(StateReader(tiny, "tiny", 1), "tiny is truncated");
}

TEST("vcpu state: encode then decode gives back every field") {
  VcpuState s = sample_state();
  VcpuState d = decode_vcpu_state(encode_vcpu_state(s));
  CHECK_EQ(d.mp_state.mp_state, KVM_MP_STATE_RUNNABLE);
  CHECK_EQ(d.regs.rip, 0x100200u);
  CHECK_EQ(d.regs.rax, 0x1234u);
  CHECK_EQ(d.sregs.cr0, 0x80050033u);
  CHECK(d.xsave == s.xsave);
  CHECK_EQ(d.xcrs.nr_xcrs, 1u);
  CHECK_EQ(d.debugregs.dr7, 0x400u);
  CHECK_EQ(d.lapic.regs[0x20], 7);
  CHECK_EQ(d.tsc_khz, 2'000'000u);
  CHECK_EQ(d.cpuid.size(), 1u);
  CHECK_EQ(d.cpuid[0].ebx, 0x9u);
  CHECK_EQ(d.msrs.size(), 2u);
  CHECK_EQ(d.msrs[0].data, 12345u);
  CHECK_EQ(d.events.exception.injected, 1);
  CHECK(encode_vcpu_state(d) == encode_vcpu_state(s));
}

TEST("vcpu state: malformed blobs are refused with the record named") {
  StateBlob good = encode_vcpu_state(sample_state());
  // Record 9 (CPUID) claims more entries than it holds; record 10 (MSRs) is not whole entries.
  StateBlob cpuid_lie = good;
  {
    VcpuState s = sample_state();
    StateBlob b = encode_vcpu_state(s);
    size_t pos = 4;
    for (;;) {
      uint32_t t, l;
      std::memcpy(&t, &b[pos], 4);
      std::memcpy(&l, &b[pos + 4], 4);
      if (t == 9) {
        uint32_t nent = 2;
        std::memcpy(&b[pos + 8], &nent, 4);
        break;
      }
      pos += 8 + l;
    }
    cpuid_lie = b;
  }
  CHECK_THROWS(decode_vcpu_state(cpuid_lie), "CPUID record has a bad entry count");
  VcpuState short_xsave = sample_state();
  short_xsave.xsave.resize(100);
  CHECK_THROWS(decode_vcpu_state(encode_vcpu_state(short_xsave)), "XSAVE record is shorter");
  VcpuState many_msrs = sample_state();
  many_msrs.msrs.resize(VcpuState::kMaxMsrs + 1);
  CHECK_THROWS(decode_vcpu_state(encode_vcpu_state(many_msrs)), "MSR record has a bad length");
  StateBlob padded = good;
  padded.push_back(0);
  CHECK_THROWS(decode_vcpu_state(padded), "bytes after its last record");
  CHECK_THROWS(decode_vcpu_state(StateBlob(good.begin(), good.begin() + good.size() / 2)), "vCPU state");
  StateBlob v2 = good;
  v2[0] = 2;
  CHECK_THROWS(decode_vcpu_state(v2), "vCPU state has version 2, expected 1");
}

TEST("vcpu state: CPUID features the host lacks are refused; run-time bits are not features") {
  VcpuState s = sample_state();
  std::vector<kvm_cpuid_entry2> host = s.cpuid;
  check_cpuid_compatible(host, s);
  host[0].ebx = 0x1;  // lacks bit 3
  CHECK_THROWS(check_cpuid_compatible(host, s), "CPUID.7.0:EBX bits 0x8");
  kvm_cpuid_entry2 leaf1{};
  leaf1.function = 1;
  leaf1.ecx = 1u << 31;  // "hypervisor": vmrun's own bit
  s.cpuid.push_back(leaf1);
  host[0].ebx = 0x9;
  host.push_back(kvm_cpuid_entry2{1, 0, 0, 0, 0, 0, 0, {}});
  check_cpuid_compatible(host, s);
}

TEST("vcpu state: the TSC runs unscaled within 250 ppm, is scaled where KVM can, else refused") {
  CHECK(plan_tsc(2'000'000, 2'000'500, false) == TscPlan::Keep);   // exactly 250 ppm
  CHECK(plan_tsc(2'000'000, 2'000'501, true) == TscPlan::Scale);
  CHECK_THROWS(plan_tsc(2'000'000, 1'999'000, false), "more than 250 ppm apart");
  CHECK(plan_tsc(0, 3'000'000, false) == TscPlan::Keep);           // the saving host could not tell
  CHECK(plan_tsc(3'000'000, 0, false) == TscPlan::Keep);
}
