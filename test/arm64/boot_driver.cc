// vmrun-arm64-boot: boots an arm64 Linux Image on vmrun's KVM arm64 backend with the
// VMM's own parts (VcpuThread, the MMIO bus, the 16550 UART, the exit device, the
// arm64 loader and device tree), without Node: a test driver of the aarch64 harness
// beside the cross-built addon (node in the emulated L1 starts in 1-5 s, the CLI in
// 20-25 s; this starts in milliseconds, so the figures it prints are the VMM's).
//
//   vmrun-arm64-boot --kernel IMAGE [--initrd FILE] [--cmdline TEXT] [--cpus N]
//                    [--memory MIB] [--timeout S] [--mark TEXT]
//                    [--save-after-line TEXT --snapshot FILE]
//   vmrun-arm64-boot --restore FILE [--timeout S] [--mark TEXT]
//
// --save-after-line: once a console line containing TEXT has been printed, pause the
// vCPUs, save the VM (the backend's vCPU and VM state, the UART's state) to FILE and
// its RAM to FILE.ram, and stop (exit 0). --restore: run such a snapshot in this new
// process. The snapshot file (this driver's, not vmrun's snapshot format, which needs
// the addon) is "VMRUNA64", u32 version, u32 section count, then per section u32 kind,
// u32 index, u64 length, u32 CRC-32C, u32 zero and the bytes: the machine (a tagged
// record blob), the VM state (arch/aarch64/interrupt_state.h), each vCPU's state and
// the UART's. FILE.ram is the RAM as a plain sparse file (all-zero pages are holes).
// Every section's CRC is checked and every state decoded before a VM is created.
//
// The console goes to stdout; the driver's own lines to stderr, prefixed
// "arm64-boot:": set-up steps, when the console first showed --mark, save and restore
// timings, and why the VM stopped. Exit status: 0 when the guest powered off (PSCI
// SYSTEM_OFF) or was saved, the guest's status when it wrote one to the exit device,
// 124 on --timeout, 125 when vmrun or the guest failed or a snapshot was refused.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "arch/aarch64/interrupt_state.h"
#include "arch/aarch64/layout.h"
#include "arch/aarch64/vcpu.h"
#include "backend/kvm/aarch64/arm64_hypervisor.h"
#include "backend/kvm/aarch64/vcpu_state_codec.h"
#include "backend/hypervisor.h"
#include "common/error.h"
#include "common/file.h"
#include "common/state_codec.h"
#include "devices/bus.h"
#include "devices/console_output.h"
#include "devices/legacy/exit_port.h"
#include "devices/legacy/uart_16550.h"
#include "loaders/linux/arm64_image.h"
#include "snapshot/crc32c.h"
#include "vcpu/vcpu_thread.h"
#include "vmm/irq_line.h"

using namespace vmrun;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string kernel, initrd, cmdline = "console=ttyS0", mark;
  std::string save_after_line, snapshot, restore;
  int cpus = 1;
  uint64_t memory_mib = 256;
  int timeout_s = 600;
};

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

void say(const std::string& line) { std::fprintf(stderr, "arm64-boot: %s\n", line.c_str()); }

