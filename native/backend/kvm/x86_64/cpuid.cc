#include "backend/kvm/x86_64/cpuid.h"

#include <cpuid.h>
#include <cstring>

#include <cstdint>

namespace vmrun::kvm {

bool host_uses_svm() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return false;
  char vendor[13];
  std::memcpy(vendor, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  vendor[12] = '\0';
  return std::strcmp(vendor, "AuthenticAMD") == 0 || std::strcmp(vendor, "HygonGenuine") == 0;
}


void patch_cpuid_for_vcpu(std::vector<kvm_cpuid_entry2>& entries, int index, int count) {
  const uint32_t apic_id = static_cast<uint32_t>(index);
  for (auto& e : entries) {
    switch (e.function) {
      case 1:
        // EBX[31:24] initial APIC ID, EBX[23:16] logical processors per package.
        e.ebx = (e.ebx & 0x0000FFFF) | (apic_id << 24) | (static_cast<uint32_t>(count) << 16);
        e.ecx |= 1u << 31;  // hypervisor present
        if (count > 1) e.edx |= 1u << 28;  // HTT: the count in EBX is valid
        break;
      case 0xB:
      case 0x1F:
        // Extended topology: one thread per core, `count` cores; EDX is the x2APIC ID.
        e.edx = apic_id;
        if (e.index == 0) {
          e.eax = 0;
          e.ebx = 1;
          e.ecx = (e.ecx & ~0xFFFFu) | (1u << 8);
        } else if (e.index == 1) {
          uint32_t shift = 0;
          while ((1u << shift) < static_cast<uint32_t>(count)) shift++;
          e.eax = shift;
          e.ebx = static_cast<uint32_t>(count);
          e.ecx = (e.ecx & ~0xFFFFu) | (2u << 8) | 1;
        } else {
          e.eax = e.ebx = 0;
          e.ecx = e.index;
        }
        break;
      case 6:
        e.ecx &= ~(1u << 3);  // no energy-performance bias: nothing to back it
        break;
      case 0xA:
        e.eax = 0;  // no architectural PMU: the guest must not program counters
        break;
      default:
        break;
    }
  }
}

}  // namespace vmrun::kvm
