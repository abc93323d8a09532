#include "devices/legacy/uart_16550.h"

#include "common/state_codec.h"

namespace vmrun {

namespace {
// Register offsets (DLAB = LCR bit 7 selects the divisor latch at 0 and 1).
constexpr uint64_t kData = 0, kIer = 1, kIirFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7;
constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kIerRxData = 0x01, kIerThre = 0x02;
constexpr uint8_t kIirNone = 0x01, kIirThre = 0x02, kIirRxData = 0x04, kIirFifoEnabled = 0xC0;
constexpr uint8_t kFcrEnable = 0x01, kFcrClearRx = 0x02;
constexpr uint8_t kLsrDataReady = 0x01, kLsrThre = 0x20, kLsrTemt = 0x40;
constexpr uint8_t kMcrLoop = 0x10;
// Modem status with a cable attached: carrier detect, data set ready, clear to send.
constexpr uint8_t kMsrConnected = 0x80 | 0x20 | 0x10;
// Guest input beyond this is dropped: host input is bounded like the output.
constexpr size_t kMaxRx = 64 << 10;
constexpr uint32_t kStateVersion = 1;
}  // namespace

Uart16550::Uart16550(std::string name, std::shared_ptr<InterruptLine> irq, ConsoleOutput* output)
    : name_(std::move(name)), irq_(std::move(irq)), output_(output), msr_(kMsrConnected) {}

void Uart16550::read(uint64_t offset, uint8_t* data, uint32_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  // Wider accesses read the same register into each byte lane, as on a real ISA bus.
  uint8_t v = read_register(offset);
  for (uint32_t i = 0; i < size; i++) data[i] = i == 0 ? v : 0xFF;
  update_interrupt();
}

void Uart16550::write(uint64_t offset, const uint8_t* data, uint32_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (size == 0) return;
  write_register(offset, data[0]);
  update_interrupt();
}

uint8_t Uart16550::read_register(uint64_t offset) {
  switch (offset) {
    case kData: {
      if (lcr_ & kLcrDlab) return dll_;
      if (rx_.empty()) return 0;
      uint8_t b = rx_.front();
      rx_.pop_front();
      return b;
    }
    case kIer:
      return (lcr_ & kLcrDlab) ? dlm_ : ier_;
    case kIirFcr: {
      uint8_t fifo = (fcr_ & kFcrEnable) ? kIirFifoEnabled : 0;
      if ((ier_ & kIerRxData) && !rx_.empty()) return kIirRxData | fifo;
      if ((ier_ & kIerThre) && thr_interrupt_pending_) {
        // Reading IIR with THRE as the source acknowledges it.
        thr_interrupt_pending_ = false;
        return kIirThre | fifo;
      }
      return kIirNone | fifo;
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr:
      return kLsrThre | kLsrTemt | (rx_.empty() ? 0 : kLsrDataReady);
    case kMsr:
      if (mcr_ & kMcrLoop) {
        // Loopback: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
        return static_cast<uint8_t>(((mcr_ & 0x02) << 3) | ((mcr_ & 0x01) << 5) | ((mcr_ & 0x04) << 4) | ((mcr_ & 0x08) << 4));
      }
      return msr_;
    case kScr:
      return scr_;
    default:
      return 0xFF;
  }
}

void Uart16550::write_register(uint64_t offset, uint8_t value) {
  switch (offset) {
    case kData:
      if (lcr_ & kLcrDlab) {
        dll_ = value;
      } else {
        transmit(value);
      }
      break;
    case kIer:
      if (lcr_ & kLcrDlab) {
        dlm_ = value;
      } else {
        // Enabling THRE while the transmitter is empty raises the interrupt at once.
        if (!(ier_ & kIerThre) && (value & kIerThre)) thr_interrupt_pending_ = true;
        ier_ = value & 0x0F;
      }
      break;
    case kIirFcr:
      fcr_ = value;
      if (value & kFcrClearRx) rx_.clear();
      break;
    case kLcr:
      lcr_ = value;
      break;
    case kMcr:
      mcr_ = value & 0x1F;
      break;
    case kScr:
      scr_ = value;
      break;
    default:
      break;  // LSR and MSR are read-only
  }
}

void Uart16550::transmit(uint8_t byte) {
  if (mcr_ & kMcrLoop) {
    if (rx_.size() < kMaxRx) rx_.push_back(byte);
  } else if (output_) {
    output_->append(&byte, 1);
  }
  // The byte left at once: THR is empty again. Lower then raise the line so an
  // edge-triggered controller sees a new interrupt for the next THRE.
  thr_interrupt_pending_ = false;
  update_interrupt();
  thr_interrupt_pending_ = true;
}

void Uart16550::update_interrupt() {
  bool pending = ((ier_ & kIerRxData) && !rx_.empty()) || ((ier_ & kIerThre) && thr_interrupt_pending_);
  // OUT2 gates the interrupt onto the ISA line on PC hardware; Linux sets it.
  if (pending != irq_level_) {
    irq_level_ = pending;
    if (irq_) irq_->set_level(pending);
  }
}

void Uart16550::receive(const uint8_t* data, size_t len) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < len && rx_.size() < kMaxRx; i++) rx_.push_back(data[i]);
  update_interrupt();
}

StateBlob Uart16550::save() {
  std::lock_guard<std::mutex> lock(mu_);
  StateWriter w(kStateVersion);
  uint8_t regs[10] = {ier_, lcr_, mcr_, scr_, fcr_, dll_, dlm_, msr_, thr_interrupt_pending_, irq_level_};
  w.record(1, regs, sizeof regs);
  std::vector<uint8_t> rx(rx_.begin(), rx_.end());
  w.record(2, rx.data(), rx.size());
  return w.take();
}

void Uart16550::restore(const StateBlob& state) {
  std::lock_guard<std::mutex> lock(mu_);
  StateReader r(state, name_ + " state", kStateVersion);
  size_t len;
  const uint8_t* regs = r.expect(1, &len);
  if (len != 10) throw VmrunError(ErrorCode::Snapshot, name_ + " state: bad register record");
  ier_ = regs[0], lcr_ = regs[1], mcr_ = regs[2], scr_ = regs[3], fcr_ = regs[4];
  dll_ = regs[5], dlm_ = regs[6], msr_ = regs[7], thr_interrupt_pending_ = regs[8];
  const uint8_t* rx = r.expect(2, &len);
  if (len > kMaxRx) throw VmrunError(ErrorCode::Snapshot, name_ + " state: receive queue too large");
  rx_.assign(rx, rx + len);
  // The in-kernel irqchip state (restored separately) already holds the line's level.
  irq_level_ = regs[9];
}

}  // namespace vmrun
