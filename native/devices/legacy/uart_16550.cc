#include "devices/legacy/uart_16550.h"


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
constexpr size_t kMaxRx = Uart16550State::kMaxRx;
}  // namespace

Uart16550::Uart16550(std::string name, std::shared_ptr<InterruptLine> irq, ConsoleOutput* output)
    : name_(std::move(name)), irq_(std::move(irq)), output_(output) {
  s_.msr = kMsrConnected;
}

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
      if (s_.lcr & kLcrDlab) return s_.dll;
      if (rx_.empty()) return 0;
      uint8_t b = rx_.front();
      rx_.pop_front();
      return b;
    }
    case kIer:
      return (s_.lcr & kLcrDlab) ? s_.dlm : s_.ier;
    case kIirFcr: {
      uint8_t fifo = (s_.fcr & kFcrEnable) ? kIirFifoEnabled : 0;
      if ((s_.ier & kIerRxData) && !rx_.empty()) return kIirRxData | fifo;
      if ((s_.ier & kIerThre) && s_.thr_interrupt_pending) {
        // Reading IIR with THRE as the source acknowledges it.
        s_.thr_interrupt_pending = false;
        return kIirThre | fifo;
      }
      return kIirNone | fifo;
    }
    case kLcr:
      return s_.lcr;
    case kMcr:
      return s_.mcr;
    case kLsr:
      return kLsrThre | kLsrTemt | (rx_.empty() ? 0 : kLsrDataReady);
    case kMsr:
      if (s_.mcr & kMcrLoop) {
        // Loopback: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
        return static_cast<uint8_t>(((s_.mcr & 0x02) << 3) | ((s_.mcr & 0x01) << 5) | ((s_.mcr & 0x04) << 4) | ((s_.mcr & 0x08) << 4));
      }
      return s_.msr;
    case kScr:
      return s_.scr;
    default:
      return 0xFF;
  }
}

void Uart16550::write_register(uint64_t offset, uint8_t value) {
  switch (offset) {
    case kData:
      if (s_.lcr & kLcrDlab) {
        s_.dll = value;
      } else {
        transmit(value);
      }
      break;
    case kIer:
      if (s_.lcr & kLcrDlab) {
        s_.dlm = value;
      } else {
        // Enabling THRE while the transmitter is empty raises the interrupt at once.
        if (!(s_.ier & kIerThre) && (value & kIerThre)) s_.thr_interrupt_pending = true;
        s_.ier = value & 0x0F;
      }
      break;
    case kIirFcr:
      s_.fcr = value;
      if (value & kFcrClearRx) rx_.clear();
      break;
    case kLcr:
      s_.lcr = value;
      break;
    case kMcr:
      s_.mcr = value & 0x1F;
      break;
    case kScr:
      s_.scr = value;
      break;
    default:
      break;  // LSR and MSR are read-only
  }
}

void Uart16550::transmit(uint8_t byte) {
  if (s_.mcr & kMcrLoop) {
    if (rx_.size() < kMaxRx) rx_.push_back(byte);
  } else if (output_) {
    output_->append(&byte, 1);
  }
  // The byte left at once: THR is empty again. Lower then raise the line so an
  // edge-triggered controller sees a new interrupt for the next THRE.
  s_.thr_interrupt_pending = false;
  update_interrupt();
  s_.thr_interrupt_pending = true;
}

void Uart16550::update_interrupt() {
  bool pending = ((s_.ier & kIerRxData) && !rx_.empty()) || ((s_.ier & kIerThre) && s_.thr_interrupt_pending);
  // OUT2 gates the interrupt onto the ISA line on PC hardware; Linux sets it.
  if (pending != s_.irq_level) {
    s_.irq_level = pending;
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
  Uart16550State saved = s_;
  saved.rx.assign(rx_.begin(), rx_.end());
  return encode_uart16550_state(saved);
}

void Uart16550::restore(const StateBlob& blob) {
  Uart16550State restored = decode_uart16550_state(blob, name_ + " state");
  std::lock_guard<std::mutex> lock(mu_);
  rx_.assign(restored.rx.begin(), restored.rx.end());
  restored.rx.clear();
  // The in-kernel irqchip state (restored separately) already holds the line's level.
  s_ = std::move(restored);
}

}  // namespace vmrun
