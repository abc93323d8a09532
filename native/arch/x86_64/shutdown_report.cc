#include "arch/x86_64/shutdown_report.h"

#include "common/hex.h"

namespace vmrun::x86 {

bool is_reset_state(const GeneralRegisters& regs, const PagingState& paging) {
  // SDM 10.1.1 / APM 14.1.3: EIP 0xfff0 (with CS base 0xffff0000), CR0.PE clear, no paging, EFER 0.
  return regs.rip == 0xFFF0 && !(paging.cr0 & kCr0Pe) && !(paging.cr0 & kCr0Pg) && paging.cr3 == 0 && paging.efer == 0;
}

std::string describe_shutdown(const GeneralRegisters& r, const PagingState& p) {
  if (is_reset_state(r, p)) {
    return "the guest triple-faulted (CPU shutdown); its registers were reset by the time vmrun read them (RIP 0xfff0 in real mode: "
           "KVM on AMD SVM re-initialises a vCPU after a shutdown), so where it faulted is not known here: "
           "KVM's kvm_exit trace event (reason shutdown) records the guest RIP";
  }
  std::string s = "the guest triple-faulted (CPU shutdown) at RIP " + hex(r.rip) + " (registers at the exit: rsp=" + hex(r.rsp) +
                  " rbp=" + hex(r.rbp) + " rflags=" + hex(r.rflags) + " rax=" + hex(r.rax) + " rbx=" + hex(r.rbx) + " rcx=" + hex(r.rcx) +
                  " rdx=" + hex(r.rdx) + " rsi=" + hex(r.rsi) + " rdi=" + hex(r.rdi) + " cr0=" + hex(p.cr0) + " cr3=" + hex(p.cr3) +
                  " cr4=" + hex(p.cr4) + " efer=" + hex(p.efer) + ")";
  return s;
}

}  // namespace vmrun::x86
