// What a 16550A UART saves in a snapshot: its registers by name and the receive queue.
// Decoded once from the snapshot's blob (one tagged record per field), checked, and
// only then handed to the device.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "devices/device.h"

namespace vmrun {

struct Uart16550State {
  /** 1: ten registers as one positional byte array (refused). 2: one record per field. */
  static constexpr uint32_t kVersion = 2;
  /** Guest input beyond this is dropped: host input is bounded like the output. */
  static constexpr size_t kMaxRx = 64 << 10;

  uint8_t ier = 0;  // interrupt enable (low 4 bits)
  uint8_t lcr = 0;  // line control; bit 7 (DLAB) selects the divisor latch
  uint8_t mcr = 0;  // modem control (low 5 bits); bit 4 is loopback
  uint8_t scr = 0;  // scratch
  uint8_t fcr = 0;  // FIFO control as last written
  uint8_t dll = 0x0C, dlm = 0;  // divisor latch: 9600 baud, as a PC BIOS leaves it
  uint8_t msr = 0;  // modem status without loopback
  bool thr_interrupt_pending = false;  // THRE interrupt raised and not yet acknowledged
  bool irq_level = false;              // the level last driven on the IRQ line
  std::vector<uint8_t> rx;             // received bytes the guest has not read yet
};

StateBlob encode_uart16550_state(const Uart16550State& state);
/** Throws VmrunError(Snapshot) naming `what` for a blob that is not a version-2 UART state. */
Uart16550State decode_uart16550_state(const StateBlob& blob, const std::string& what);

}  // namespace vmrun
