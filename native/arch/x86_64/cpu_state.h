// The architectural x86_64 vCPU state a loader asks for at boot: plain data, no KVM
// types, so loaders stay independent of the backend that applies it.
#pragma once
#include <cstdint>

namespace vmrun::x86 {

struct Segment {
  uint64_t base = 0;
  uint32_t limit = 0;
  uint16_t selector = 0;
  uint8_t type = 0, present = 0, dpl = 0, db = 0, s = 0, l = 0, g = 0, avl = 0;
};

/** Registers a vCPU starts with: long mode with paging, as both Linux and Hermit expect. */
struct StartState {
  uint64_t rip = 0, rsp = 0, rsi = 0, rdi = 0, rflags = 2;
  uint64_t cr0 = 0, cr3 = 0, cr4 = 0, efer = 0;
  Segment cs, ds, es, fs, gs, ss, tr, ldt;
  uint64_t gdt_base = 0;
  uint16_t gdt_limit = 0;
  uint64_t idt_base = 0;
  uint16_t idt_limit = 0;
};

/** The general registers the VMM reads at an exit (hypercall arguments). */
struct GeneralRegisters {
  uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8, r9, r10, r11, r12, r13, r14, r15, rip, rflags;
};

/** The control registers needed to walk the guest's page tables. */
struct PagingState {
  uint64_t cr0, cr3, cr4, efer;
};

// Architectural constants used by the start state.
constexpr uint64_t kCr0Pe = 1ULL << 0;
constexpr uint64_t kCr0Mp = 1ULL << 1;
constexpr uint64_t kCr0Et = 1ULL << 4;
constexpr uint64_t kCr0Ne = 1ULL << 5;
constexpr uint64_t kCr0Pg = 1ULL << 31;
constexpr uint64_t kCr4Pae = 1ULL << 5;
constexpr uint64_t kEferLme = 1ULL << 8;
constexpr uint64_t kEferLma = 1ULL << 10;
constexpr uint64_t kEferNxe = 1ULL << 11;

/** Builds a segment from a GDT descriptor, the way the CPU caches it on load. */
Segment segment_from_descriptor(uint64_t descriptor, uint16_t selector);

}  // namespace vmrun::x86
