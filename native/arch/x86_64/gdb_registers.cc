#include "arch/x86_64/gdb_registers.h"

#include <cstring>

namespace vmrun::x86 {

namespace {

// Where each register lives in a DebugRegisterFile and how wide GDB sees it.
struct Slot {
  size_t size;
  void* (*where)(DebugRegisterFile&, int);
};

void* gpr(DebugRegisterFile& f, int n) { return &f.gpr[n]; }
void* rip(DebugRegisterFile& f, int) { return &f.rip; }
void* rflags(DebugRegisterFile& f, int) { return &f.rflags; }
void* fpu_control(DebugRegisterFile& f, int n) {
  uint32_t* regs[] = {&f.fctrl, &f.fstat, &f.ftag, &f.fiseg, &f.fioff, &f.foseg, &f.fooff, &f.fop};
  return regs[n - 32];
}

Slot slot(int n) {
  if (n >= 0 && n < 16) return {8, gpr};
  if (n == kGdbRipRegister) return {8, rip};
  if (n == kGdbEflagsRegister) return {4, rflags};
  if (n >= 18 && n < 24) return {4, nullptr};  // segment selectors: 16 bits in a 32-bit slot
  if (n >= 24 && n < 32) return {10, [](DebugRegisterFile& f, int i) -> void* { return f.st[i - 24]; }};
  if (n >= 32 && n < 40) return {4, fpu_control};
  if (n >= 40 && n < 56) return {16, [](DebugRegisterFile& f, int i) -> void* { return f.xmm[i - 40]; }};
  if (n == 56) return {4, [](DebugRegisterFile& f, int) -> void* { return &f.mxcsr; }};
  if (n == 57) return {8, [](DebugRegisterFile& f, int) -> void* { return &f.fs_base; }};
  if (n == 58) return {8, [](DebugRegisterFile& f, int) -> void* { return &f.gs_base; }};
  return {0, nullptr};
}

}  // namespace

size_t gdb_register_size(int n) { return slot(n).size; }

size_t gdb_register_file_size() {
  size_t total = 0;
  for (int n = 0; n < kGdbRegisterCount; n++) total += gdb_register_size(n);
  return total;
}

void read_gdb_register(const DebugRegisterFile& f, int n, uint8_t* out) {
  Slot s = slot(n);
  if (!s.size) return;
  if (n >= 18 && n < 24) {
    uint32_t v = f.selector[n - 18];
    std::memcpy(out, &v, 4);
    return;
  }
  // Little-endian host: the low bytes of a wider field are the register's (eflags is 32 bits).
  std::memcpy(out, s.where(const_cast<DebugRegisterFile&>(f), n), s.size);
}

void write_gdb_register(DebugRegisterFile& f, int n, const uint8_t* in) {
  Slot s = slot(n);
  if (!s.size) return;
  if (n >= 18 && n < 24) {
    uint32_t v;
    std::memcpy(&v, in, 4);
    f.selector[n - 18] = static_cast<uint16_t>(v);
    return;
  }
  if (n == kGdbEflagsRegister) {
    uint32_t v;
    std::memcpy(&v, in, 4);
    f.rflags = v;
    return;
  }
  std::memcpy(s.where(f, n), in, s.size);
}

const std::string& gdb_target_xml() {
  static const std::string xml = [] {
    std::string x =
        "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\">"
        "<target version=\"1.0\"><architecture>i386:x86-64</architecture>"
        "<feature name=\"org.gnu.gdb.i386.core\">"
        "<flags id=\"i386_eflags\" size=\"4\">"
        "<field name=\"CF\" start=\"0\" end=\"0\"/><field name=\"\" start=\"1\" end=\"1\"/>"
        "<field name=\"PF\" start=\"2\" end=\"2\"/><field name=\"AF\" start=\"4\" end=\"4\"/>"
        "<field name=\"ZF\" start=\"6\" end=\"6\"/><field name=\"SF\" start=\"7\" end=\"7\"/>"
        "<field name=\"TF\" start=\"8\" end=\"8\"/><field name=\"IF\" start=\"9\" end=\"9\"/>"
        "<field name=\"DF\" start=\"10\" end=\"10\"/><field name=\"OF\" start=\"11\" end=\"11\"/>"
        "<field name=\"NT\" start=\"14\" end=\"14\"/><field name=\"RF\" start=\"16\" end=\"16\"/>"
        "<field name=\"VM\" start=\"17\" end=\"17\"/><field name=\"AC\" start=\"18\" end=\"18\"/>"
        "<field name=\"VIF\" start=\"19\" end=\"19\"/><field name=\"VIP\" start=\"20\" end=\"20\"/>"
        "<field name=\"ID\" start=\"21\" end=\"21\"/></flags>";
    const char* gprs[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"};
    for (int i = 0; i < 16; i++) {
      const char* type = i == 6 || i == 7 ? "data_ptr" : "int64";
      x += std::string("<reg name=\"") + gprs[i] + "\" bitsize=\"64\" type=\"" + type + "\" regnum=\"" + std::to_string(i) + "\"/>";
    }
    x += "<reg name=\"rip\" bitsize=\"64\" type=\"code_ptr\"/><reg name=\"eflags\" bitsize=\"32\" type=\"i386_eflags\"/>";
    for (const char* s : {"cs", "ss", "ds", "es", "fs", "gs"}) x += std::string("<reg name=\"") + s + "\" bitsize=\"32\" type=\"int32\"/>";
    for (int i = 0; i < 8; i++) x += "<reg name=\"st" + std::to_string(i) + "\" bitsize=\"80\" type=\"i387_ext\"/>";
    for (const char* s : {"fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"})
      x += std::string("<reg name=\"") + s + "\" bitsize=\"32\" type=\"int\" group=\"float\"/>";
    x +=
        "</feature><feature name=\"org.gnu.gdb.i386.sse\">"
        "<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/><vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>"
        "<vector id=\"v16i8\" type=\"int8\" count=\"16\"/><vector id=\"v8i16\" type=\"int16\" count=\"8\"/>"
        "<vector id=\"v4i32\" type=\"int32\" count=\"4\"/><vector id=\"v2i64\" type=\"int64\" count=\"2\"/>"
        "<union id=\"vec128\"><field name=\"v4_float\" type=\"v4f\"/><field name=\"v2_double\" type=\"v2d\"/>"
        "<field name=\"v16_int8\" type=\"v16i8\"/><field name=\"v8_int16\" type=\"v8i16\"/>"
        "<field name=\"v4_int32\" type=\"v4i32\"/><field name=\"v2_int64\" type=\"v2i64\"/>"
        "<field name=\"uint128\" type=\"uint128\"/></union>";
    for (int i = 0; i < 16; i++) x += "<reg name=\"xmm" + std::to_string(i) + "\" bitsize=\"128\" type=\"vec128\" regnum=\"" + std::to_string(40 + i) + "\"/>";
    x +=
        "<reg name=\"mxcsr\" bitsize=\"32\" type=\"int\" group=\"vector\"/></feature>"
        "<feature name=\"org.gnu.gdb.i386.segments\">"
        "<reg name=\"fs_base\" bitsize=\"64\" type=\"int\"/><reg name=\"gs_base\" bitsize=\"64\" type=\"int\"/>"
        "</feature></target>";
    return x;
  }();
  return xml;
}

}  // namespace vmrun::x86
