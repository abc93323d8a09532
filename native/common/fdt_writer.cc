#include "common/fdt_writer.h"

#include <stdexcept>

namespace vmrun::fdt {

namespace {
constexpr uint32_t kMagic = 0xd00dfeed;
constexpr uint32_t kBeginNode = 1, kEndNode = 2, kProp = 3, kEnd = 9;
constexpr uint32_t kVersion = 17, kLastCompatibleVersion = 16;
constexpr uint32_t kHeaderSize = 40;
constexpr uint32_t kReservationMapSize = 16;  // just the terminating (0, 0) entry

void set_be32(std::vector<uint8_t>& out, size_t at, uint32_t v) {
  for (int i = 0; i < 4; i++) out[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
}  // namespace

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

void put_be64(std::vector<uint8_t>& out, uint64_t v) {
  put_be32(out, static_cast<uint32_t>(v >> 32));
  put_be32(out, static_cast<uint32_t>(v));
}

FdtWriter::FdtWriter() = default;

void FdtWriter::token(uint32_t t) { put_be32(structure_, t); }

void FdtWriter::pad_structure() {
  while (structure_.size() % 4) structure_.push_back(0);
}

uint32_t FdtWriter::string_offset(const std::string& name) {
  auto it = string_offsets_.find(name);
  if (it != string_offsets_.end()) return it->second;
  uint32_t offset = static_cast<uint32_t>(strings_.size());
  strings_.insert(strings_.end(), name.begin(), name.end());
  strings_.push_back(0);
  string_offsets_[name] = offset;
  return offset;
}

void FdtWriter::begin_node(const std::string& name) {
  token(kBeginNode);
  structure_.insert(structure_.end(), name.begin(), name.end());
  structure_.push_back(0);
  pad_structure();
  depth_++;
}

void FdtWriter::end_node() {
  if (depth_ == 0) throw std::logic_error("fdt: end_node without begin_node");
  token(kEndNode);
  depth_--;
}

void FdtWriter::property(const std::string& name, const std::vector<uint8_t>& value) {
  if (depth_ == 0) throw std::logic_error("fdt: property outside a node");
  token(kProp);
  put_be32(structure_, static_cast<uint32_t>(value.size()));
  put_be32(structure_, string_offset(name));
  structure_.insert(structure_.end(), value.begin(), value.end());
  pad_structure();
}

void FdtWriter::property_string(const std::string& name, const std::string& value) {
  std::vector<uint8_t> bytes(value.begin(), value.end());
  bytes.push_back(0);
  property(name, bytes);
}

void FdtWriter::property_strings(const std::string& name, const std::vector<std::string>& values) {
  std::vector<uint8_t> bytes;
  for (const std::string& v : values) {
    bytes.insert(bytes.end(), v.begin(), v.end());
    bytes.push_back(0);
  }
  property(name, bytes);
}

void FdtWriter::property_u32(const std::string& name, uint32_t value) {
  std::vector<uint8_t> bytes;
  put_be32(bytes, value);
  property(name, bytes);
}

void FdtWriter::property_u64s(const std::string& name, const std::vector<uint64_t>& values) {
  std::vector<uint8_t> bytes;
  for (uint64_t v : values) put_be64(bytes, v);
  property(name, bytes);
}

void FdtWriter::property_u32s(const std::string& name, const std::vector<uint32_t>& values) {
  std::vector<uint8_t> bytes;
  for (uint32_t v : values) put_be32(bytes, v);
  property(name, bytes);
}

std::vector<uint8_t> FdtWriter::finish() {
  if (depth_ != 0) throw std::logic_error("fdt: unclosed node");
  token(kEnd);
  const uint32_t struct_offset = kHeaderSize + kReservationMapSize;
  const uint32_t strings_offset = struct_offset + static_cast<uint32_t>(structure_.size());
  const uint32_t total = strings_offset + static_cast<uint32_t>(strings_.size());
  std::vector<uint8_t> blob(kHeaderSize + kReservationMapSize, 0);
  const uint32_t header[] = {kMagic, total, struct_offset, strings_offset, kHeaderSize, kVersion, kLastCompatibleVersion,
                             0 /* boot_cpuid_phys */, static_cast<uint32_t>(strings_.size()), static_cast<uint32_t>(structure_.size())};
  for (size_t i = 0; i < sizeof header / sizeof header[0]; i++) set_be32(blob, i * 4, header[i]);
  blob.insert(blob.end(), structure_.begin(), structure_.end());
  blob.insert(blob.end(), strings_.begin(), strings_.end());
  return blob;
}

}  // namespace vmrun::fdt
