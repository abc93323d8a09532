// Linux's struct boot_params ("the zero page") as offsets into a 4 KiB page, from
// Documentation/arch/x86/zero-page.rst and boot.rst. Offsets, not a packed struct,
// so nothing depends on the compiler's layout of someone else's ABI.
#pragma once
#include <cstdint>
#include <cstring>

namespace vmrun::linux_boot {

constexpr size_t kZeroPageSize = 4096;

// boot_params
constexpr size_t kExtRamdiskImage = 0x0C0;
constexpr size_t kExtRamdiskSize = 0x0C4;
constexpr size_t kExtCmdLinePtr = 0x0C8;
constexpr size_t kE820Entries = 0x1E8;
constexpr size_t kSentinel = 0x1EF;
constexpr size_t kE820Table = 0x2D0;
constexpr size_t kE820MaxEntries = 128;
constexpr size_t kE820EntrySize = 20;

// setup_header (starts at 0x1F1)
constexpr size_t kSetupHeader = 0x1F1;
constexpr size_t kSetupSects = 0x1F1;
constexpr size_t kSysSize = 0x1F4;
constexpr size_t kBootFlag = 0x1FE;
constexpr size_t kJump = 0x200;  // the byte at 0x201 gives the header's length
constexpr size_t kHeaderMagic = 0x202;
constexpr size_t kVersion = 0x206;
constexpr size_t kTypeOfLoader = 0x210;
constexpr size_t kLoadFlags = 0x211;
constexpr size_t kCode32Start = 0x214;
constexpr size_t kRamdiskImage = 0x218;
constexpr size_t kRamdiskSize = 0x21C;
constexpr size_t kHeapEndPtr = 0x224;
constexpr size_t kCmdLinePtr = 0x228;
constexpr size_t kInitrdAddrMax = 0x22C;
constexpr size_t kKernelAlignment = 0x230;
constexpr size_t kRelocatableKernel = 0x234;
constexpr size_t kXLoadFlags = 0x236;
constexpr size_t kCmdlineSize = 0x238;
constexpr size_t kPrefAddress = 0x258;
constexpr size_t kInitSize = 0x260;

constexpr uint8_t kLoadedHigh = 0x01;
constexpr uint8_t kCanUseHeap = 0x80;
constexpr uint16_t kXlfKernel64 = 0x01;
constexpr uint8_t kLoaderTypeUndefined = 0xFF;
constexpr uint32_t kE820Ram = 1;
constexpr uint32_t kE820Reserved = 2;

template <typename T>
T get(const uint8_t* page, size_t offset) {
  T v;
  std::memcpy(&v, page + offset, sizeof(T));
  return v;
}

template <typename T>
void put(uint8_t* page, size_t offset, T v) {
  std::memcpy(page + offset, &v, sizeof(T));
}

}  // namespace vmrun::linux_boot
