// Guest RAM in a snapshot: independently decompressible zstd chunks, each covering a
// 2 MiB stretch of RAM with a bitmap of the pages it holds; all-zero and never-touched
// pages are omitted. Saving compresses chunks on every core; restoring expands them
// once into a sparse raw image that VMs then map copy-on-write (Firecracker's
// MAP_PRIVATE approach), so later restores touch no compressed data at all.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "memory/guest_memory.h"

namespace vmrun {

constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kChunkPages = 512;  // 2 MiB of RAM per chunk
constexpr uint64_t kChunkBytes = kChunkPages * kPageSize;

/** One chunk's entry in the MEMORY_INDEX section (little-endian, 96 bytes on disk). */
struct MemoryChunk {
  uint64_t ram_offset;       // offset of the chunk's first page in the RAM image
  uint64_t data_offset;      // offset of its zstd frame in the MEMORY_DATA section
  uint32_t compressed_size;
  uint32_t page_count;       // pages present (= bits set in the bitmap)
  uint32_t crc;              // CRC-32C of the compressed frame
  uint32_t reserved;
  uint64_t bitmap[kChunkPages / 64];
};
static_assert(sizeof(MemoryChunk) == 96, "MemoryChunk is part of the file format");

/** The non-zero pages of guest RAM, copied out while the guest is paused. */
struct RamCapture {
  std::vector<MemoryChunk> chunks;       // bitmaps and ram_offset filled, sizes not yet
  std::unique_ptr<uint8_t[]> pages;      // the pages of every chunk, back to back (when copied; not zero-filled)
  std::vector<uint64_t> chunk_page_start;  // index into `pages` (in pages) per chunk
  uint64_t touched_pages = 0;            // resident pages examined
  bool copied = false;
};

/**
 * Finds the pages worth saving (resident per mincore, and not all zero). With `copy`,
 * copies them so the guest may run on while they are compressed.
 */
RamCapture capture_ram(const GuestMemory& memory, bool copy);

/** Compresses the captured chunks on every core and writes them to `fd` at `offset`. Returns bytes written. */
uint64_t write_ram_chunks(RamCapture& capture, const GuestMemory& memory, int fd, uint64_t offset, int zstd_level);

/**
 * Refuses (VmrunError Snapshot, naming the chunk) an index whose entries are not in
 * RAM order, overlap, lie beyond `ram_size`, disagree with their bitmaps, or point
 * outside the `data_length` bytes of MEMORY_DATA. Pure: the fuzz targets call it.
 */
void validate_memory_index(const std::vector<MemoryChunk>& chunks, uint64_t ram_size, uint64_t data_length);
/**
 * Checks one validated chunk's compressed `frame` (its compressed_size bytes: CRC,
 * size) and copies its pages into `image` (ram_size bytes). Returns nullptr, or why
 * the chunk is refused.
 */
const char* expand_memory_chunk(const MemoryChunk& chunk, const uint8_t* frame, uint8_t* image);

/**
 * Expands chunks from a snapshot file (read through `snapshot_fd`, which the caller
 * opened and checked; `snapshot_name` names it in errors) into a sparse raw RAM image:
 * written to `temp_path` (created exclusively; the caller picks a name no other
 * builder uses) and renamed to `cache_path`. Each chunk's size and CRC are verified.
 * Builders of one image exclude each other with an flock on `cache_path` + ".lock":
 * one that finds the image in place once it holds the lock builds nothing and
 * returns false, so concurrent first restores expand it once and share one inode.
 */
bool build_ram_image(int snapshot_fd, const std::string& snapshot_name, uint64_t data_offset, uint64_t data_length,
                     const std::vector<MemoryChunk>& chunks, uint64_t ram_size, const std::string& temp_path,
                     const std::string& cache_path);

}  // namespace vmrun
