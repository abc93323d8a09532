// CRC-32C (Castagnoli), the checksum of every snapshot section and RAM chunk: the
// SSE4.2 instruction makes it cheap enough to verify on the restore path.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vmrun {

uint32_t crc32c(const void* data, size_t len, uint32_t crc = 0);

}  // namespace vmrun