[[noreturn]] void usage_error(const std::string& why) {
  say(why);
  say("usage: vmrun-arm64-boot --kernel IMAGE [--initrd FILE] [--cmdline TEXT] [--cpus N] [--memory MIB] [--timeout S] [--mark TEXT] [--save-after-line TEXT --snapshot FILE]");
  say("       vmrun-arm64-boot --restore FILE [--timeout S] [--mark TEXT]");
  std::exit(125);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    auto number = [&](long lo, long hi) {
      std::string v = value();
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || n < lo || n > hi) usage_error(a + " " + v + ": expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
      return n;
    };
    if (a == "--kernel") o.kernel = value();
    else if (a == "--initrd") o.initrd = value();
    else if (a == "--cmdline") o.cmdline = value();
    else if (a == "--mark") o.mark = value();
    else if (a == "--save-after-line") o.save_after_line = value();
    else if (a == "--snapshot") o.snapshot = value();
    else if (a == "--restore") o.restore = value();
    else if (a == "--cpus") o.cpus = static_cast<int>(number(1, aarch64::kMaxCpus));
    else if (a == "--memory") o.memory_mib = static_cast<uint64_t>(number(64, 64 * 1024));
    else if (a == "--timeout") o.timeout_s = static_cast<int>(number(1, 24 * 3600));
    else usage_error("unknown option " + a);
  }
  if (!o.restore.empty()) {
    if (!o.kernel.empty() || !o.initrd.empty() || !o.save_after_line.empty()) usage_error("--restore takes the machine from the snapshot: no --kernel, --initrd or --save-after-line");
    return o;
  }
  if (o.kernel.empty()) usage_error("no --kernel");
  if (o.save_after_line.empty() != o.snapshot.empty()) usage_error("--save-after-line and --snapshot go together");
  if (o.memory_mib % 2) usage_error("--memory must be a multiple of 2 MiB");
  return o;
}

/** The machine as the vCPU threads see it: buses, memory, pauses, and where a stop request goes. */
class DriverHost : public VcpuHost {
 public:
  DriverHost(const GuestMemory& memory, int vcpus) : memory_(memory), vcpus_(vcpus) {}
  Bus& mmio() { return mmio_; }

  const Bus& port_bus() const override { return no_ports_; }
  const Bus& mmio_bus() const override { return mmio_; }
  const GuestMemory& memory() const override { return memory_; }
  PortIoHandler* port_io_handler() const override { return nullptr; }
  /** Parks the vCPU while pause() holds it, after it completed its pending MMIO. */
  bool wait_while_paused(int, const std::function<void()>& before_park) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (!paused_) return !stop_.has_value();
    lock.unlock();
    before_park();
    lock.lock();
    parked_++;
    changed_.notify_all();
    changed_.wait(lock, [&] { return !paused_ || stop_.has_value(); });
    parked_--;
    return !stop_.has_value();
  }
  bool stop_requested() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_.has_value();
  }
  void vcpu_finished(int) override {
    std::lock_guard<std::mutex> lock(mu_);
    finished_++;
    changed_.notify_all();
  }
  void entering_guest(int) override {}
  void count_exit(VcpuExit::Kind kind) override {
    std::lock_guard<std::mutex> lock(mu_);
    exits_[kind == VcpuExit::Kind::Mmio ? 0 : 1]++;
  }
  void request_stop(const StopRequest& r) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stop_) stop_ = r;
    changed_.notify_all();
  }
  /** The console showed the --save-after-line text (any thread). */
  void request_save() {
    std::lock_guard<std::mutex> lock(mu_);
    save_requested_ = true;
    changed_.notify_all();
  }
  /** Waits for a stop request or a save request, or `timeout`; true if a save was asked for. */
  bool wait_for_stop_or_save(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, timeout, [&] { return stop_.has_value() || save_requested_; });
    return save_requested_ && !stop_.has_value();
  }
  std::optional<StopRequest> stop() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  }
  /** Parks every vCPU (they are kicked out of the guest); false if the VM stopped first. */
  bool pause(const std::vector<std::unique_ptr<VcpuThread>>& threads) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      paused_ = true;
    }
    for (auto& t : threads) t->kick();
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [&] { return parked_ == vcpus_ || stop_.has_value() || finished_ > 0; });
    return parked_ == vcpus_;
  }
  void stop_now() { request_stop(StopRequest{}); }
  uint64_t mmio_exits() const {
    std::lock_guard<std::mutex> lock(mu_);
    return exits_[0];
  }

 private:
  const GuestMemory& memory_;
  const int vcpus_;
  Bus mmio_, no_ports_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::optional<StopRequest> stop_;
  bool paused_ = false, save_requested_ = false;
  int parked_ = 0, finished_ = 0;
  uint64_t exits_[2] = {};
};

