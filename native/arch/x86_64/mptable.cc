#include "arch/x86_64/mptable.h"

#include <cstring>
#include <vector>

#include "arch/x86_64/layout.h"
#include "common/error.h"

namespace vmrun::x86 {

namespace {

constexpr int kIoapicPins = 24;
constexpr uint8_t kApicVersion = 0x14, kIoapicVersion = 0x11;
enum EntryType : uint8_t { kProcessor = 0, kBus = 1, kIoapic = 2, kIoInterrupt = 3, kLocalInterrupt = 4 };
enum InterruptType : uint8_t { kInt = 0, kNmi = 1, kExtInt = 3 };

class TableWriter {
 public:
  void u8(uint8_t v) { bytes.push_back(v); }
  void u16(uint16_t v) { append(&v, 2); }
  void u32(uint32_t v) { append(&v, 4); }
  void str(const char* s, size_t n) {
    for (size_t i = 0; i < n; i++) u8(i < std::strlen(s) ? static_cast<uint8_t>(s[i]) : ' ');
  }
  void append(const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
  std::vector<uint8_t> bytes;
};

uint8_t checksum(const uint8_t* p, size_t n) {
  uint8_t sum = 0;
  for (size_t i = 0; i < n; i++) sum = static_cast<uint8_t>(sum + p[i]);
  return static_cast<uint8_t>(-sum);
}

}  // namespace

void write_mp_table(const GuestMemory& memory, int cpu_count) {
  if (cpu_count < 1 || cpu_count > kMaxMpTableCpus)
    throw VmrunError(ErrorCode::Usage, "--cpus " + std::to_string(cpu_count) + " is out of range (1-" + std::to_string(kMaxMpTableCpus) + ")");
  const uint8_t ioapic_id = static_cast<uint8_t>(cpu_count);
  const uint64_t config_address = kEbdaStart + 16;

  TableWriter entries;
  uint16_t entry_count = 0;
  for (int i = 0; i < cpu_count; i++, entry_count++) {
    entries.u8(kProcessor);
    entries.u8(static_cast<uint8_t>(i));         // local APIC ID
    entries.u8(kApicVersion);
    entries.u8(i == 0 ? 0x03 : 0x01);            // enabled, BSP for vCPU 0
    entries.u32(0x600);                          // CPU signature (family 6)
    entries.u32(0x201);                          // features: FPU, APIC
    entries.u32(0);
    entries.u32(0);
  }
  entries.u8(kBus), entries.u8(0), entries.str("ISA", 6), entry_count++;
  entries.u8(kIoapic), entries.u8(ioapic_id), entries.u8(kIoapicVersion), entries.u8(1);
  entries.u32(static_cast<uint32_t>(kIoapicAddress)), entry_count++;
  // ISA IRQ n -> IOAPIC pin n: KVM's in-kernel PIT raises GSI 0, which is pin 0.
  for (int irq = 0; irq < kIoapicPins; irq++, entry_count++) {
    entries.u8(kIoInterrupt), entries.u8(kInt), entries.u16(0), entries.u8(0);
    entries.u8(static_cast<uint8_t>(irq)), entries.u8(ioapic_id), entries.u8(static_cast<uint8_t>(irq));
  }
  // LINT0 = ExtINT (the PIC), LINT1 = NMI, on every local APIC (0xFF).
  entries.u8(kLocalInterrupt), entries.u8(kExtInt), entries.u16(0), entries.u8(0), entries.u8(0), entries.u8(0xFF), entries.u8(0), entry_count++;
  entries.u8(kLocalInterrupt), entries.u8(kNmi), entries.u16(0), entries.u8(0), entries.u8(0), entries.u8(0xFF), entries.u8(1), entry_count++;

  TableWriter config;
  config.str("PCMP", 4);
  config.u16(static_cast<uint16_t>(44 + entries.bytes.size()));
  config.u8(4);  // spec revision 1.4
  config.u8(0);  // checksum, filled below
  config.str("VMRUN", 8);
  config.str("MICROVM", 12);
  config.u32(0), config.u16(0);
  config.u16(entry_count);
  config.u32(static_cast<uint32_t>(kLapicAddress));
  config.u16(0), config.u8(0), config.u8(0);
  config.append(entries.bytes.data(), entries.bytes.size());
  config.bytes[7] = checksum(config.bytes.data(), config.bytes.size());

  TableWriter floating;
  floating.str("_MP_", 4);
  floating.u32(static_cast<uint32_t>(config_address));
  floating.u8(1), floating.u8(4), floating.u8(0);
  floating.u8(0), floating.u8(0), floating.u8(0), floating.u8(0), floating.u8(0);
  floating.bytes[10] = checksum(floating.bytes.data(), floating.bytes.size());

  if (16 + config.bytes.size() > 0xA0000 - kEbdaStart) throw VmrunError(ErrorCode::Internal, "MP table does not fit in the EBDA");
  if (!memory.write(kEbdaStart, floating.bytes.data(), floating.bytes.size()) ||
      !memory.write(config_address, config.bytes.data(), config.bytes.size()))
    throw VmrunError(ErrorCode::Usage, "guest memory is too small for the MP table");
}

}  // namespace vmrun::x86
