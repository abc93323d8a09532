// The uhyve hypercall interface, versions 1 and 2, exactly as Hermit kernels use it
// (notes/uhyve-abi.md): port numbers and parameter blocks. v1 blocks are packed
// (repr(C, packed) in uhyve-interface); v2 blocks are plain repr(C), so they keep
// natural alignment and padding. The static_asserts pin every offset the guest sees.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vmrun::uhyve {

/** v1: a port write whose 32-bit value is the guest-physical address of the block. */
namespace v1 {
constexpr uint16_t kWrite = 0x400;
constexpr uint16_t kOpen = 0x440;
constexpr uint16_t kClose = 0x480;
constexpr uint16_t kRead = 0x500;
constexpr uint16_t kExit = 0x540;
constexpr uint16_t kLseek = 0x580;
constexpr uint16_t kCmdsize = 0x740;
constexpr uint16_t kCmdval = 0x780;
constexpr uint16_t kUart = 0x800;  // the value written is the byte itself
constexpr uint16_t kUnlink = 0x840;
constexpr uint16_t kSerialWriteBuffer = 0x880;

/** How many argv / envp entries Cmdsize can describe. */
constexpr int kMaxArgcEnvc = 128;

/**
 * How many environment entries Cmdsize reports, the application's own first and
 * empty strings after them. Hermit kernels that read Cmdsize (up to 0.7; hermit-os/
 * kernel before 509a747f, 2024-06) allocate their envp array with envc + 1 slots but
 * never store the NULL that ends it: the slot after the last entry must already be
 * zero, which it only reliably is when the array is large enough to come from heap
 * never used before. uhyve always reports its whole host environment (usually dozens
 * of entries) and so gets that; with few entries the slot is a recycled heap word and
 * Rust's std faults in strlen (measured with uhyve's hello_world: 0 entries fault, 30+
 * and 120 run). Empty strings are skipped by Rust's std and by C's getenv.
 */
constexpr int kReportedEnvEntries = kMaxArgcEnvc;

#pragma pack(push, 1)
struct Write { int32_t fd; uint64_t buf; uint64_t len; };           // buf is guest-virtual
struct Open { uint64_t name; int32_t flags; int32_t mode; int32_t ret; };
struct Close { int32_t fd; int32_t ret; };
struct Read { int32_t fd; uint64_t buf; uint64_t len; int64_t ret; };  // buf is guest-virtual
struct Exit { int32_t code; };
struct Lseek { int32_t fd; int64_t offset; int32_t whence; };
struct Cmdsize { int32_t argc; int32_t argsz[kMaxArgcEnvc]; int32_t envc; int32_t envsz[kMaxArgcEnvc]; };
struct Cmdval { uint64_t argv; uint64_t envp; };
struct Unlink { uint64_t name; int32_t ret; };
struct SerialWriteBuffer { uint64_t buf; uint64_t len; };
#pragma pack(pop)

static_assert(sizeof(Write) == 20 && offsetof(Write, len) == 12);
static_assert(sizeof(Open) == 20 && offsetof(Open, ret) == 16);
static_assert(sizeof(Read) == 28 && offsetof(Read, ret) == 20);
static_assert(sizeof(Lseek) == 16 && offsetof(Lseek, whence) == 12);
static_assert(sizeof(Cmdsize) == 1032 && offsetof(Cmdsize, envc) == 516);
static_assert(sizeof(Unlink) == 12);
}  // namespace v1

/** v2: DX = the port, RDI = the block's guest-physical address (or the value itself). */
namespace v2 {
constexpr uint16_t kExit = 0x1010;               // RDI = exit code
constexpr uint16_t kSerialWriteByte = 0x1020;    // RDI = the byte
constexpr uint16_t kSerialWriteBuffer = 0x1030;
constexpr uint16_t kSerialReadByte = 0x1040;
constexpr uint16_t kSerialReadBuffer = 0x1050;
constexpr uint16_t kFileWrite = 0x1100;
constexpr uint16_t kFileOpen = 0x1110;   // v1::Open
constexpr uint16_t kFileClose = 0x1120;  // v1::Close
constexpr uint16_t kFileRead = 0x1130;
constexpr uint16_t kFileLseek = 0x1140;
constexpr uint16_t kFileUnlink = 0x1150;  // v1::Unlink
constexpr uint16_t kSharedMemOpen = 0x1200;
constexpr uint16_t kSharedMemClose = 0x1210;

struct ReadWrite { uint64_t len; int64_t ret; uint64_t buf; int32_t fd; };  // buf is guest-physical
struct Lseek { int64_t offset; uint32_t whence; int32_t fd; };
struct SerialWriteBuffer { uint64_t len; uint64_t buf; };
struct SerialReadBuffer { uint64_t maxlen; uint64_t len; uint64_t buf; };

static_assert(sizeof(ReadWrite) == 32 && offsetof(ReadWrite, buf) == 16 && offsetof(ReadWrite, fd) == 24);
static_assert(sizeof(Lseek) == 16 && offsetof(Lseek, fd) == 12);
static_assert(sizeof(SerialReadBuffer) == 24);
}  // namespace v2

/** Open flags uhyve lets through (Linux/Hermit values); everything else is dropped. */
constexpr int32_t kOpenRdonly = 0, kOpenWronly = 01, kOpenRdwr = 02, kOpenCreat = 0100, kOpenExcl = 0200,
                  kOpenTrunc = 01000, kOpenAppend = 02000, kOpenDirectory = 0200000;
constexpr int32_t kAllowedOpenFlags =
    kOpenRdonly | kOpenWronly | kOpenRdwr | kOpenCreat | kOpenExcl | kOpenTrunc | kOpenAppend | kOpenDirectory;

/** serial_port_base in the boot info: where the kernel sends console output. */
constexpr uint16_t serial_port_for_interface(uint32_t interface_version) {
  return interface_version >= 2 ? v2::kSerialWriteBuffer : v1::kUart;
}

}  // namespace vmrun::uhyve
