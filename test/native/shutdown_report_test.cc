// The stop message of a CPU shutdown (triple fault): the registers KVM hands back, or,
// when those are the reset state (KVM on AMD SVM re-initialises the vCPU on a
// shutdown), a message that does not pass the reset vector off as the place of the fault.
#include "arch/x86_64/shutdown_report.h"
#include "check.h"

using namespace vmrun::x86;

namespace {

// What KVM's INIT leaves: real mode at f000:fff0, CR0 = CD | NW | ET, no paging, EFER 0.
GeneralRegisters reset_regs() {
  GeneralRegisters g{};
  g.rip = 0xFFF0;
  g.rflags = 0x2;
  g.rdx = 0x00A00F11;  // the CPU signature
  return g;
}
constexpr PagingState kResetPaging{0x60000010, 0, 0, 0};

// A 64-bit kernel in the middle of something.
GeneralRegisters long_mode_regs() {
  GeneralRegisters g{};
  g.rip = 0xFFFFFFFF81001234ULL;
  g.rsp = 0xFFFFC90000003F58ULL;
  g.rflags = 0x10046;
  g.rbx = 0x7472697066756C74ULL;
  return g;
}
constexpr PagingState kLongModePaging{0x80050033, 0x2A0C000, 0x3506F0, 0xD01};

}  // namespace

TEST("shutdown report: the reset state is recognised, and only it") {
  CHECK(is_reset_state(reset_regs(), kResetPaging));
  CHECK(!is_reset_state(long_mode_regs(), kLongModePaging));
  // Real mode elsewhere (a guest that faulted before leaving real mode) is not a reset.
  GeneralRegisters elsewhere = reset_regs();
  elsewhere.rip = 0x7C00;
  CHECK(!is_reset_state(elsewhere, kResetPaging));
  // Protected mode at 0xfff0 is not a reset either.
  CHECK(!is_reset_state(reset_regs(), PagingState{0x11, 0, 0, 0}));
}

TEST("shutdown report: after a reset, no RIP is named as the place of the fault") {
  const std::string m = describe_shutdown(reset_regs(), kResetPaging);
  CHECK(m.find("triple-faulted") != std::string::npos);
  CHECK(m.find("at RIP 0xfff0") == std::string::npos);
  CHECK(m.find("reset") != std::string::npos);
  CHECK(m.find("kvm_exit") != std::string::npos);
  CHECK(m.find('\n') == std::string::npos);
}

TEST("shutdown report: registers kept at the exit are all in the one-line message") {
  const std::string m = describe_shutdown(long_mode_regs(), kLongModePaging);
  CHECK(m.find("triple-faulted (CPU shutdown) at RIP 0xffffffff81001234") != std::string::npos);
  CHECK(m.find("rsp=0xffffc90000003f58") != std::string::npos);
  CHECK(m.find("rbx=0x7472697066756c74") != std::string::npos);
  CHECK(m.find("cr3=0x2a0c000") != std::string::npos);
  CHECK(m.find("efer=0xd01") != std::string::npos);
  CHECK(m.find('\n') == std::string::npos);
}
