#include "debug/gdb_stub.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "arch/x86_64/gdb_registers.h"
#include "arch/x86_64/page_walk.h"
#include "arch/x86_64/vcpu.h"
#include "common/error.h"
#include "vmm/machine.h"

namespace vmrun {

using namespace gdb;

namespace {

/** The stop a debugger's kill asks for: 137 (128 + SIGKILL), as for a killed container. */
StopRequest killed_by_debugger() {
  StopRequest r;
  r.kind = StopRequest::Kind::Killed;
  r.exit_code = 137;
  r.detail = "killed from gdb";
  return r;
}

constexpr auto kPauseTimeout = std::chrono::seconds(5);
constexpr uint8_t kInt3 = 0xCC;
constexpr uint64_t kDr6Breakpoints = 0xF, kDr6SingleStep = 1ULL << 14;

std::string hex2(unsigned v) {
  char b[3];
  std::snprintf(b, sizeof b, "%02x", v & 0xFF);
  return b;
}

std::string hex_number(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%llx", static_cast<unsigned long long>(v));
  return b;
}

/** "ADDR,LEN" with LEN bounded. */
bool parse_address_length(std::string_view s, uint64_t* address, uint64_t* length) {
  auto [a, l] = split_once(s, ',');
  auto av = parse_hex_number(a), lv = parse_hex_number(l);
  if (!av || !lv) return false;
  *address = *av;
  *length = *lv;
  return true;
}

}  // namespace

GdbStub::GdbStub(Machine& machine, const GdbListenConfig& config, DebugTrapSupport traps, std::string note)
    : machine_(machine), traps_(traps), note_(std::move(note)) {
  const std::string where = config.host + ":" + std::to_string(config.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(config.host.c_str(), std::to_string(config.port).c_str(), &hints, &found);
  if (rc != 0 || !found) throw VmrunError(ErrorCode::Usage, "--gdb " + where + ": cannot resolve " + config.host + " (" + gai_strerror(rc) + ")");
  int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, found->ai_addr, found->ai_addrlen) != 0 || listen(fd, 1) != 0) {
    int err = errno;
    if (fd >= 0) close(fd);
    freeaddrinfo(found);
    throw VmrunError(ErrorCode::Usage, errno_message("--gdb " + where + ": cannot listen there", err));
  }
  freeaddrinfo(found);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  uint16_t port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port) : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  address_ = (config.host.find(':') != std::string::npos ? "[" + config.host + "]" : config.host) + ":" + std::to_string(port);
  listen_fd_ = fd;
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    close(listen_fd_);
    throw VmrunError(ErrorCode::Host, errno_message("cannot create the gdb stub's eventfd", errno));
  }
  user_step_.assign(static_cast<size_t>(machine_.vcpu_count()), 0);
}

