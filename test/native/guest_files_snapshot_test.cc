// A Hermit guest's host files across a snapshot: saved from one GuestFiles, restored
// into a fresh one as a new process would, with real files in a scratch directory.
// The offsets, the private files' bytes and the refusals of a changed, vanished or
// crafted state are what a restored guest depends on.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "check.h"
#include "hypercalls/guest_files.h"
#include "hypercalls/guest_files_state.h"
#include "hypercalls/uhyve_abi.h"

using namespace vmrun;
using namespace vmrun::uhyve;
namespace fs = std::filesystem;

namespace {

/** A scratch directory with a mapped tree and TMPDIR for the private files, removed at the end. */
struct Scratch {
  fs::path root;
  Scratch() {
    char buf[] = "/tmp/vmrun-gf-snap-XXXXXX";
    root = mkdtemp(buf);
    fs::create_directories(root / "data");
    fs::create_directories(root / "tmp");
    setenv("TMPDIR", (root / "tmp").c_str(), 1);
    write("data/input.txt", "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    write("data/log.txt", "");
  }
  ~Scratch() { fs::remove_all(root); }
  void write(const std::string& rel, const std::string& text) const { std::ofstream(root / rel, std::ios::binary) << text; }
  std::string read(const std::string& rel) const {
    std::ifstream in(root / rel, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::vector<std::string> mappings() const { return {(root / "data").string() + ":/data"}; }
};

std::string read_fd(GuestFiles& files, int32_t fd, size_t n) {
  std::string out(n, '\0');
  std::vector<iovec> io{{out.data(), n}};
  int64_t got = files.read(fd, io);
  out.resize(got < 0 ? 0 : static_cast<size_t>(got));
  return out;
}

int64_t write_fd(GuestFiles& files, int32_t fd, std::string text) {
  std::vector<iovec> io{{text.data(), text.size()}};
  return files.write(fd, io);
}

/** A state as the wire carries it: encoded and decoded again. */
GuestFilesState through_the_file(const GuestFilesState& s) { return decode_guest_files_state(encode_guest_files_state(s), "test state"); }

}  // namespace

TEST("guest files: a restore reopens mapped files at their offsets and brings back private files") {
  Scratch dir;
  GuestFilesState saved;
  int32_t input, log, scratch, unlinked;
  {
    GuestFiles files(parse_file_mappings(dir.mappings()));
    input = files.open("/data/input.txt", kOpenRdonly, 0);
    log = files.open("/data/log.txt", kOpenWronly, 0);
    scratch = files.open("/tmp/scratch", kOpenRdwr | kOpenCreat, 0640);
    unlinked = files.open("/tmp/gone", kOpenRdwr | kOpenCreat, 0600);
    CHECK(input >= 3 && log >= 3 && scratch >= 3 && unlinked >= 3);
    CHECK_EQ(read_fd(files, input, 5), std::string("ABCDE"));
    CHECK_EQ(write_fd(files, log, "line 1\n"), 7);
    CHECK_EQ(write_fd(files, scratch, "private bytes"), 13);
    CHECK_EQ(write_fd(files, unlinked, "still open"), 10);
    CHECK_EQ(files.unlink("/tmp/gone"), 0);
    saved = through_the_file(files.save());
  }  // the first "process" ends: its private directory is removed

  GuestFiles restored(parse_file_mappings(dir.mappings()));
  restored.restore(saved);
  CHECK_EQ(read_fd(restored, input, 5), std::string("FGHIJ"));
  CHECK_EQ(write_fd(restored, log, "line 2\n"), 7);
  CHECK_EQ(dir.read("data/log.txt"), std::string("line 1\nline 2\n"));
  // The private file comes back with its bytes and its offset (at the end of them).
  CHECK_EQ(restored.lseek(scratch, 0, SEEK_CUR), 13);
  CHECK_EQ(restored.lseek(scratch, 0, SEEK_SET), 0);
  CHECK_EQ(read_fd(restored, scratch, 64), std::string("private bytes"));
  // ...and still by name, with its mode.
  int32_t again = restored.open("/tmp/scratch", kOpenRdonly, 0);
  CHECK(again >= 3);
  CHECK_EQ(read_fd(restored, again, 7), std::string("private"));
  struct stat st {};
  CHECK_EQ(stat((restored.temp_dir() + "/file-1").c_str(), &st), 0);
  CHECK_EQ(st.st_mode & 0777, 0640u);
  // The unlinked one is open and nameless again.
  CHECK_EQ(restored.lseek(unlinked, 0, SEEK_SET), 0);
  CHECK_EQ(read_fd(restored, unlinked, 64), std::string("still open"));
  CHECK_EQ(restored.open("/tmp/gone", kOpenRdonly, 0), -ENOENT);
  // New descriptors and private files do not collide with the restored ones.
  int32_t next = restored.open("/tmp/another", kOpenRdwr | kOpenCreat, 0600);
  CHECK(next > unlinked);
  CHECK_EQ(write_fd(restored, next, "x"), 1);
  CHECK_EQ(read_fd(restored, scratch, 64), std::string(""));
}

TEST("guest files: a mapped file that changed or vanished since the save is refused in one line") {
  Scratch dir;
  GuestFilesState saved;
  {
    GuestFiles files(parse_file_mappings(dir.mappings()));
    int32_t log = files.open("/data/log.txt", kOpenRdwr, 0);
    CHECK_EQ(write_fd(files, log, "line 1\n"), 7);
    saved = through_the_file(files.save());
  }
  dir.write("data/log.txt", "line 1\nsomeone else\n");
  {
    GuestFiles restored(parse_file_mappings(dir.mappings()));
    CHECK_THROWS(restored.restore(saved), "the Hermit guest's open file /data/log.txt (" + (dir.root / "data/log.txt").string() +
                                              ") changed since the snapshot was taken (its size was 7 bytes, now 20)");
  }
  fs::remove(dir.root / "data/log.txt");
  {
    GuestFiles restored(parse_file_mappings(dir.mappings()));
    CHECK_THROWS(restored.restore(saved), "(" + (dir.root / "data/log.txt").string() + ") is gone since the snapshot was taken");
  }
  // Replaced by another file of the same size (an editor's save: write, then rename over it).
  dir.write("data/log.txt", "line 1\n");
  dir.write("data/new.txt", "LINE 1\n");
  fs::rename(dir.root / "data/new.txt", dir.root / "data/log.txt");
  {
    GuestFiles restored(parse_file_mappings(dir.mappings()));
    CHECK_THROWS(restored.restore(saved), "changed since the snapshot was taken (it is another file now)");
  }
}

TEST("guest files: a restore opens nothing outside the mappings, whatever the state says") {
  Scratch dir;
  GuestFilesState s;
  GuestFilesState::OpenFile escape;
  escape.guest_fd = 3;
  escape.guest_path = "/data/../../etc/passwd";  // normalises to /etc/passwd: no mapping
  s.open_files.push_back(escape);
  GuestFiles restored(parse_file_mappings(dir.mappings()));
  CHECK_THROWS(restored.restore(through_the_file(s)), "is outside its file mappings");

  GuestFilesState named;
  GuestFilesState::TempFile t;
  t.name = "../../evil";
  named.temp_files.push_back(t);
  GuestFiles other(parse_file_mappings(dir.mappings()));
  CHECK_THROWS(other.restore(through_the_file(named)), "names a private file \"../../evil\" vmrun never makes");
  CHECK(!fs::exists(dir.root / "evil"));
}

TEST("guest files: crafted state blobs are refused before anything is opened") {
  GuestFilesState s;
  GuestFilesState::OpenFile console;
  console.guest_fd = 1;
  console.guest_path = "/data/x";
  s.open_files.push_back(console);
  CHECK_THROWS(through_the_file(s), "0-2 are the console");

  GuestFilesState dangling;
  GuestFilesState::OpenFile f;
  f.guest_fd = 3;
  f.temporary = true;
  f.temp_index = 5;
  dangling.open_files.push_back(f);
  CHECK_THROWS(through_the_file(dangling), "names no saved file");

  GuestFilesState big;
  GuestFilesState::TempFile t;
  t.name = "file-1";
  t.content.assign(GuestFilesState::kMaxSavedTempBytes + 1, 0);
  big.temp_files.push_back(t);
  CHECK_THROWS(through_the_file(big), "at most");

  StateBlob truncated = encode_guest_files_state(GuestFilesState{});
  truncated.pop_back();
  CHECK_THROWS(decode_guest_files_state(truncated, "test state"), "test state");
}

TEST("guest files: private files beyond what a snapshot keeps refuse the save") {
  Scratch dir;
  GuestFiles files(parse_file_mappings(dir.mappings()));
  int32_t fd = files.open("/tmp/big", kOpenRdwr | kOpenCreat, 0600);
  std::string chunk(1 << 20, 'x');
  for (uint64_t i = 0; i <= (GuestFilesState::kMaxSavedTempBytes >> 20); i++) CHECK_EQ(write_fd(files, fd, chunk), static_cast<int64_t>(chunk.size()));
  CHECK_THROWS(files.save(), "more than a snapshot keeps");
}

TEST("guest files: an open mapped directory comes back though files were made in it since the save") {
  Scratch dir;
  fs::create_directories(dir.root / "data/sub");
  GuestFilesState saved;
  {
    GuestFiles files(parse_file_mappings(dir.mappings()));
    CHECK(files.open("/data/sub", kOpenRdonly | kOpenDirectory, 0) >= 3);
    saved = through_the_file(files.save());
  }
  dir.write("data/sub/new.txt", "made after the save");
  GuestFiles restored(parse_file_mappings(dir.mappings()));
  restored.restore(saved);
  // ...but not another directory of the same name.
  fs::rename(dir.root / "data/sub", dir.root / "data/old");
  fs::create_directories(dir.root / "data/sub");
  GuestFiles other(parse_file_mappings(dir.mappings()));
  CHECK_THROWS(other.restore(saved), "(it is another file now)");
}
