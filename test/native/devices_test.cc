// The legacy devices as a guest drives them: register by register, through the same
// read()/write() the vCPU's port bus calls, and their snapshot state round trips.
#include <mutex>
#include <vector>

#include "check.h"
#include "common/state_codec.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/exit_port.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/uart_16550.h"

using namespace vmrun;

namespace {

struct RecordingLine : InterruptLine {
  std::vector<bool> levels;
  void set_level(bool high) override { levels.push_back(high); }
};

struct RecordingControl : VmControl {
  std::vector<StopRequest> requests;
  void request_stop(const StopRequest& r) override { requests.push_back(r); }
};

struct CapturedConsole {
  std::mutex mu;
  std::vector<uint8_t> bytes;
  ConsoleOutput output{[this](std::vector<uint8_t>&& batch) {
    std::lock_guard<std::mutex> lock(mu);
    bytes.insert(bytes.end(), batch.begin(), batch.end());
  }};
  std::string text() {
    output.flush();
    std::lock_guard<std::mutex> lock(mu);
    return std::string(bytes.begin(), bytes.end());
  }
};

uint8_t in(Device& d, uint64_t offset) {
  uint8_t v = 0;
  d.read(offset, &v, 1);
  return v;
}
void out(Device& d, uint64_t offset, uint8_t v) { d.write(offset, &v, 1); }

constexpr uint64_t kThr = 0, kIer = 1, kIir = 2, kLcr = 3, kMcr = 4, kLsr = 5, kScr = 7;

}  // namespace

TEST("uart: bytes written to THR reach the console in order") {
  CapturedConsole console;
  Uart16550 uart("uart0", nullptr, &console.output);
  for (char c : std::string("hello\n")) out(uart, kThr, static_cast<uint8_t>(c));
  CHECK_EQ(console.text(), std::string("hello\n"));
  CHECK_EQ(console.output.total_bytes(), 6u);
}

TEST("uart: LSR says the transmitter is empty and, once input arrives, data ready") {
  Uart16550 uart("uart0", nullptr, nullptr);
  CHECK_EQ(in(uart, kLsr), 0x60);
  const uint8_t input[] = {'x', 'y'};
  uart.receive(input, 2);
  CHECK_EQ(in(uart, kLsr), 0x61);
  CHECK_EQ(in(uart, kThr), 'x');
  CHECK_EQ(in(uart, kThr), 'y');
  CHECK_EQ(in(uart, kLsr), 0x60);
  CHECK_EQ(in(uart, kThr), 0);  // empty receive buffer
}

TEST("uart: DLAB selects the divisor latch instead of THR and IER") {
  CapturedConsole console;
  Uart16550 uart("uart0", nullptr, &console.output);
  out(uart, kLcr, 0x80);
  out(uart, kThr, 0x01);  // DLL, not a transmitted byte
  out(uart, kIer, 0x02);  // DLM
  CHECK_EQ(in(uart, kThr), 0x01);
  CHECK_EQ(in(uart, kIer), 0x02);
  out(uart, kLcr, 0x03);
  CHECK_EQ(in(uart, kIer), 0);  // IER untouched
  CHECK_EQ(console.text(), std::string());
}

TEST("uart: loopback echoes transmitted bytes into the receiver, not the console") {
  CapturedConsole console;
  Uart16550 uart("uart0", nullptr, &console.output);
  out(uart, kMcr, 0x10);
  out(uart, kThr, 'L');
  CHECK_EQ(in(uart, kLsr) & 1, 1);
  CHECK_EQ(in(uart, kThr), 'L');
  CHECK_EQ(console.text(), std::string());
}

TEST("uart: enabling THRE raises the IRQ line; reading IIR acknowledges it") {
  auto line = std::make_shared<RecordingLine>();
  Uart16550 uart("uart0", line, nullptr);
  out(uart, kIer, 0x02);
  CHECK(!line->levels.empty() && line->levels.back());
  CHECK_EQ(in(uart, kIir) & 0x0F, 0x02);  // THRE is the source
  CHECK(!line->levels.back());            // and is now acknowledged
  CHECK_EQ(in(uart, kIir) & 0x0F, 0x01);  // nothing pending
}

TEST("uart: received data interrupts when enabled and outranks THRE in IIR") {
  auto line = std::make_shared<RecordingLine>();
  Uart16550 uart("uart0", line, nullptr);
  out(uart, kIer, 0x03);
  const uint8_t b = 'k';
  uart.receive(&b, 1);
  CHECK(line->levels.back());
  CHECK_EQ(in(uart, kIir) & 0x0F, 0x04);
}