GdbStub::~GdbStub() {
  shut_down();
  if (listen_fd_ >= 0) close(listen_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

void GdbStub::start() {
  std::string line = "vmrun: gdb: the guest waits at its first instruction for a debugger on " + address_ + " (gdb: target remote " + address_ + ")\n";
  if (!note_.empty()) line += "vmrun: gdb: " + note_ + "\n";
  if (!traps_.int3 || !traps_.hardware_breakpoints)
    line += std::string("vmrun: gdb: this host's KVM does not report ") + (!traps_.int3 && !traps_.hardware_breakpoints ? "int3 or debug-register breakpoints" : !traps_.int3 ? "int3" : "debug-register breakpoints") +
            " to the VMM (nested KVM under emulation does not): those breakpoints are emulated by single-stepping, which is slow\n";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  thread_ = std::thread([this] { thread_main(); });
}

void GdbStub::shut_down() {
  shut_down_.store(true);
  wake();
  if (thread_.joinable()) thread_.join();
}

void GdbStub::wake() {
  uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof one);
}

bool GdbStub::on_debug_exit(int vcpu, const VcpuExit& exit) {
  StopKind kind = StopKind::Signal;
  if (exit.debug_exception == 3) {
    kind = StopKind::SoftwareBreakpoint;
  } else if (exit.debug_exception == 1 && (exit.debug_dr6 & kDr6Breakpoints)) {
    kind = StopKind::HardwareBreakpoint;
  } else if (exit.debug_exception == 1) {
    kind = StopKind::Step;
    // Breakpoint emulation: a step the debugger did not ask for stops only at a breakpoint.
    if (emulating_ && !user_step_[static_cast<size_t>(vcpu)]) {
      auto hit = std::find_if(emulated_snapshot_.begin(), emulated_snapshot_.end(), [&](const auto& b) { return b.first == exit.address; });
      if (hit == emulated_snapshot_.end()) return true;
      kind = hit->second;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!pending_) pending_ = Stop{vcpu, kind};  // the first stop is reported; the others stay parked
  }
  machine_.hold_for_debugger();
  wake();
  return true;
}

void GdbStub::machine_stopped(const StopRequest& request) {
  std::unique_lock<std::mutex> lock(mu_);
  machine_ended_ = true;
  end_ = request;
  lock.unlock();
  wake();
  lock.lock();
  // The debugger hears the exit before the process reports it (and may exit).
  cv_.wait_for(lock, std::chrono::seconds(2), [&] { return end_reported_ || !thread_.joinable(); });
}

void GdbStub::thread_main() {
  int client = -1;
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (fds[1].revents) {
      uint64_t v;
      (void)!read(wake_fd_, &v, sizeof v);
    }
    if (shut_down_.load()) break;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (machine_ended_) {
        end_reported_ = true;
        cv_.notify_all();
        break;
      }
    }
    if (fds[0].revents & POLLIN) {
      client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) break;
    }
  }
  close(listen_fd_);
  listen_fd_ = -1;
  if (client < 0) return;
  int one = 1;
  setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  SessionEnd end = session(client);
  close(client);
  if (end == SessionEnd::Disconnected && !machine_.stop_requested()) {
    // The debugger went away without detaching: the guest goes on as after a detach.
    if (!stopped_) pause_all();
    release_all();
  }
  std::lock_guard<std::mutex> lock(mu_);
  end_reported_ = true;
  cv_.notify_all();
}

GdbStub::SessionEnd GdbStub::session(int fd) {
  PacketReader reader;
  std::vector<InputEvent> events;
  uint8_t buf[4096];
  for (;;) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return SessionEnd::Disconnected;
    }
    if (fds[1].revents) {
      uint64_t v;
      (void)!read(wake_fd_, &v, sizeof v);
    }
    if (shut_down_.load()) return SessionEnd::ShutDown;
    bool ended;
    std::optional<Stop> stop;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ended = machine_ended_;
      if (!stopped_ && pending_) stop = pending_;
    }
    if (ended) {
      send_packet(fd, exit_reply());
      std::lock_guard<std::mutex> lock(mu_);
      end_reported_ = true;
      cv_.notify_all();
      return SessionEnd::MachineEnded;
    }
    if (stop) {
      pause_all();
      last_stop_ = *stop;
      g_vcpu_ = stop->vcpu;
      send_packet(fd, stop_reply(last_stop_));
    }
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return SessionEnd::Disconnected;
    events.clear();
    reader.feed(buf, static_cast<size_t>(n), events);
    for (auto& e : events) {
      switch (e.kind) {
        case InputEvent::Kind::Ack:
          break;
        case InputEvent::Kind::Nack:
          if (!last_reply_.empty()) send_raw(fd, last_reply_);
          break;
        case InputEvent::Kind::BadChecksum:
          if (!no_ack_) send_raw(fd, "-");
          break;
        case InputEvent::Kind::TooLong:
          if (!no_ack_) send_raw(fd, "+");
          send_packet(fd, "E01");
          break;
        case InputEvent::Kind::Interrupt:
          if (!stopped_) {
            pause_all();
            std::lock_guard<std::mutex> lock(mu_);
            pending_.reset();
          }
          last_stop_ = Stop{g_vcpu_, StopKind::Interrupt};
          send_packet(fd, stop_reply(last_stop_));
          break;
        case InputEvent::Kind::Packet: {
          if (!no_ack_) send_raw(fd, "+");
          if (!stopped_) {
            // All-stop: a debugger waits for the stop reply before it sends more.
            send_packet(fd, "E16");
            break;
          }
          SessionEnd end = SessionEnd::Disconnected;
          bool ending = false;
          std::optional<std::string> reply;
          try {
            reply = handle(e.payload, &end);
            ending = end != SessionEnd::Disconnected;
          } catch (const std::exception&) {
            // A backend call refused (a read-only register) or failed: the debugger sees an error.
            reply = "E0e";
          }
          if (reply) send_packet(fd, *reply);
          if (e.payload == "QStartNoAckMode") no_ack_ = true;
          if (ending) return end;
          break;
        }
      }
    }
  }
}

