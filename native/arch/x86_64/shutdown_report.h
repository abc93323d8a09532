// What a CPU shutdown (triple fault) exit tells about where the guest was, for the
// stop message. KVM on Intel (VMX) leaves the registers as they were at the shutdown;
// KVM on AMD (SVM) re-initialises the vCPU on the SHUTDOWN intercept (the VMCB is
// undefined after one), so the registers read afterwards are the reset state
// (RIP 0xfff0, real mode) and say nothing about the fault: the message must say so
// instead of naming 0xfff0 as the place of the fault.
#pragma once
#include <string>

#include "arch/x86_64/cpu_state.h"

namespace vmrun::x86 {

/** Whether these are an x86 CPU's registers right after RESET/INIT (real mode at 0xfff0). */
bool is_reset_state(const GeneralRegisters& regs, const PagingState& paging);

/**
 * The stop message of a shutdown exit: the registers read at the exit, on one line, or,
 * when they are the reset state, that the state at the fault was lost and how to find it.
 */
std::string describe_shutdown(const GeneralRegisters& regs, const PagingState& paging);

}  // namespace vmrun::x86
