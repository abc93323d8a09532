// Facts the addon owns that TypeScript also needs: the MEMORY_INDEX entry layout, the
// VMM's limits and the machine type, which differ by architecture (vmm/platform.h).
// Exported as plain objects so they are written once, in C++.
#pragma once
#include <napi.h>

namespace vmrun::binding {

/** { memoryIndexEntry: {bytes, ramOffset, dataOffset, compressedSize, pageCount, crc, bitmap}, memoryChunkBytes, pageBytes } */
Napi::Object layout_object(Napi::Env env);
/** { minMemoryBytes, maxMemoryBytes, maxCpus, virtioDevices }: this architecture's machine's */
Napi::Object limits_object(Napi::Env env);
/** { type }: the machine this addon builds ("x86_64-pc", "arm64-virt"), which snapshots record */
Napi::Object machine_object(Napi::Env env);

}  // namespace vmrun::binding