void GdbStub::send_raw(int fd, std::string_view bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the read side sees the disconnect
    done += static_cast<size_t>(n);
  }
}

void GdbStub::send_packet(int fd, std::string_view payload) {
  last_reply_ = frame_packet(payload);
  send_raw(fd, last_reply_);
}

std::string GdbStub::stop_reply(const Stop& stop) const {
  std::string r = std::string(stop.kind == StopKind::Interrupt ? "T02" : "T05") + "thread:" + hex_number(static_cast<uint64_t>(stop.vcpu) + 1) + ";";
  if (stop.kind == StopKind::SoftwareBreakpoint) r += "swbreak:;";
  if (stop.kind == StopKind::HardwareBreakpoint) r += "hwbreak:;";
  return r;
}

std::string GdbStub::exit_reply() const {
  switch (end_.kind) {
    case StopRequest::Kind::ExitCode:
      return "W" + hex2(static_cast<unsigned>(end_.exit_code));
    case StopRequest::Kind::Reset:
    case StopRequest::Kind::PowerOff:
      return "W00";
    default:
      return "X09";  // killed, or the guest failed
  }
}

std::optional<int> GdbStub::parse_thread(std::string_view id) const {
  if (id == "-1") return -1;
  auto v = parse_hex_number(id);
  if (!v) return std::nullopt;
  if (*v == 0) return -1;  // "any thread"
  if (*v > static_cast<uint64_t>(machine_.vcpu_count())) return std::nullopt;
  return static_cast<int>(*v - 1);
}

