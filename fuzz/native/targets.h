// The native fuzz targets: one function per parser of untrusted bytes. Each file also
// defines LLVMFuzzerTestOneInput when built for libFuzzer (VMRUN_LIBFUZZER); the C++ unit
// tests (test/native/corpus_test.cc) link the same functions and replay every committed
// input under fuzz/corpus/<target>/, so a crash once found stays a regression test.
// A target returns normally for input the parser refuses (VmrunError) and aborts on
// anything else: a crash, a sanitizer report, or a broken round-trip invariant.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vmrun::fuzz {

/** Component state blobs of a snapshot: UART, CMOS, vCPU (native/common/state_codec.h). */
void state_codecs(const uint8_t* data, size_t size);
/** Kernel files: format detection, the Linux boot protocol, Hermit ELF images. */
void kernel_loaders(const uint8_t* data, size_t size);
/** uhyve hypercall parameter blocks in guest RAM (v1 and v2), with guest page tables. */
void uhyve_hypercalls(const uint8_t* data, size_t size);
/** A snapshot's MEMORY_INDEX and the zstd frames it points at. */
void memory_index(const uint8_t* data, size_t size);
/** Bytes a debugger sends the gdb stub: packet framing, checksums, escapes. */
void gdb_packets(const uint8_t* data, size_t size);
/** virtio-net receive rings a hostile driver writes: descriptors, available ring, indexes near the wrap. */
void virtio_net_rx(const uint8_t* data, size_t size);

}  // namespace vmrun::fuzz

#ifdef VMRUN_LIBFUZZER
#define VMRUN_FUZZ_ENTRY(target)                                               \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {  \
    vmrun::fuzz::target(data, size);                                           \
    return 0;                                                                  \
  }
#else
#define VMRUN_FUZZ_ENTRY(target)
#endif
