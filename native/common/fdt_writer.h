// A small flattened-device-tree (DTB, version 17) writer: header, an empty memory
// reservation map, the structure block and a deduplicated strings block, all
// big-endian as the format requires. Enough for the tree uhyve hands Hermit kernels
// and for the arm64 machine's tree (arch/aarch64/device_tree.h).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vmrun::fdt {

class FdtWriter {
 public:
  FdtWriter();
  /** Opens a node; the root node's name is "". */
  void begin_node(const std::string& name);
  void end_node();
  void property(const std::string& name, const std::vector<uint8_t>& value);
  /** A NUL-terminated string property. */
  void property_string(const std::string& name, const std::string& value);
  /** A string-list property: each string NUL-terminated, back to back. */
  void property_strings(const std::string& name, const std::vector<std::string>& values);
  void property_u32(const std::string& name, uint32_t value);
  void property_u64s(const std::string& name, const std::vector<uint64_t>& values);
  /** A list of 32-bit cells (interrupts, reg with #address-cells = 1...). */
  void property_u32s(const std::string& name, const std::vector<uint32_t>& values);
  /** A property with no value (a flag such as interrupt-controller). */
  void property_empty(const std::string& name) { property(name, {}); }
  /** The finished blob; every begin_node must have been closed. */
  std::vector<uint8_t> finish();

 private:
  void token(uint32_t t);
  void pad_structure();
  uint32_t string_offset(const std::string& name);
  std::vector<uint8_t> structure_;
  std::vector<uint8_t> strings_;
  std::map<std::string, uint32_t> string_offsets_;
  int depth_ = 0;
};

/** Appends `value` big-endian. */
void put_be32(std::vector<uint8_t>& out, uint32_t value);
void put_be64(std::vector<uint8_t>& out, uint64_t value);

}  // namespace vmrun::fdt