std::optional<std::string> GdbStub::handle(std::string_view p, SessionEnd* end) {
  if (p.empty()) return "";
  const std::string_view args = p.substr(1);
  switch (p[0]) {
    case '?':
      return stop_reply(last_stop_);
    case 'g':
      return read_registers(g_vcpu_);
    case 'G':
      return write_registers(g_vcpu_, args);
    case 'p':
      return read_register(g_vcpu_, args);
    case 'P':
      return write_register(g_vcpu_, args);
    case 'm':
      return read_memory(args);
    case 'M':
      return write_memory(args, false);
    case 'X':
      return write_memory(args, true);
    case 'Z':
      return insert_breakpoint(args, true);
    case 'z':
      return insert_breakpoint(args, false);
    case 'c':
    case 'C':
    case 's':
    case 'S': {
      if (!args.empty() && (p[0] == 'c' || p[0] == 's')) return "E01";  // resuming at another address is not supported
      std::vector<Action> actions(static_cast<size_t>(machine_.vcpu_count()), Action::Continue);
      if (p[0] == 's' || p[0] == 'S') {
        // Step the Hc thread (or the one that last stopped); the others stay stopped.
        std::fill(actions.begin(), actions.end(), Action::None);
        actions[static_cast<size_t>(c_vcpu_ >= 0 ? c_vcpu_ : last_stop_.vcpu)] = Action::Step;
      }
      resume(actions);
      return std::nullopt;
    }
    case 'v':
      if (p == "vCont?") return "vCont;c;C;s;S";
      if (p.substr(0, 6) == "vCont;") return resume_packet(p.substr(6));
      if (p.substr(0, 5) == "vKill") {
        machine_.request_stop(killed_by_debugger());
        *end = SessionEnd::Killed;
        return "OK";
      }
      return "";
    case 'H': {
      if (args.empty()) return "E01";
      auto t = parse_thread(args.substr(1));
      if (!t) return "E01";
      if (args[0] == 'g') g_vcpu_ = *t < 0 ? 0 : *t;
      else if (args[0] == 'c') c_vcpu_ = *t;
      else return "E01";
      return "OK";
    }
    case 'T': {
      auto t = parse_thread(args);
      return t && *t >= 0 ? "OK" : "E01";
    }
    case 'D':
      release_all();
      *end = SessionEnd::Detached;
      return "OK";
    case 'k':
      machine_.request_stop(killed_by_debugger());
      *end = SessionEnd::Killed;
      return std::nullopt;
    case 'q': {
      if (p.substr(0, 10) == "qSupported") return "PacketSize=" + hex_number(kMaxPacketSize) + ";qXfer:features:read+;swbreak+;hwbreak+;QStartNoAckMode+;vContSupported+";
      if (p == "qAttached") return "1";
      if (p == "qC") return "QC" + hex_number(static_cast<uint64_t>(g_vcpu_) + 1);
      if (p == "qfThreadInfo") {
        std::string r = "m";
        for (int i = 0; i < machine_.vcpu_count(); i++) r += (i ? "," : "") + hex_number(static_cast<uint64_t>(i) + 1);
        return r;
      }
      if (p == "qsThreadInfo") return "l";
      if (p.substr(0, 17) == "qThreadExtraInfo,") {
        auto t = parse_thread(p.substr(17));
        if (!t || *t < 0) return "E01";
        std::string name = "vCPU " + std::to_string(*t);
        return to_hex(reinterpret_cast<const uint8_t*>(name.data()), name.size());
      }
      if (p.substr(0, 8) == "qSymbol:") return "OK";
      const std::string_view xfer = "qXfer:features:read:target.xml:";
      if (p.substr(0, xfer.size()) == xfer) {
        uint64_t offset, length;
        if (!parse_address_length(p.substr(xfer.size()), &offset, &length)) return "E01";
        const std::string& xml = x86::gdb_target_xml();
        if (offset >= xml.size()) return "l";
        length = std::min<uint64_t>({length, kMaxPacketSize / 2, xml.size() - offset});
        return (offset + length >= xml.size() ? "l" : "m") + xml.substr(offset, length);
      }
      return "";
    }
    case 'Q':
      if (p == "QStartNoAckMode") return "OK";
      return "";
    default:
      return "";
  }
}

std::optional<std::string> GdbStub::resume_packet(std::string_view list) {
  // vCont;ACTION[:TID];ACTION...: the first action naming a thread wins for it; one
  // without a thread applies to every thread not named before it.
  const size_t n = static_cast<size_t>(machine_.vcpu_count());
  std::vector<Action> actions(n, Action::None);
  std::vector<char> decided(n, 0);
  while (!list.empty()) {
    auto [item, rest] = split_once(list, ';');
    list = rest;
    auto [verb, thread] = split_once(item, ':');
    if (verb.empty()) return "E01";
    Action a;
    if (verb[0] == 'c' || verb[0] == 'C') a = Action::Continue;
    else if (verb[0] == 's' || verb[0] == 'S') a = Action::Step;
    else return "E01";
    if (item.find(':') == std::string_view::npos) {
      for (size_t i = 0; i < n; i++)
        if (!decided[i]) actions[i] = a, decided[i] = 1;
      continue;
    }
    auto t = parse_thread(thread);
    if (!t) return "E01";
    for (size_t i = 0; i < n; i++)
      if ((*t < 0 || static_cast<size_t>(*t) == i) && !decided[i]) actions[i] = a, decided[i] = 1;
  }
  resume(actions);
  return std::nullopt;
}

void GdbStub::resume(const std::vector<Action>& actions) {
  emulated_snapshot_ = emulated_;
  emulating_ = !emulated_.empty();
  std::vector<bool> run(actions.size());
  for (size_t i = 0; i < actions.size(); i++) {
    user_step_[i] = actions[i] == Action::Step;
    run[i] = actions[i] != Action::None;
    GuestDebug d;
    d.enabled = true;
    d.software_breakpoints = traps_.int3;
    d.single_step = actions[i] == Action::Step || (actions[i] == Action::Continue && emulating_);
    // A step the debugger asked for runs the next instruction, not a timer interrupt's handler;
    // breakpoint emulation lets interrupts in, as the guest would see them without a debugger.
    d.block_interrupts = actions[i] == Action::Step;
    d.hardware_breakpoint_count = static_cast<int>(hardware_.size());
    for (size_t b = 0; b < hardware_.size(); b++) d.hardware_breakpoints[b] = hardware_[b];
    machine_.vcpu(static_cast<int>(i)).set_guest_debug(d);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.reset();
  }
  stopped_ = false;
  machine_.release_for_debugger(run);
}

