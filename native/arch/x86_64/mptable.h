// An Intel MultiProcessor Specification 1.4 table in the EBDA: the processors, one
// ISA bus, the IOAPIC and its interrupt routing, and LINT0/LINT1. It is how Linux
// finds the other vCPUs and the IOAPIC on a machine without ACPI.
#pragma once
#include "memory/guest_memory.h"

namespace vmrun::x86 {

/** Writes the MP floating pointer and configuration table at kEbdaStart. */
void write_mp_table(const GuestMemory& memory, int cpu_count);

/** Upper bound on vCPUs the table (in the 1 KiB below 640 KiB) can describe. */
constexpr int kMaxMpTableCpus = 32;

}  // namespace vmrun::x86
