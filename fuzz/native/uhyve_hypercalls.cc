// Fuzz target: uhyve hypercalls as a hostile Hermit guest makes them. The input picks
// the hypercall and its argument (a parameter block's guest-physical address, or v2's
// RDI), says whether the guest pages, and fills guest RAM from 0x1000 on: the parameter
// blocks, the buffers they point at and, with paging on, the page tables (CR3 = 0x1000).
#include <cstring>

#include "arch/x86_64/vcpu.h"
#include "common/error.h"
#include "devices/console_input.h"
#include "devices/console_output.h"
#include "hypercalls/uhyve_abi.h"
#include "hypercalls/uhyve_hypercalls.h"
#include "memory/guest_memory.h"
#include "targets.h"

namespace vmrun::fuzz {

namespace {

constexpr uint64_t kRamSize = 2ULL << 20;
constexpr uint64_t kFilledFrom = 0x1000;
const uint16_t kPorts[] = {
    uhyve::v1::kWrite, uhyve::v1::kOpen, uhyve::v1::kClose, uhyve::v1::kRead, uhyve::v1::kExit, uhyve::v1::kLseek,
    uhyve::v1::kCmdsize, uhyve::v1::kCmdval, uhyve::v1::kUart, uhyve::v1::kUnlink, uhyve::v1::kSerialWriteBuffer,
    uhyve::v2::kExit, uhyve::v2::kSerialWriteByte, uhyve::v2::kSerialWriteBuffer, uhyve::v2::kSerialReadByte,
    uhyve::v2::kSerialReadBuffer, uhyve::v2::kFileWrite, uhyve::v2::kFileOpen, uhyve::v2::kFileClose,
    uhyve::v2::kFileRead, uhyve::v2::kFileLseek, uhyve::v2::kFileUnlink, uhyve::v2::kSharedMemOpen, uhyve::v2::kSharedMemClose,
};

/** A vCPU that is only registers: what the hypercall handler reads and writes. */
class RegistersOnlyVcpu : public X86Vcpu {
 public:
  x86::GeneralRegisters regs{};
  x86::PagingState paging{};
  int index() const override { return 0; }
  VcpuExit run() override { return {}; }
  void kick() override {}
  void clear_kick() override {}
  VcpuExit complete_pending_io() override { return {}; }
  void bind_to_current_thread() override {}
  void set_start_state(const x86::StartState&) override {}
  x86::GeneralRegisters general_registers() override { return regs; }
  void set_general_registers(const x86::GeneralRegisters& r) override { regs = r; }
  x86::PagingState paging_state() override { return paging; }
  StateBlob save_state() override { return {}; }
  std::unique_ptr<LoadedVcpuState> load_state(const StateBlob&) override { return nullptr; }
  void restore_state(const LoadedVcpuState&) override {}
};

struct NoStop : VmControl {
  void request_stop(const StopRequest&) override {}
};

}  // namespace

void uhyve_hypercalls(const uint8_t* data, size_t size) {
  static GuestMemory memory = GuestMemory::anonymous(kRamSize);
  if (size < 10) return;
  const uint16_t port = kPorts[data[0] % (sizeof kPorts / sizeof kPorts[0])];
  const bool paging = data[0] & 0x80;
  uint64_t argument;
  std::memcpy(&argument, data + 1, 8);
  // Mostly addresses near the filled bytes, sometimes anything at all.
  if (!(data[9] & 1)) argument = kFilledFrom + argument % (kRamSize - kFilledFrom + 64);
  data += 10, size -= 10;
  size = std::min<size_t>(size, kRamSize - kFilledFrom);
  std::memset(memory.host_base(), 0, kRamSize);
  std::memcpy(memory.host_base() + kFilledFrom, data, size);

  NoStop control;
  ConsoleOutput console([](std::vector<uint8_t>&&) {});
  uhyve::GuestProgram program{{"/fuzz/kernel", "arg"}, {"K=V"}};
  // No mappings: files the guest creates go to a private directory removed afterwards.
  uhyve::UhyveHypercalls calls(memory, control, console, std::make_shared<ConsoleInput>(),
                               std::make_unique<uhyve::GuestFiles>(std::vector<uhyve::FileMapping>{}), program);
  RegistersOnlyVcpu vcpu;
  vcpu.regs.rdi = argument;
  if (paging) vcpu.paging = {x86::kCr0Pe | (1ULL << 31), kFilledFrom, 1ULL << 5, (1ULL << 8) | (1ULL << 10)};
  uint8_t value[4];
  uint32_t v32 = static_cast<uint32_t>(argument);
  std::memcpy(value, &v32, 4);
  VcpuExit exit;
  exit.kind = VcpuExit::Kind::PortIo;
  exit.port = port;
  exit.size = 4;
  exit.count = 1;
  exit.is_write = port != uhyve::v2::kSerialReadByte;
  exit.data = value;
  try {
    calls.handle(vcpu, exit);
  } catch (const VmrunError&) {
  }
}

}  // namespace vmrun::fuzz

VMRUN_FUZZ_ENTRY(uhyve_hypercalls)
