// Fuzz target: a snapshot's MEMORY_INDEX and MEMORY_DATA as the RAM-image builder reads
// them. Input: one byte for the RAM size (1..8 chunks of 2 MiB), one for the entry
// count, that many 96-byte entries, and the rest is the memory data. A valid index is
// then expanded chunk by chunk into an image of the RAM size.
#include <cstring>
#include <vector>

#include "common/error.h"
#include "snapshot/memory_image.h"
#include "targets.h"

namespace vmrun::fuzz {

void memory_index(const uint8_t* data, size_t size) {
  if (size < 2) return;
  const uint64_t ram_size = (1 + data[0] % 8) * kChunkBytes;
  const size_t count = data[1];
  data += 2, size -= 2;
  if (size < count * sizeof(MemoryChunk)) return;
  std::vector<MemoryChunk> chunks(count);
  if (count) std::memcpy(chunks.data(), data, count * sizeof(MemoryChunk));
  const uint8_t* frames = data + count * sizeof(MemoryChunk);
  const uint64_t data_length = size - count * sizeof(MemoryChunk);
  try {
    validate_memory_index(chunks, ram_size, data_length);
  } catch (const VmrunError&) {
    return;
  }
  static std::vector<uint8_t> image;
  image.assign(ram_size, 0);
  for (const auto& c : chunks) expand_memory_chunk(c, frames + c.data_offset, image.data());
}

}  // namespace vmrun::fuzz

VMRUN_FUZZ_ENTRY(memory_index)
