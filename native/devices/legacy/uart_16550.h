// A 16550A UART, complete enough for Linux's 8250 driver: divisor latch, FIFO control
// and the 16550A signature in IIR, loopback (the driver's probe checks it), THRE and
// receive-data interrupts on its IRQ line, scratch register. Transmission is
// instantaneous: the transmitter is always empty.
#pragma once
#include <deque>
#include <memory>
#include <mutex>

#include "devices/console_output.h"
#include "devices/device.h"
#include "devices/legacy/uart_16550_state.h"

namespace vmrun {

class Uart16550 : public Device {
 public:
  Uart16550(std::string name, std::shared_ptr<InterruptLine> irq, ConsoleOutput* output);

  std::string name() const override { return name_; }
  void read(uint64_t offset, uint8_t* data, uint32_t size) override;
  void write(uint64_t offset, const uint8_t* data, uint32_t size) override;
  StateBlob save() override;
  void restore(const StateBlob& state) override;

  /** Host input (keyboard, piped stdin): queued and signalled to the guest. */
  void receive(const uint8_t* data, size_t len);

 private:
  uint8_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint8_t value);
  void update_interrupt();
  void transmit(uint8_t byte);

  std::string name_;
  std::shared_ptr<InterruptLine> irq_;
  ConsoleOutput* output_;
  std::mutex mu_;

  // Architectural registers: exactly what a snapshot saves.
  Uart16550State s_;
  std::deque<uint8_t> rx_;  // s_.rx is used only in snapshots
};

}  // namespace vmrun