void GdbStub::pause_all() {
  if (!machine_.pause(PauseHolder::Debugger, std::chrono::duration_cast<std::chrono::milliseconds>(kPauseTimeout))) {
    // A vCPU that cannot be stopped in 5 s (stuck in the host): stay running.
    std::fputs("vmrun: gdb: the vCPUs did not stop within 5 s\n", stderr);
    return;
  }
  stopped_ = true;
}

void GdbStub::release_all() {
  for (const auto& b : patched_) machine_.memory().write(b.physical, &b.original, 1);
  patched_.clear();
  hardware_.clear();
  emulated_.clear();
  emulated_snapshot_.clear();
  emulating_ = false;
  for (int i = 0; i < machine_.vcpu_count(); i++) machine_.vcpu(i).set_guest_debug(GuestDebug{});
  stopped_ = false;
  machine_.release_for_debugger(std::vector<bool>(static_cast<size_t>(machine_.vcpu_count()), true));
}

std::string GdbStub::read_registers(int vcpu) {
  x86::DebugRegisterFile f = x86_vcpu(machine_.vcpu(vcpu)).debug_registers();
  std::vector<uint8_t> bytes(x86::gdb_register_file_size());
  size_t at = 0;
  for (int n = 0; n < x86::kGdbRegisterCount; n++) {
    x86::read_gdb_register(f, n, bytes.data() + at);
    at += x86::gdb_register_size(n);
  }
  return to_hex(bytes.data(), bytes.size());
}

std::string GdbStub::write_registers(int vcpu, std::string_view hex) {
  auto bytes = from_hex(hex);
  if (!bytes || bytes->size() > x86::gdb_register_file_size()) return "E01";
  x86::DebugRegisterFile f = x86_vcpu(machine_.vcpu(vcpu)).debug_registers();
  size_t at = 0;
  // A shorter G sets the registers it covers (GDB sends all of them).
  for (int n = 0; n < x86::kGdbRegisterCount && at + x86::gdb_register_size(n) <= bytes->size(); n++) {
    x86::write_gdb_register(f, n, bytes->data() + at);
    at += x86::gdb_register_size(n);
  }
  x86_vcpu(machine_.vcpu(vcpu)).set_debug_registers(f);
  return "OK";
}

std::string GdbStub::read_register(int vcpu, std::string_view args) {
  auto n = parse_hex_number(args);
  if (!n || *n >= static_cast<uint64_t>(x86::kGdbRegisterCount)) return "E01";
  x86::DebugRegisterFile f = x86_vcpu(machine_.vcpu(vcpu)).debug_registers();
  uint8_t bytes[16];
  x86::read_gdb_register(f, static_cast<int>(*n), bytes);
  return to_hex(bytes, x86::gdb_register_size(static_cast<int>(*n)));
}

std::string GdbStub::write_register(int vcpu, std::string_view args) {
  auto [number, value] = split_once(args, '=');
  auto n = parse_hex_number(number);
  auto bytes = from_hex(value);
  if (!n || *n >= static_cast<uint64_t>(x86::kGdbRegisterCount) || !bytes || bytes->size() != x86::gdb_register_size(static_cast<int>(*n))) return "E01";
  x86::DebugRegisterFile f = x86_vcpu(machine_.vcpu(vcpu)).debug_registers();
  x86::write_gdb_register(f, static_cast<int>(*n), bytes->data());
  x86_vcpu(machine_.vcpu(vcpu)).set_debug_registers(f);
  return "OK";
}