std::string describe(const StopRequest& r) {
  switch (r.kind) {
    case StopRequest::Kind::PowerOff: return "the guest powered off (PSCI SYSTEM_OFF)";
    case StopRequest::Kind::Reset: return "the guest asked for a reset (PSCI SYSTEM_RESET)";
    default: return r.detail;
  }
}

// ---- The driver's snapshot file ----

constexpr char kMagic[8] = {'V', 'M', 'R', 'U', 'N', 'A', '6', '4'};
constexpr uint32_t kFileVersion = 1;
/** Far more than the state of kMaxCpus vCPUs (~4 KiB each) and the GIC: the file is untrusted. */
constexpr uint64_t kMaxStateFile = 16ULL << 20;
enum SectionKind : uint32_t { kMachine = 1, kVmState = 2, kVcpuState = 3, kUartState = 4 };
const char* section_name(uint32_t kind) {
  switch (kind) {
    case kMachine: return "machine";
    case kVmState: return "GIC state (VM)";
    case kVcpuState: return "vCPU state";
    case kUartState: return "UART state";
    default: return "unknown";
  }
}

/** What the machine section holds (a tagged record blob like every state). */
struct MachineRecord {
  static constexpr uint32_t kVersion = 1;
  std::string machine = "arm64-virt";  // the machine type: another architecture's snapshot is refused
  uint32_t cpus = 0;
  uint64_t memory_bytes = 0;
  uint64_t saved_at_unix_ns = 0;  // wall clock at save: how long the snapshot sat on disk
};
enum MachineField : uint32_t { kMachineType = 1, kCpus, kMemoryBytes, kSavedAt };

StateBlob encode_machine(const MachineRecord& m) {
  StateWriter w(MachineRecord::kVersion);
  w.record(kMachineType, m.machine.data(), m.machine.size());
  w.record(kCpus, m.cpus);
  w.record(kMemoryBytes, m.memory_bytes);
  w.record(kSavedAt, m.saved_at_unix_ns);
  return w.take();
}

MachineRecord decode_machine(const StateBlob& blob) {
  StateReader r(blob, "machine record", MachineRecord::kVersion);
  MachineRecord m;
  const auto type = r.expect_bytes(kMachineType, 64);
  m.machine.assign(type.begin(), type.end());
  m.cpus = r.expect_obj<uint32_t>(kCpus);
  m.memory_bytes = r.expect_obj<uint64_t>(kMemoryBytes);
  m.saved_at_unix_ns = r.expect_obj<uint64_t>(kSavedAt);
  r.expect_end();
  if (m.machine != "arm64-virt") throw VmrunError(ErrorCode::Snapshot, "the snapshot is of a \"" + m.machine + "\" machine, and this driver runs arm64-virt machines only");
  if (m.cpus < 1 || m.cpus > static_cast<uint32_t>(aarch64::kMaxCpus)) throw VmrunError(ErrorCode::Snapshot, "the snapshot has " + std::to_string(m.cpus) + " vCPUs");
  if (m.memory_bytes < (64ULL << 20) || m.memory_bytes > (64ULL << 30) || m.memory_bytes % (2ULL << 20))
    throw VmrunError(ErrorCode::Snapshot, "the snapshot's RAM size " + std::to_string(m.memory_bytes) + " is not one this driver makes");
  return m;
}

