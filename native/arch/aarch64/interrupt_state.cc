#include "arch/aarch64/interrupt_state.h"

#include <set>

#include "common/state_codec.h"

namespace vmrun::aarch64 {

namespace {

// One tag per field. The per-vCPU records repeat, in vCPU order, after kCpuCount.
enum Field : uint32_t {
  kDistCtlr = 1, kDistIidr, kDistIgroupr, kDistIsenabler, kDistIspendr, kDistIsactiver, kDistIpriorityr, kDistIcfgr, kDistIgrpmodr,
  kDistIrouter, kDistSpiLineLevel,
  kCpuCount = 20,
  kMpidr = 30, kRedistCtlr, kRedistWaker, kRedistPropbaser, kRedistPendbaser, kRedistIgroupr0, kRedistIsenabler0, kRedistIspendr0,
  kRedistIsactiver0, kRedistIpriorityr, kRedistIcfgr0, kRedistIcfgr1, kRedistIgrpmodr0, kRedistLineLevel,
  kIccSre = 50, kIccCtlr, kIccPmr, kIccBpr0, kIccBpr1, kIccIgrpen0, kIccIgrpen1, kIccAp0r, kIccAp1r,
  kCounterFrequency = 70, kGuestCounter,
};

constexpr const char* kWhat = "GIC state";

}  // namespace

StateBlob encode_interrupt_state(const InterruptState& s) {
  StateWriter w(InterruptState::kVersion);
  const GicDistributorState& d = s.distributor;
  w.record(kDistCtlr, d.ctlr);
  w.record(kDistIidr, d.iidr);
  w.record(kDistIgroupr, d.igroupr);
  w.record(kDistIsenabler, d.isenabler);
  w.record(kDistIspendr, d.ispendr);
  w.record(kDistIsactiver, d.isactiver);
  w.record(kDistIpriorityr, d.ipriorityr);
  w.record(kDistIcfgr, d.icfgr);
  w.record(kDistIgrpmodr, d.igrpmodr);
  w.record(kDistIrouter, d.irouter);
  w.record(kDistSpiLineLevel, d.spi_line_level);
  w.record(kCpuCount, static_cast<uint32_t>(s.cpus.size()));
  for (const auto& c : s.cpus) {
    const GicRedistributorState& r = c.redistributor;
    const GicCpuInterfaceState& i = c.cpu_interface;
    w.record(kMpidr, c.mpidr);
    w.record(kRedistCtlr, r.ctlr);
    w.record(kRedistWaker, r.waker);
    w.record(kRedistPropbaser, r.propbaser);
    w.record(kRedistPendbaser, r.pendbaser);
    w.record(kRedistIgroupr0, r.igroupr0);
    w.record(kRedistIsenabler0, r.isenabler0);
    w.record(kRedistIspendr0, r.ispendr0);
    w.record(kRedistIsactiver0, r.isactiver0);
    w.record(kRedistIpriorityr, r.ipriorityr);
    w.record(kRedistIcfgr0, r.icfgr0);
    w.record(kRedistIcfgr1, r.icfgr1);
    w.record(kRedistIgrpmodr0, r.igrpmodr0);
    w.record(kRedistLineLevel, r.private_line_level);
    w.record(kIccSre, i.sre);
    w.record(kIccCtlr, i.ctlr);
    w.record(kIccPmr, i.pmr);
    w.record(kIccBpr0, i.bpr0);
    w.record(kIccBpr1, i.bpr1);
    w.record(kIccIgrpen0, i.igrpen0);
    w.record(kIccIgrpen1, i.igrpen1);
    w.record(kIccAp0r, i.ap0r);
    w.record(kIccAp1r, i.ap1r);
  }
  w.record(kCounterFrequency, s.counter_frequency_hz);
  w.record(kGuestCounter, s.guest_counter);
  return w.take();
}

InterruptState decode_interrupt_state(const StateBlob& blob) {
  StateReader rd(blob, kWhat, InterruptState::kVersion);
  InterruptState s;
  GicDistributorState& d = s.distributor;
  d.ctlr = rd.expect_obj<uint32_t>(kDistCtlr);
  d.iidr = rd.expect_obj<uint32_t>(kDistIidr);
  d.igroupr = rd.expect_obj<decltype(d.igroupr)>(kDistIgroupr);
  d.isenabler = rd.expect_obj<decltype(d.isenabler)>(kDistIsenabler);
  d.ispendr = rd.expect_obj<decltype(d.ispendr)>(kDistIspendr);
  d.isactiver = rd.expect_obj<decltype(d.isactiver)>(kDistIsactiver);
  d.ipriorityr = rd.expect_obj<decltype(d.ipriorityr)>(kDistIpriorityr);
  d.icfgr = rd.expect_obj<decltype(d.icfgr)>(kDistIcfgr);
  d.igrpmodr = rd.expect_obj<decltype(d.igrpmodr)>(kDistIgrpmodr);
  d.irouter = rd.expect_obj<decltype(d.irouter)>(kDistIrouter);
  d.spi_line_level = rd.expect_obj<decltype(d.spi_line_level)>(kDistSpiLineLevel);
  const uint32_t count = rd.expect_obj<uint32_t>(kCpuCount);
  if (count == 0 || count > static_cast<uint32_t>(kMaxCpus))
    throw VmrunError(ErrorCode::Snapshot, std::string(kWhat) + " is for " + std::to_string(count) + " vCPUs (1 to " + std::to_string(kMaxCpus) + " allowed)");
  std::set<uint64_t> seen;
  s.cpus.resize(count);
  for (auto& c : s.cpus) {
    GicRedistributorState& r = c.redistributor;
    GicCpuInterfaceState& i = c.cpu_interface;
    c.mpidr = rd.expect_obj<uint64_t>(kMpidr);
    if (!seen.insert(vgic_mpidr(c.mpidr)).second) throw VmrunError(ErrorCode::Snapshot, std::string(kWhat) + " names one MPIDR for two vCPUs");
    r.ctlr = rd.expect_obj<uint32_t>(kRedistCtlr);
    r.waker = rd.expect_obj<uint32_t>(kRedistWaker);
    r.propbaser = rd.expect_obj<uint64_t>(kRedistPropbaser);
    r.pendbaser = rd.expect_obj<uint64_t>(kRedistPendbaser);
    r.igroupr0 = rd.expect_obj<uint32_t>(kRedistIgroupr0);
    r.isenabler0 = rd.expect_obj<uint32_t>(kRedistIsenabler0);
    r.ispendr0 = rd.expect_obj<uint32_t>(kRedistIspendr0);
    r.isactiver0 = rd.expect_obj<uint32_t>(kRedistIsactiver0);
    r.ipriorityr = rd.expect_obj<decltype(r.ipriorityr)>(kRedistIpriorityr);
    r.icfgr0 = rd.expect_obj<uint32_t>(kRedistIcfgr0);
    r.icfgr1 = rd.expect_obj<uint32_t>(kRedistIcfgr1);
    r.igrpmodr0 = rd.expect_obj<uint32_t>(kRedistIgrpmodr0);
    r.private_line_level = rd.expect_obj<uint32_t>(kRedistLineLevel);
    i.sre = rd.expect_obj<uint64_t>(kIccSre);
    i.ctlr = rd.expect_obj<uint64_t>(kIccCtlr);
    i.pmr = rd.expect_obj<uint64_t>(kIccPmr);
    i.bpr0 = rd.expect_obj<uint64_t>(kIccBpr0);
    i.bpr1 = rd.expect_obj<uint64_t>(kIccBpr1);
    i.igrpen0 = rd.expect_obj<uint64_t>(kIccIgrpen0);
    i.igrpen1 = rd.expect_obj<uint64_t>(kIccIgrpen1);
    i.ap0r = rd.expect_obj<decltype(i.ap0r)>(kIccAp0r);
    i.ap1r = rd.expect_obj<decltype(i.ap1r)>(kIccAp1r);
  }
  s.counter_frequency_hz = rd.expect_obj<uint64_t>(kCounterFrequency);
  s.guest_counter = rd.expect_obj<uint64_t>(kGuestCounter);
  rd.expect_end();
  if (s.counter_frequency_hz == 0) throw VmrunError(ErrorCode::Snapshot, std::string(kWhat) + " has no counter frequency");
  return s;
}

}  // namespace vmrun::aarch64