size_t GdbStub::access_memory(uint64_t address, uint8_t* data, size_t len, bool write) {
  // Virtual addresses as the selected vCPU sees them (its page tables; physical with paging off).
  const x86::PagingState paging = x86_vcpu(machine_.vcpu(g_vcpu_)).paging_state();
  const GuestMemory& mem = machine_.memory();
  size_t done = 0;
  while (done < len) {
    uint64_t va = address + done;
    auto pa = x86::translate(mem, paging, va);
    if (!pa) break;
    size_t n = std::min<size_t>(0x1000 - (va & 0xFFF), len - done);
    bool ok = write ? mem.write(*pa, data + done, n) : mem.read(*pa, data + done, n);
    if (!ok) break;
    done += n;
  }
  return done;
}

std::string GdbStub::read_memory(std::string_view args) {
  uint64_t address, length;
  if (!parse_address_length(args, &address, &length)) return "E01";
  length = std::min<uint64_t>(length, (kMaxPacketSize - 4) / 2);
  std::vector<uint8_t> data(length);
  size_t n = access_memory(address, data.data(), data.size(), false);
  if (n == 0 && length > 0) return "E0e";  // EFAULT
  // The debugger sees the guest's own bytes, not the int3s standing in for them.
  for (const auto& b : patched_)
    if (b.address >= address && b.address - address < n) data[b.address - address] = b.original;
  return to_hex(data.data(), n);
}

std::string GdbStub::write_memory(std::string_view args, bool binary) {
  auto [range, payload] = split_once(args, ':');
  uint64_t address, length;
  if (!parse_address_length(range, &address, &length) || length > kMaxPacketSize) return "E01";
  std::vector<uint8_t> data;
  if (binary) {
    std::string raw = unescape_binary(payload);
    data.assign(raw.begin(), raw.end());
  } else {
    auto bytes = from_hex(payload);
    if (!bytes) return "E01";
    data = std::move(*bytes);
  }
  if (data.size() != length) return "E01";
  if (length == 0) return "OK";
  // Where an int3 of ours stands, the new byte becomes its original and the int3 stays.
  for (auto& b : patched_)
    if (b.address >= address && b.address - address < length) std::swap(b.original, data[b.address - address]), data[b.address - address] = kInt3;
  return access_memory(address, data.data(), data.size(), true) == data.size() ? "OK" : "E0e";
}

std::string GdbStub::insert_breakpoint(std::string_view args, bool insert) {
  auto [type, rest] = split_once(args, ',');
  auto [addr, kind] = split_once(rest, ',');
  auto address = parse_hex_number(addr);
  if (!address || (type != "0" && type != "1")) return "";  // watchpoints: not supported
  const StopKind stop_kind = type == "0" ? StopKind::SoftwareBreakpoint : StopKind::HardwareBreakpoint;
  const bool native = type == "0" ? traps_.int3 : traps_.hardware_breakpoints;
  if (!native) {
    auto it = std::find(emulated_.begin(), emulated_.end(), std::make_pair(*address, stop_kind));
    if (insert && it == emulated_.end()) emulated_.emplace_back(*address, stop_kind);
    if (!insert && it != emulated_.end()) emulated_.erase(it);
    return "OK";
  }
  if (type == "1") {
    auto it = std::find(hardware_.begin(), hardware_.end(), *address);
    if (insert && it == hardware_.end()) {
      if (hardware_.size() >= 4) return "E1c";  // ENOSPC: four debug registers
      hardware_.push_back(*address);
    }
    if (!insert && it != hardware_.end()) hardware_.erase(it);
    return "OK";
  }
  auto it = std::find_if(patched_.begin(), patched_.end(), [&](const PatchedBreakpoint& b) { return b.address == *address; });
  if (!insert) {
    if (it != patched_.end()) {
      machine_.memory().write(it->physical, &it->original, 1);
      patched_.erase(it);
    }
    return "OK";
  }
  if (it != patched_.end()) return "OK";
  auto pa = x86::translate(machine_.memory(), x86_vcpu(machine_.vcpu(g_vcpu_)).paging_state(), *address);
  uint8_t original;
  if (!pa || !machine_.memory().read(*pa, &original, 1)) return "E0e";
  machine_.memory().write(*pa, &kInt3, 1);
  patched_.push_back({*address, *pa, original});
  return "OK";
}

}  // namespace vmrun
