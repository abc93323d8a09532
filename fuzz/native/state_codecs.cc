// Fuzz target: the snapshot state codecs. Every blob is decoded by each component; one
// that decodes must encode back to the same bytes (the encodings are canonical), so a
// decoder that accepts more than the encoder writes is caught too.
#include <cstdlib>

#include "arch/aarch64/interrupt_state.h"
#include "backend/kvm/aarch64/vcpu_state_codec.h"
#include "backend/kvm/x86_64/vcpu_state_codec.h"
#include "common/error.h"
#include "devices/legacy/cmos_rtc_state.h"
#include "devices/legacy/uart_16550_state.h"
#include "hypercalls/guest_files_state.h"
#include "targets.h"

namespace vmrun::fuzz {

void state_codecs(const uint8_t* data, size_t size) {
  const StateBlob blob(data, data + size);
  try {
    if (encode_uart16550_state(decode_uart16550_state(blob, "uart0 state")) != blob) std::abort();
  } catch (const VmrunError&) {
  }
  try {
    if (encode_cmos_rtc_state(decode_cmos_rtc_state(blob, "cmos state")) != blob) std::abort();
  } catch (const VmrunError&) {
  }
  try {
    if (uhyve::encode_guest_files_state(uhyve::decode_guest_files_state(blob, "uhyve-files state")) != blob) std::abort();
  } catch (const VmrunError&) {
  }
  try {
    kvm::VcpuState s = kvm::decode_vcpu_state(blob);
    // The CPUID head's padding is not kept: compare what a second decode sees.
    kvm::VcpuState again = kvm::decode_vcpu_state(kvm::encode_vcpu_state(s));
    if (kvm::encode_vcpu_state(again) != kvm::encode_vcpu_state(s)) std::abort();
    kvm::plan_tsc(s.tsc_khz, 2'000'000, false);
  } catch (const VmrunError&) {
  }
  try {
    if (kvm::arm64::encode_vcpu_state(kvm::arm64::decode_vcpu_state(blob, "arm64 vCPU state")) != blob) std::abort();
  } catch (const VmrunError&) {
  }
  try {
    if (aarch64::encode_interrupt_state(aarch64::decode_interrupt_state(blob)) != blob) std::abort();
  } catch (const VmrunError&) {
  }
}

}  // namespace vmrun::fuzz

VMRUN_FUZZ_ENTRY(state_codecs)
