// Facts the addon owns that TypeScript also needs: the MEMORY_INDEX entry layout and
// the VMM's limits. Exported as plain objects so they are written once, in C++.
#pragma once
#include <napi.h>

namespace vmrun::binding {

/** { memoryIndexEntry: {bytes, ramOffset, dataOffset, compressedSize, pageCount, crc, bitmap}, memoryChunkBytes, pageBytes } */
Napi::Object layout_object(Napi::Env env);
/** { minMemoryBytes, maxMemoryBytes, maxCpus } */
Napi::Object limits_object(Napi::Env env);

}  // namespace vmrun::binding
