#include "devices/legacy/uart_16550_state.h"

#include "common/state_codec.h"

namespace vmrun {

namespace {
enum Field : uint32_t { kIer = 1, kLcr, kMcr, kScr, kFcr, kDll, kDlm, kMsr, kThrInterruptPending, kIrqLevel, kRx };
}  // namespace

StateBlob encode_uart16550_state(const Uart16550State& s) {
  StateWriter w(Uart16550State::kVersion);
  w.record(kIer, s.ier);
  w.record(kLcr, s.lcr);
  w.record(kMcr, s.mcr);
  w.record(kScr, s.scr);
  w.record(kFcr, s.fcr);
  w.record(kDll, s.dll);
  w.record(kDlm, s.dlm);
  w.record(kMsr, s.msr);
  w.record(kThrInterruptPending, static_cast<uint8_t>(s.thr_interrupt_pending));
  w.record(kIrqLevel, static_cast<uint8_t>(s.irq_level));
  w.record(kRx, s.rx);
  return w.take();
}

Uart16550State decode_uart16550_state(const StateBlob& blob, const std::string& what) {
  StateReader r(blob, what, Uart16550State::kVersion);
  Uart16550State s;
  s.ier = r.expect_obj<uint8_t>(kIer);
  s.lcr = r.expect_obj<uint8_t>(kLcr);
  s.mcr = r.expect_obj<uint8_t>(kMcr);
  s.scr = r.expect_obj<uint8_t>(kScr);
  s.fcr = r.expect_obj<uint8_t>(kFcr);
  s.dll = r.expect_obj<uint8_t>(kDll);
  s.dlm = r.expect_obj<uint8_t>(kDlm);
  s.msr = r.expect_obj<uint8_t>(kMsr);
  s.thr_interrupt_pending = r.expect_bool(kThrInterruptPending);
  s.irq_level = r.expect_bool(kIrqLevel);
  s.rx = r.expect_bytes(kRx, Uart16550State::kMaxRx);
  r.expect_end();
  // Values the device itself could never hold (it masks them on write).
  if (s.ier > 0x0F || s.mcr > 0x1F) throw VmrunError(ErrorCode::Snapshot, what + ": a register holds bits a 16550A does not have");
  return s;
}

}  // namespace vmrun
