// x86_64 registers as GDB's i386:x86-64 target numbers and sizes them (the g/G/p/P
// packets), and the target description (target.xml) that names that layout: GDB's
// org.gnu.gdb.i386.core, .sse and .segments features.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace vmrun::x86 {

/** Everything a debugger sees of one vCPU: plain data, filled and applied by the backend. */
struct DebugRegisterFile {
  uint64_t gpr[16] = {};  // GDB's order: rax rbx rcx rdx rsi rdi rbp rsp r8..r15
  uint64_t rip = 0;
  uint64_t rflags = 0;
  uint16_t selector[6] = {};  // cs ss ds es fs gs
  uint64_t fs_base = 0, gs_base = 0;
  uint8_t st[8][10] = {};  // x87 registers, 80-bit
  uint32_t fctrl = 0, fstat = 0, ftag = 0, fiseg = 0, fioff = 0, foseg = 0, fooff = 0, fop = 0;
  uint8_t xmm[16][16] = {};
  uint32_t mxcsr = 0;
};

/** Registers GDB numbers 0..kGdbRegisterCount-1 (the last two are fs_base, gs_base). */
constexpr int kGdbRegisterCount = 59;
constexpr int kGdbRipRegister = 16;
constexpr int kGdbEflagsRegister = 17;
constexpr int kGdbFirstSegmentRegister = 18;  // cs; ss ds es fs gs follow

/** Size in bytes of register `n` in the g packet (0 for a number GDB does not use). */
size_t gdb_register_size(int n);
/** Copies register `n` (little-endian, gdb_register_size bytes) to `out`. */
void read_gdb_register(const DebugRegisterFile& f, int n, uint8_t* out);
/** Sets register `n` from gdb_register_size bytes. */
void write_gdb_register(DebugRegisterFile& f, int n, const uint8_t* in);
/** Bytes of the whole g packet (all registers in order). */
size_t gdb_register_file_size();

/** The target description GDB reads with qXfer:features:read:target.xml. */
const std::string& gdb_target_xml();

}  // namespace vmrun::x86
