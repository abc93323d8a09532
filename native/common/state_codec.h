// A tiny tagged record format for component state blobs in snapshots:
//   u32 version, then records of (u32 tag, u32 length, bytes).
// The reader bounds every length against the blob before use: a snapshot file is
// untrusted input. Each component decodes its blob once, into a plain struct with
// named fields (devices/legacy/uart_16550_state.h, backend/kvm/x86_64/vcpu_state.h),
// one record per field, so a field is found by its tag, never by its position.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "common/error.h"

namespace vmrun {

class StateWriter {
 public:
  explicit StateWriter(uint32_t version) { put_u32(version); }
  void record(uint32_t tag, const void* data, size_t len) {
    put_u32(tag);
    put_u32(static_cast<uint32_t>(len));
    const auto* p = static_cast<const uint8_t*>(data);
    out_.insert(out_.end(), p, p + len);
  }
  template <typename T>
  void record(uint32_t tag, const T& value) {
    static_assert(std::is_trivially_copyable_v<T>, "records hold plain data");
    record(tag, &value, sizeof(T));
  }
  void record(uint32_t tag, const std::vector<uint8_t>& bytes) { record(tag, bytes.data(), bytes.size()); }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  void put_u32(uint32_t v) {
    uint8_t b[4];
    std::memcpy(b, &v, 4);
    out_.insert(out_.end(), b, b + 4);
  }
  std::vector<uint8_t> out_;
};

class StateReader {
 public:
  /** `what` names the component in errors ("vCPU 0 state"). */
  StateReader(const std::vector<uint8_t>& blob, const std::string& what, uint32_t expected_version)
      : blob_(blob), what_(what) {
    uint32_t v = u32_at(0);
    if (v != expected_version)
      throw VmrunError(ErrorCode::Snapshot, what_ + " has version " + std::to_string(v) + ", expected " + std::to_string(expected_version));
    pos_ = 4;
  }
  /** The reader keeps a reference to the blob: a temporary would dangle. */
  StateReader(std::vector<uint8_t>&&, const std::string&, uint32_t) = delete;
  /** The next record as a byte string of at most `max` bytes. */
  std::vector<uint8_t> expect_bytes(uint32_t tag, size_t max) {
    size_t len;
    const uint8_t* p = expect(tag, &len);
    if (len > max) throw VmrunError(ErrorCode::Snapshot, what_ + ": record " + std::to_string(tag) + " has " + std::to_string(len) + " bytes, at most " + std::to_string(max) + " allowed");
    return std::vector<uint8_t>(p, p + len);
  }
  /** The next record as a bool stored in one byte (0 or 1). */
  bool expect_bool(uint32_t tag) {
    uint8_t v = expect_obj<uint8_t>(tag);
    if (v > 1) throw VmrunError(ErrorCode::Snapshot, what_ + ": record " + std::to_string(tag) + " is not a boolean");
    return v == 1;
  }
  /** Throws unless every record was read: trailing bytes mean a blob this version does not describe. */
  void expect_end() const {
    if (!at_end()) throw VmrunError(ErrorCode::Snapshot, what_ + " has bytes after its last record");
  }
  /** The next record, which must carry `tag`; returns its bytes and length. */
  const uint8_t* expect(uint32_t tag, size_t* len) {
    uint32_t t = u32_at(pos_);
    uint32_t l = u32_at(pos_ + 4);
    if (t != tag) throw VmrunError(ErrorCode::Snapshot, what_ + ": expected record " + std::to_string(tag) + ", found " + std::to_string(t));
    if (l > blob_.size() - (pos_ + 8)) throw VmrunError(ErrorCode::Snapshot, what_ + ": record " + std::to_string(tag) + " overruns the state");
    const uint8_t* p = blob_.data() + pos_ + 8;
    pos_ += 8 + l;
    *len = l;
    return p;
  }
  /** The next record as a fixed-size struct; its length must match exactly. */
  template <typename T>
  T expect_obj(uint32_t tag) {
    static_assert(std::is_trivially_copyable_v<T>, "records hold plain data");
    size_t len;
    const uint8_t* p = expect(tag, &len);
    if (len != sizeof(T))
      throw VmrunError(ErrorCode::Snapshot, what_ + ": record " + std::to_string(tag) + " has " + std::to_string(len) + " bytes, expected " + std::to_string(sizeof(T)));
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
  }
  bool at_end() const { return pos_ == blob_.size(); }

 private:
  uint32_t u32_at(size_t off) const {
    if (off > blob_.size() || blob_.size() - off < 4) throw VmrunError(ErrorCode::Snapshot, what_ + " is truncated");
    uint32_t v;
    std::memcpy(&v, blob_.data() + off, 4);
    return v;
  }
  const std::vector<uint8_t>& blob_;
  std::string what_;
  size_t pos_ = 0;
};

}  // namespace vmrun