/** An fd closed when it goes out of scope. */
struct FileFd {
  explicit FileFd(int fd) : fd_(fd) {}
  ~FileFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileFd(const FileFd&) = delete;
  FileFd& operator=(const FileFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

/** Writes `bytes` to `path` through a temporary renamed when complete. */
void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string tmp = path + ".tmp";
  {
    FileFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (fd.get() < 0) throw VmrunError(ErrorCode::Host, errno_message("cannot create " + tmp, errno));
    for (size_t at = 0; at < bytes.size();) {
      const ssize_t n = ::write(fd.get(), bytes.data() + at, bytes.size() - at);
      if (n <= 0) throw VmrunError(ErrorCode::Host, errno_message("cannot write " + tmp, errno));
      at += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) throw VmrunError(ErrorCode::Host, errno_message("cannot write " + tmp, errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) throw VmrunError(ErrorCode::Host, errno_message("cannot rename " + tmp, errno));
}

struct Section {
  uint32_t kind, index;
  StateBlob bytes;
};

uint64_t unix_ns() { return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count()); }

void put(std::vector<uint8_t>& out, const void* p, size_t n) { out.insert(out.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n); }

/** Writes the sections to `path` (through a temporary renamed when complete); says where each one is. */
void write_state_file(const std::string& path, const std::vector<Section>& sections) {
  std::vector<uint8_t> out;
  put(out, kMagic, sizeof kMagic);
  put(out, &kFileVersion, 4);
  const uint32_t count = static_cast<uint32_t>(sections.size());
  put(out, &count, 4);
  for (const auto& sec : sections) {
    const uint64_t length = sec.bytes.size();
    const uint32_t crc = crc32c(sec.bytes.data(), sec.bytes.size()), zero = 0;
    put(out, &sec.kind, 4);
    put(out, &sec.index, 4);
    put(out, &length, 8);
    put(out, &crc, 4);
    put(out, &zero, 4);
    char line[160];
    std::snprintf(line, sizeof line, "snapshot section %s %u at offset %zu, %llu bytes", section_name(sec.kind), sec.index, out.size(), static_cast<unsigned long long>(length));
    say(line);
    put(out, sec.bytes.data(), sec.bytes.size());
  }
  write_file_atomically(path, out);
}

/** Reads and checks the file's frame and every section's CRC-32C; decodes nothing. */
std::vector<Section> read_state_file(const std::string& path) {
  const std::vector<uint8_t> file = read_file(path, "snapshot", kMaxStateFile);
  auto refuse = [&](const std::string& why) { return VmrunError(ErrorCode::Snapshot, "snapshot " + path + ": " + why); };
  if (file.size() < 16 || std::memcmp(file.data(), kMagic, sizeof kMagic) != 0) throw refuse("not a vmrun-arm64-boot snapshot (no VMRUNA64 header)");
  uint32_t version, count;
  std::memcpy(&version, &file[8], 4);
  std::memcpy(&count, &file[12], 4);
  if (version != kFileVersion) throw refuse("version " + std::to_string(version) + ", this driver reads version " + std::to_string(kFileVersion));
  if (count > 3 + static_cast<uint32_t>(aarch64::kMaxCpus)) throw refuse("claims " + std::to_string(count) + " sections");
  std::vector<Section> sections;
  size_t at = 16;
  for (uint32_t i = 0; i < count; i++) {
    if (file.size() - at < 24) throw refuse("truncated in the section table");
    Section sec;
    uint64_t length;
    uint32_t crc, zero;
    std::memcpy(&sec.kind, &file[at], 4);
    std::memcpy(&sec.index, &file[at + 4], 4);
    std::memcpy(&length, &file[at + 8], 8);
    std::memcpy(&crc, &file[at + 16], 4);
    std::memcpy(&zero, &file[at + 20], 4);
    at += 24;
    if (zero != 0 || length > file.size() - at) throw refuse("section " + std::to_string(i) + " has a bad header");
    sec.bytes.assign(file.begin() + static_cast<long>(at), file.begin() + static_cast<long>(at + length));
    if (crc32c(sec.bytes.data(), sec.bytes.size()) != crc)
      throw refuse(std::string("the ") + section_name(sec.kind) + " section fails its CRC-32C check: the file is damaged (nothing was restored)");
    at += length;
    sections.push_back(std::move(sec));
  }
  if (at != file.size()) throw refuse("bytes after the last section");
  return sections;
}

/** RAM as a plain file the size of RAM, all-zero pages left as holes; returns the bytes written. */
uint64_t write_ram(const std::string& path, const GuestMemory& memory) {
  const std::string tmp = path + ".tmp";
  FileFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0) throw VmrunError(ErrorCode::Host, errno_message("cannot create " + tmp, errno));
  const uint8_t* ram = memory.host_base();
  const uint64_t size = memory.ram_size();
  constexpr uint64_t kPage = 4096;
  static const uint8_t zero[kPage] = {};
  uint64_t written = 0;
  for (uint64_t page = 0; page < size;) {
    if (std::memcmp(ram + page, zero, kPage) == 0) {
      page += kPage;
      continue;
    }
    uint64_t end = page + kPage;
    while (end < size && std::memcmp(ram + end, zero, kPage) != 0) end += kPage;
    for (uint64_t at = page; at < end;) {
      const ssize_t n = ::pwrite(fd.get(), ram + at, end - at, static_cast<off_t>(at));
      if (n <= 0) throw VmrunError(ErrorCode::Host, errno_message("cannot write " + tmp, errno));
      at += static_cast<uint64_t>(n);
    }
    written += end - page;
    page = end;
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0 || ::fsync(fd.get()) != 0) throw VmrunError(ErrorCode::Host, errno_message("cannot finish " + tmp, errno));
  if (::rename(tmp.c_str(), path.c_str()) != 0) throw VmrunError(ErrorCode::Host, errno_message("cannot rename " + tmp, errno));
  return written;
}

/** Reads the RAM file's data extents into RAM (holes stay zero); the file must be exactly RAM's size. */
uint64_t read_ram(const std::string& path, const GuestMemory& memory) {
  FileFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw VmrunError(ErrorCode::Snapshot, errno_message("cannot open the snapshot's RAM " + path, errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || static_cast<uint64_t>(st.st_size) != memory.ram_size())
    throw VmrunError(ErrorCode::Snapshot, "the snapshot's RAM " + path + " is not " + std::to_string(memory.ram_size()) + " bytes");
  uint64_t copied = 0;
  off_t at = 0;
  const off_t size = st.st_size;
  while (at < size) {
    off_t data = ::lseek(fd.get(), at, SEEK_DATA);
    if (data < 0) break;  // ENXIO: only a hole is left
    off_t hole = ::lseek(fd.get(), data, SEEK_HOLE);
    if (hole < 0) hole = size;
    for (off_t p = data; p < hole;) {
      const ssize_t n = ::pread(fd.get(), memory.host_base() + p, static_cast<size_t>(hole - p), p);
      if (n <= 0) throw VmrunError(ErrorCode::Snapshot, errno_message("cannot read the snapshot's RAM " + path, errno));
      p += n;
    }
    copied += static_cast<uint64_t>(hole - data);
    at = hole;
  }
  return copied;
}

/** Each state section decoded (every check that needs no VM) before any VM exists. */
struct LoadedSnapshot {
  MachineRecord machine;
  StateBlob vm_state;
  std::vector<StateBlob> vcpu_states;
  StateBlob uart_state;
};

LoadedSnapshot load_snapshot(const std::string& path) {
  LoadedSnapshot s;
  const std::vector<Section> sections = read_state_file(path);
  bool have_machine = false, have_vm = false, have_uart = false;
  for (const auto& sec : sections) {
    if (sec.kind == kMachine) {
      s.machine = decode_machine(sec.bytes);
      have_machine = true;
    } else if (sec.kind == kVmState) {
      aarch64::decode_interrupt_state(sec.bytes);  // decoded again by the VM's restore
      s.vm_state = sec.bytes;
      have_vm = true;
    } else if (sec.kind == kVcpuState) {
      if (sec.index != s.vcpu_states.size()) throw VmrunError(ErrorCode::Snapshot, "snapshot " + path + ": vCPU states out of order");
      kvm::arm64::decode_vcpu_state(sec.bytes, "vCPU " + std::to_string(sec.index) + " state");
      s.vcpu_states.push_back(sec.bytes);
    } else if (sec.kind == kUartState) {
      decode_uart16550_state(sec.bytes, "uart0 state");
      s.uart_state = sec.bytes;
      have_uart = true;
    } else {
      throw VmrunError(ErrorCode::Snapshot, "snapshot " + path + ": a section of unknown kind " + std::to_string(sec.kind));
    }
  }
  if (!have_machine || !have_vm || !have_uart || s.vcpu_states.size() != s.machine.cpus)
    throw VmrunError(ErrorCode::Snapshot, "snapshot " + path + " lacks a section (machine, GIC state, UART state and one state per vCPU)");
  return s;
}

/**
 * One line per vCPU on what its saved state says about time and interrupts: MP state,
 * the virtual timer (when it fires, relative to the saved counter) and the timer PPI's
 * GIC state. For the figures and for debugging a restore that does not wake.
 */
void describe_saved_state(const std::vector<Section>& sections) {
  const Section* gic = nullptr;
  for (const auto& sec : sections)
    if (sec.kind == kVmState) gic = &sec;
  if (!gic) return;
  const aarch64::InterruptState g = aarch64::decode_interrupt_state(gic->bytes);
  constexpr uint32_t kTimerPpi = 16 + aarch64::kTimerVirtPpi;  // interrupt ID 27
  for (const auto& sec : sections) {
    if (sec.kind != kVcpuState || sec.index >= g.cpus.size()) continue;
    const auto v = kvm::arm64::decode_vcpu_state(sec.bytes, "vCPU state");
    const auto& c = g.cpus[sec.index];
    const double fire_ms = static_cast<double>(static_cast<int64_t>(v.timer.cval - g.guest_counter)) * 1000.0 / static_cast<double>(g.counter_frequency_hz);
    char line[400];
    std::snprintf(line, sizeof line,
                  "saved vCPU %u: MP state %u, %zu registers, CNTV_CTL 0x%llx, CNTV_CVAL %+.1f ms from the saved counter; PPI %u: line %u pending %u active %u enabled %u; "
                  "ICC_PMR 0x%llx ICC_AP1R0 0x%llx ICC_IGRPEN1 %llu",
                  sec.index, v.mp_state, v.registers.size(), static_cast<unsigned long long>(v.timer.ctl), fire_ms, kTimerPpi,
                  (c.redistributor.private_line_level >> kTimerPpi) & 1, (c.redistributor.ispendr0 >> kTimerPpi) & 1, (c.redistributor.isactiver0 >> kTimerPpi) & 1,
                  (c.redistributor.isenabler0 >> kTimerPpi) & 1, static_cast<unsigned long long>(c.cpu_interface.pmr),
                  static_cast<unsigned long long>(c.cpu_interface.ap1r[0]), static_cast<unsigned long long>(c.cpu_interface.igrpen1));
    say(line);
  }
}

// ---- Running ----

int run(const Options& o) {
  const auto start = Clock::now();
  char line[640];
  const bool restoring = !o.restore.empty();
  LoadedSnapshot snap;
  std::vector<uint8_t> kernel, initrd;
  int cpus = o.cpus;
  uint64_t memory_bytes = o.memory_mib << 20;
  if (restoring) {
    snap = load_snapshot(o.restore);  // every CRC and every state decoded: nothing runs on a damaged file
    cpus = static_cast<int>(snap.machine.cpus);
    memory_bytes = snap.machine.memory_bytes;
  } else {
    kernel = read_file(o.kernel, "kernel", 512ULL << 20);
    if (!o.initrd.empty()) initrd = read_file(o.initrd, "initrd", o.memory_mib << 20);
  }
  const double read_ms = ms_since(start);
  GuestMemory memory = GuestMemory::anonymous_at(aarch64::kRamBase, memory_bytes);
  uint64_t ram_copied = 0;
  if (restoring) ram_copied = read_ram(o.restore + ".ram", memory);
  const double ram_ms = ms_since(start);

  auto hypervisor = open_hypervisor("");
  auto vm = hypervisor->create_vm();
  vm->map_memory(memory);  // RAM slots before the vGIC, as on x86
  vm->create_interrupt_controller();
  const double setup_vm_ms = ms_since(start);

  DriverHost host(memory, cpus);
  double mark_ms = -1, first_output_ms = -1;
  size_t matched = 0;  // how much of --mark the console has shown so far
  std::string current_line;  // for --save-after-line
  ConsoleOutput::Sink to_stdout = ConsoleOutput::fd_sink(STDOUT_FILENO);
  ConsoleOutput console([&](std::vector<uint8_t>&& batch) {
    if (first_output_ms < 0 && !batch.empty()) first_output_ms = ms_since(start);
    for (uint8_t byte : batch) {
      if (!o.save_after_line.empty()) {
        if (byte == '\n') {
          if (current_line.find(o.save_after_line) != std::string::npos) host.request_save();
          current_line.clear();
        } else if (current_line.size() < 4096) {
          current_line.push_back(static_cast<char>(byte));
        }
      }
      if (mark_ms >= 0 || o.mark.empty()) continue;
      matched = byte == static_cast<uint8_t>(o.mark[matched]) ? matched + 1 : (byte == static_cast<uint8_t>(o.mark[0]) ? 1 : 0);
      if (matched == o.mark.size()) mark_ms = ms_since(start);
    }
    to_stdout(std::move(batch));
  });
  auto uart = std::make_shared<Uart16550>("uart0", std::make_shared<VmInterruptLine>(*vm, aarch64::kUartSpi), &console);
  host.mmio().add(aarch64::kUartBase, 8, uart);
  host.mmio().add(aarch64::kExitDeviceBase, 4, std::make_shared<ExitPort>(&host));

  std::vector<std::unique_ptr<VcpuThread>> vcpus;
  if (restoring) {
    // vCPUs first (the last one initialises the vGIC), each saved state checked against
    // its fresh vCPU; then the VM's state (vGIC, counter), then the vCPUs' registers:
    // the order KvmArm64Vm::restore_state explains.
    std::vector<std::unique_ptr<LoadedVcpuState>> loaded;
    for (int i = 0; i < cpus; i++) {
      auto vcpu = vm->create_vcpu(i, cpus, VcpuSetup::ForRestore);
      loaded.push_back(vcpu->load_state(snap.vcpu_states[i]));
      vcpus.push_back(std::make_unique<VcpuThread>(std::move(vcpu), host));
    }
    const double created_ms = ms_since(start);
    vm->restore_state(snap.vm_state, false);
    for (int i = 0; i < cpus; i++) vcpus[i]->vcpu().restore_state(*loaded[i]);
    uart->restore(snap.uart_state);
    const double on_disk_s = (static_cast<double>(unix_ns()) - static_cast<double>(snap.machine.saved_at_unix_ns)) / 1e9;
    std::snprintf(line, sizeof line,
                  "restored in %.1f ms (state file read and checked %.1f ms, RAM %.1f ms for %llu MiB of data, VM+vGICv3 %.1f ms, vCPUs created and states checked %.1f ms, "
                  "GIC+registers+UART restored %.1f ms); %d vCPUs, %llu MiB RAM; the snapshot sat on disk %.2f s; guest counter set through %s",
                  ms_since(start), read_ms, ram_ms - read_ms, static_cast<unsigned long long>(ram_copied >> 20), setup_vm_ms - ram_ms, created_ms - setup_vm_ms,
                  ms_since(start) - created_ms, cpus, static_cast<unsigned long long>(memory_bytes >> 20), on_disk_s,
                  dynamic_cast<kvm::KvmArm64Vm&>(*vm).counter_restore_method());
    say(line);
  } else {
    Arm64LinuxBootInput in{&kernel, o.kernel, o.initrd.empty() ? nullptr : &initrd, o.cmdline, o.cpus, 0};
    LoadedArm64Linux loaded = load_arm64_linux(in, memory);
    for (int i = 0; i < o.cpus; i++) {
      auto vcpu = vm->create_vcpu(i, o.cpus, VcpuSetup::ForBoot);
      if (i == 0) arm64_vcpu(*vcpu).set_start_state(loaded.start);
      vcpus.push_back(std::make_unique<VcpuThread>(std::move(vcpu), host));
    }
    std::snprintf(line, sizeof line, "set-up %.1f ms (reading kernel and initrd %.1f ms, VM+RAM+vGICv3 %.1f ms, loading and vCPUs %.1f ms); kernel at 0x%llx, initrd at 0x%llx, device tree at 0x%llx; %d vCPUs",
                  ms_since(start), read_ms, setup_vm_ms - read_ms, ms_since(start) - setup_vm_ms, static_cast<unsigned long long>(loaded.kernel_address),
                  static_cast<unsigned long long>(loaded.initrd_address), static_cast<unsigned long long>(loaded.device_tree_address), o.cpus);
    say(line);
  }
  const double started_ms = ms_since(start);
  for (auto& v : vcpus) v->start();

  const bool save = host.wait_for_stop_or_save(std::chrono::seconds(o.timeout_s));
  const double end_ms = ms_since(start);
  std::optional<StopRequest> stop = host.stop();  // the guest's or a failure's, before stop_now() adds the driver's
  if (save) {
    // Pause (each vCPU completes its MMIO access before it parks), flush the console
    // so every byte the guest wrote before the pause is out, then capture.
    const auto t0 = Clock::now();
    const bool paused = host.pause(vcpus);
    const double pause_ms = ms_since(t0);
    if (paused) {
      console.flush();
      const auto t1 = Clock::now();
      std::vector<Section> sections;
      MachineRecord m;
      m.cpus = static_cast<uint32_t>(cpus);
      m.memory_bytes = memory_bytes;
      m.saved_at_unix_ns = unix_ns();
      sections.push_back({kMachine, 0, encode_machine(m)});
      // The VM's state first: it reads the guest counter before anything else.
      StateBlob vm_state = vm->save_state();
      for (int i = 0; i < cpus; i++) sections.push_back({kVcpuState, static_cast<uint32_t>(i), vcpus[i]->vcpu().save_state()});
      sections.push_back({kVmState, 0, std::move(vm_state)});
      sections.push_back({kUartState, 0, uart->save()});
      const double capture_ms = ms_since(t1);
      describe_saved_state(sections);
      const auto t2 = Clock::now();
      write_state_file(o.snapshot, sections);
      const uint64_t ram_written = write_ram(o.snapshot + ".ram", memory);
      const double write_ms = ms_since(t2);
      host.stop_now();
      for (auto& v : vcpus) v->join();
      std::snprintf(line, sizeof line,
                    "saved to %s after the console showed \"%s\" at %.1f ms: pause %.1f ms, state capture %.1f ms (vCPUs and vGIC), state file and %llu MiB of RAM data written %.1f ms",
                    o.snapshot.c_str(), o.save_after_line.c_str(), end_ms, pause_ms, capture_ms, static_cast<unsigned long long>(ram_written >> 20), write_ms);
      say(line);
      return 0;
    }
  }
  host.stop_now();
  for (auto& v : vcpus) v->kick();
  for (auto& v : vcpus) v->join();
  console.flush();
  if (restoring && first_output_ms >= 0) {
    std::snprintf(line, sizeof line, "first console output %.1f ms after the vCPUs started", first_output_ms - started_ms);
    say(line);
  }
  if (!o.mark.empty()) {
    if (mark_ms >= 0) std::snprintf(line, sizeof line, "console showed \"%s\" at %.1f ms", o.mark.c_str(), mark_ms);
    else std::snprintf(line, sizeof line, "console never showed \"%s\"", o.mark.c_str());
    say(line);
  }
  if (!stop) {
    if (save) say("the VM stopped before it could be saved");
    else say("--timeout " + std::to_string(o.timeout_s) + " s expired; VM stopped");
    return save ? 125 : 124;
  }
  std::snprintf(line, sizeof line, "%s at %.1f ms; %llu MMIO exits", describe(*stop).c_str(), end_ms, static_cast<unsigned long long>(host.mmio_exits()));
  say(line);
  switch (stop->kind) {
    case StopRequest::Kind::PowerOff: return 0;
    case StopRequest::Kind::ExitCode: return stop->exit_code;
    default: return 125;
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  try {
    return run(o);
  } catch (const VmrunError& e) {
    say(e.what());
    return 125;
  }
}
