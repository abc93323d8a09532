// What a Hermit guest's host files are at a snapshot: the guest's open descriptors
// (a mapped file by the guest path it was opened with, its open flags, its offset,
// and what the host file was then, so a restore can refuse a file that changed) and
// its private files, copied whole (they live in a directory removed with the VM).
// Decoded once into this struct; a snapshot file is untrusted, so every count,
// length and name is bounded here and checked again when the state is applied.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "devices/device.h"

namespace vmrun::uhyve {

struct GuestFilesState {
  static constexpr uint32_t kVersion = 1;
  /**
   * The private files' bytes a snapshot keeps: they are a device state section,
   * which a reader bounds at 16 MiB (src/snapshot/format.ts LIMITS.stateBytes).
   * Exported to TypeScript.
   */
  static constexpr uint64_t kMaxSavedTempBytes = 12ULL << 20;
  static constexpr size_t kMaxPath = 4096;

  /** One of the guest's private files (outside every mapping). */
  struct TempFile {
    std::string name;  // its name in the private directory ("file-N"); "" if unlinked but still open
    uint32_t mode = 0600;
    std::vector<uint8_t> content;
  };
  /** One open guest descriptor. */
  struct OpenFile {
    int32_t guest_fd = -1;
    bool temporary = false;
    uint32_t temp_index = 0;  // temporary: which TempFile
    std::string guest_path;   // mapped: the normalised guest path it was opened by
    int32_t flags = 0;        // its open flags as the guest gave them (masked), creation bits kept for the record
    int64_t offset = 0;
    // Mapped: the host file at the save; a restore refuses a file that differs.
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    uint64_t inode = 0;
  };

  int32_t next_fd = 3;
  uint64_t temp_counter = 0;
  /** Named private files: normalised guest path -> TempFile index. */
  std::vector<std::pair<std::string, uint32_t>> temp_names;
  std::vector<TempFile> temp_files;
  std::vector<OpenFile> open_files;
};

StateBlob encode_guest_files_state(const GuestFilesState& state);
/** Throws VmrunError(Snapshot) naming `what` for anything malformed or out of bounds. */
GuestFilesState decode_guest_files_state(const StateBlob& blob, const std::string& what);

}  // namespace vmrun::uhyve