TEST("uart: save and restore carry every register and the receive queue") {
  Uart16550 a("uart0", nullptr, nullptr);
  out(a, kLcr, 0x80);
  out(a, kThr, 0x03);
  out(a, kIer, 0x00);
  out(a, kLcr, 0x1B);
  out(a, kIer, 0x05);
  out(a, kMcr, 0x0B);
  out(a, kScr, 0x5A);
  out(a, kIir, 0x01);
  const uint8_t input[] = {1, 2, 3};
  a.receive(input, 3);
  StateBlob blob = a.save();

  Uart16550State decoded = decode_uart16550_state(blob, "uart0 state");
  CHECK_EQ(decoded.lcr, 0x1B);
  CHECK_EQ(decoded.dll, 0x03);
  CHECK_EQ(decoded.ier, 0x05);
  CHECK_EQ(decoded.mcr, 0x0B);
  CHECK_EQ(decoded.scr, 0x5A);
  CHECK_EQ(decoded.fcr, 0x01);
  CHECK(decoded.rx == std::vector<uint8_t>({1, 2, 3}));

  Uart16550 b("uart0", nullptr, nullptr);
  b.restore(blob);
  CHECK(b.save() == blob);
  CHECK_EQ(in(b, kScr), 0x5A);
  CHECK_EQ(in(b, kThr), 1);
}

TEST("uart: restore refuses version-1 (positional), truncated, padded or impossible states") {
  Uart16550 uart("uart0", nullptr, nullptr);
  StateWriter v1(1);
  uint8_t regs[10] = {};
  v1.record(1, regs, sizeof regs);
  v1.record(2, nullptr, 0);
  CHECK_THROWS(uart.restore(v1.take()), "uart0 state has version 1, expected 2");
  StateBlob good = Uart16550("uart0", nullptr, nullptr).save();
  CHECK_THROWS(uart.restore(StateBlob(good.begin(), good.end() - 1)), "uart0 state");
  StateBlob padded = good;
  padded.push_back(0);
  CHECK_THROWS(uart.restore(padded), "bytes after its last record");
  Uart16550State bad;
  bad.ier = 0xF0;
  CHECK_THROWS(uart.restore(encode_uart16550_state(bad)), "bits a 16550A does not have");
  Uart16550State huge;
  huge.rx.assign(Uart16550State::kMaxRx + 1, 0);
  CHECK_THROWS(uart.restore(encode_uart16550_state(huge)), "at most 65536");
  // A refused state changes nothing.
  CHECK(uart.save() == good);
}

TEST("cmos: the index port selects a register; bit 7 (NMI mask) is not part of it") {
  CmosRtc cmos(64ULL << 20);
  out(cmos, 0, 0x8B);
  CHECK_EQ(in(cmos, 0), 0x0B);
  CHECK_EQ(in(cmos, 1), 0x02);  // status B: 24-hour, BCD
  out(cmos, 0, 0x34);
  CHECK_EQ(in(cmos, 1), 0x00);  // 64 MiB: (64-16) MiB / 64 KiB = 768 = 0x300
  out(cmos, 0, 0x35);
  CHECK_EQ(in(cmos, 1), 0x03);
}

TEST("cmos: save and restore keep the index; old and impossible states are refused") {
  CmosRtc a(32ULL << 20);
  out(a, 0, 0x0D);
  StateBlob blob = a.save();
  CHECK_EQ(decode_cmos_rtc_state(blob, "cmos state").index, 0x0D);
  CmosRtc b(32ULL << 20);
  b.restore(blob);
  CHECK_EQ(in(b, 1), 0x80);
  CHECK_THROWS(b.restore(StateBlob{0x0D}), "cmos state is truncated");  // the unversioned byte of old
  CmosRtcState high;
  high.index = 0x80;
  CHECK_THROWS(b.restore(encode_cmos_rtc_state(high)), "out of range");
  CHECK_EQ(in(b, 0), 0x0D);
}

TEST("i8042: 0xFE on the command port resets the machine; nothing else does") {
  RecordingControl control;
  I8042 kbd(&control);
  out(kbd, 0, 0xFE);   // data port
  out(kbd, 4, 0xAA);   // another command
  CHECK(control.requests.empty());
  CHECK_EQ(in(kbd, 4), 0);  // status: both buffers empty
  out(kbd, 4, 0xFE);
  CHECK_EQ(control.requests.size(), 1u);
  CHECK(control.requests[0].kind == StopRequest::Kind::Reset);
}

TEST("exit port: the written status (low byte) becomes the exit code") {
  RecordingControl control;
  ExitPort port(&control);
  uint32_t status = 0x1234'5603;
  port.write(0, reinterpret_cast<const uint8_t*>(&status), 4);
  port.write(1, reinterpret_cast<const uint8_t*>(&status), 1);  // not the port itself
  CHECK_EQ(control.requests.size(), 1u);
  CHECK(control.requests[0].kind == StopRequest::Kind::ExitCode);
  CHECK_EQ(control.requests[0].exit_code, 3);
  CHECK_EQ(in(port, 0), 0xFF);
}
