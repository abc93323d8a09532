#include "hypercalls/guest_files_state.h"

#include "common/state_codec.h"
#include "hypercalls/guest_files.h"

namespace vmrun::uhyve {

namespace {
enum Field : uint32_t {
  kNextFd = 1, kTempCounter,
  kTempFileCount, kTempName, kTempMode, kTempContent,
  kTempNameCount, kTempNameKey, kTempNameIndex,
  kOpenCount, kOpenGuestFd, kOpenTemporary, kOpenTempIndex, kOpenGuestPath, kOpenFlags, kOpenOffset, kOpenSize, kOpenMtime, kOpenInode,
};

void put_string(StateWriter& w, uint32_t tag, const std::string& s) { w.record(tag, s.data(), s.size()); }

std::string get_string(StateReader& r, uint32_t tag, size_t max) {
  std::vector<uint8_t> b = r.expect_bytes(tag, max);
  return std::string(b.begin(), b.end());
}
}  // namespace

StateBlob encode_guest_files_state(const GuestFilesState& s) {
  StateWriter w(GuestFilesState::kVersion);
  w.record(kNextFd, s.next_fd);
  w.record(kTempCounter, s.temp_counter);
  w.record(kTempFileCount, static_cast<uint32_t>(s.temp_files.size()));
  for (const auto& t : s.temp_files) {
    put_string(w, kTempName, t.name);
    w.record(kTempMode, t.mode);
    w.record(kTempContent, t.content);
  }
  w.record(kTempNameCount, static_cast<uint32_t>(s.temp_names.size()));
  for (const auto& [key, index] : s.temp_names) {
    put_string(w, kTempNameKey, key);
    w.record(kTempNameIndex, index);
  }
  w.record(kOpenCount, static_cast<uint32_t>(s.open_files.size()));
  for (const auto& f : s.open_files) {
    w.record(kOpenGuestFd, f.guest_fd);
    w.record(kOpenTemporary, static_cast<uint8_t>(f.temporary));
    w.record(kOpenTempIndex, f.temp_index);
    put_string(w, kOpenGuestPath, f.guest_path);
    w.record(kOpenFlags, f.flags);
    w.record(kOpenOffset, f.offset);
    w.record(kOpenSize, f.size);
    w.record(kOpenMtime, f.mtime_ns);
    w.record(kOpenInode, f.inode);
  }
  return w.take();
}

GuestFilesState decode_guest_files_state(const StateBlob& blob, const std::string& what) {
  auto bad = [&](const std::string& why) { throw VmrunError(ErrorCode::Snapshot, what + ": " + why); };
  StateReader r(blob, what, GuestFilesState::kVersion);
  GuestFilesState s;
  s.next_fd = r.expect_obj<int32_t>(kNextFd);
  s.temp_counter = r.expect_obj<uint64_t>(kTempCounter);
  if (s.next_fd < 3) bad("the next descriptor is below 3");

  uint32_t temp_count = r.expect_obj<uint32_t>(kTempFileCount);
  if (temp_count > kMaxTempFiles + kMaxOpenFiles) bad(std::to_string(temp_count) + " private files is more than a guest can have");
  uint64_t content_bytes = 0;
  for (uint32_t i = 0; i < temp_count; i++) {
    GuestFilesState::TempFile t;
    t.name = get_string(r, kTempName, 64);
    t.mode = r.expect_obj<uint32_t>(kTempMode);
    t.content = r.expect_bytes(kTempContent, GuestFilesState::kMaxSavedTempBytes);
    content_bytes += t.content.size();
    if (content_bytes > GuestFilesState::kMaxSavedTempBytes) bad("the private files hold more bytes than a snapshot keeps");
    if (t.mode & ~0777u) bad("a private file's mode has bits other than permissions");
    s.temp_files.push_back(std::move(t));
  }

  uint32_t name_count = r.expect_obj<uint32_t>(kTempNameCount);
  if (name_count > kMaxTempFiles) bad(std::to_string(name_count) + " named private files is more than a guest can have");
  for (uint32_t i = 0; i < name_count; i++) {
    std::string key = get_string(r, kTempNameKey, GuestFilesState::kMaxPath);
    uint32_t index = r.expect_obj<uint32_t>(kTempNameIndex);
    if (index >= s.temp_files.size() || s.temp_files[index].name.empty()) bad("a private file's guest path names no saved file");
    if (key.empty() || key[0] != '/') bad("a private file's guest path is not absolute");
    s.temp_names.emplace_back(std::move(key), index);
  }

  uint32_t open_count = r.expect_obj<uint32_t>(kOpenCount);
  if (open_count > kMaxOpenFiles) bad(std::to_string(open_count) + " open files is more than a guest can have");
  for (uint32_t i = 0; i < open_count; i++) {
    GuestFilesState::OpenFile f;
    f.guest_fd = r.expect_obj<int32_t>(kOpenGuestFd);
    f.temporary = r.expect_bool(kOpenTemporary);
    f.temp_index = r.expect_obj<uint32_t>(kOpenTempIndex);
    f.guest_path = get_string(r, kOpenGuestPath, GuestFilesState::kMaxPath);
    f.flags = r.expect_obj<int32_t>(kOpenFlags);
    f.offset = r.expect_obj<int64_t>(kOpenOffset);
    f.size = r.expect_obj<uint64_t>(kOpenSize);
    f.mtime_ns = r.expect_obj<int64_t>(kOpenMtime);
    f.inode = r.expect_obj<uint64_t>(kOpenInode);
    if (f.guest_fd < 3) bad("an open file has descriptor " + std::to_string(f.guest_fd) + " (0-2 are the console)");
    if (f.offset < 0) bad("an open file has a negative offset");
    if (f.temporary && f.temp_index >= s.temp_files.size()) bad("an open private file names no saved file");
    if (!f.temporary && (f.guest_path.empty() || f.guest_path[0] != '/')) bad("an open file's guest path is not absolute");
    s.open_files.push_back(std::move(f));
  }
  r.expect_end();
  return s;
}

}  // namespace vmrun::uhyve
