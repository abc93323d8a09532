#include "hypercalls/uhyve_hypercalls.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "arch/x86_64/vcpu.h"
#include "common/hex.h"
#include "hypercalls/guest_buffer.h"
#include "hypercalls/uhyve_abi.h"

namespace vmrun::uhyve {

namespace {
constexpr size_t kMaxPathLength = 4096;
/** How long a Hermit guest that reported a CPU exception may go without a hypercall before it is stopped. */
constexpr std::chrono::seconds kStallAfterException{5};

std::optional<HostSpans> clamp_physical(const GuestMemory& m, uint64_t gpa, uint64_t len) {
  return physical_spans(m, gpa, std::min(len, kMaxTransfer));
}
}  // namespace

UhyveHypercalls::UhyveHypercalls(const GuestMemory& memory, VmControl& control, ConsoleOutput& console,
                                 std::shared_ptr<ConsoleInput> input, std::unique_ptr<GuestFiles> files, GuestProgram program)
    : memory_(memory),
      control_(control),
      console_(console),
      input_(std::move(input)),
      files_(std::move(files)),
      program_(std::move(program)),
      application_env_count_(program_.env.size()),
      exception_watch_(control, kStallAfterException) {
  // Cmdsize/Cmdval hand over the padded environment (see kReportedEnvEntries).
  if (program_.env.size() < static_cast<size_t>(v1::kReportedEnvEntries)) program_.env.resize(v1::kReportedEnvEntries);
}

bool UhyveHypercalls::is_hypercall_port(uint16_t port) {
  switch (port) {
    case v1::kWrite: case v1::kOpen: case v1::kClose: case v1::kRead: case v1::kExit: case v1::kLseek:
    case v1::kCmdsize: case v1::kCmdval: case v1::kUart: case v1::kUnlink: case v1::kSerialWriteBuffer:
    case v2::kExit: case v2::kSerialWriteByte: case v2::kSerialWriteBuffer: case v2::kSerialReadByte:
    case v2::kSerialReadBuffer: case v2::kFileWrite: case v2::kFileOpen: case v2::kFileClose: case v2::kFileRead:
    case v2::kFileLseek: case v2::kFileUnlink: case v2::kSharedMemOpen: case v2::kSharedMemClose:
      return true;
    default:
      return false;
  }
}

bool UhyveHypercalls::handle(Vcpu& vcpu, const VcpuExit& exit) {
  if (!is_hypercall_port(exit.port)) return false;
  exception_watch_.progress();
  if (!exit.is_write) {
    // Only SerialReadByte is meant to be read: the next input byte, 0 when none is queued.
    std::memset(exit.data, 0, static_cast<size_t>(exit.size) * exit.count);
    if (exit.port == v2::kSerialReadByte && exit.size >= 1) input_->take(exit.data, 1);
    return true;
  }
  if (exit.port >= v2::kExit) {
    handle_v2(vcpu, exit.port, x86_vcpu(vcpu).general_registers().rdi);
    return true;
  }
  uint32_t value = 0;
  std::memcpy(&value, exit.data, std::min<uint32_t>(exit.size, sizeof value));
  handle_v1(vcpu, exit.port, value, exit.data[0]);
  return true;
}

StateBlob UhyveHypercalls::save() { return encode_guest_files_state(files_->save()); }

void UhyveHypercalls::restore(const StateBlob& state) {
  files_->restore(decode_guest_files_state(state, std::string("the Hermit guest's file state (") + kStateName + ")"));
}

void UhyveHypercalls::handle_v1(Vcpu& vcpu, uint16_t port, uint64_t gpa, uint8_t byte) {
  switch (port) {
    case v1::kUart:
      kernel_console(&byte, 1);
      return;
    case v1::kWrite: {
      v1::Write w;
      if (!load(vcpu, "Write", port, gpa, w)) return;
      // Packed fields are copied before std::min takes them by reference (UBSan: misaligned).
      auto spans = virtual_spans(memory_, x86_vcpu(vcpu).paging_state(), w.buf, std::min(static_cast<uint64_t>(w.len), kMaxTransfer));
      // v1 Write has no result field: uhyve kernels read the count back from `len`.
      w.len = static_cast<uint64_t>(write_to(vcpu, w.fd, spans));
      store(gpa, w);
      return;
    }
    case v1::kRead: {
      v1::Read r;
      if (!load(vcpu, "Read", port, gpa, r)) return;
      r.ret = read_from(r.fd, virtual_spans(memory_, x86_vcpu(vcpu).paging_state(), r.buf, std::min(static_cast<uint64_t>(r.len), kMaxTransfer)));
      store(gpa, r);
      return;
    }
    case v1::kOpen: {
      v1::Open o;
      if (!load(vcpu, "Open", port, gpa, o)) return;
      o.ret = open(o.name, o.flags, o.mode);
      store(gpa, o);
      return;
    }
    case v1::kClose: {
      v1::Close c;
      if (!load(vcpu, "Close", port, gpa, c)) return;
      c.ret = files_->close(c.fd);
      store(gpa, c);
      return;
    }
    case v1::kLseek: {
      v1::Lseek l;
      if (!load(vcpu, "Lseek", port, gpa, l)) return;
      l.offset = files_->lseek(l.fd, l.offset, l.whence);
      store(gpa, l);
      return;
    }
    case v1::kUnlink: {
      v1::Unlink u;
      if (!load(vcpu, "Unlink", port, gpa, u)) return;
      u.ret = unlink(u.name);
      store(gpa, u);
      return;
    }
    case v1::kExit: {
      v1::Exit e;
      if (load(vcpu, "Exit", port, gpa, e)) exit_guest(e.code, vcpu);
      return;
    }
    case v1::kCmdsize:
      fill_cmdsize(gpa, vcpu);
      return;
    case v1::kCmdval:
      copy_cmdval(gpa, vcpu);
      return;
    case v1::kSerialWriteBuffer: {
      v1::SerialWriteBuffer s;
      if (!load(vcpu, "SerialWriteBuffer", port, gpa, s)) return;
      // No result field: a buffer outside RAM prints nothing.
      if (auto spans = clamp_physical(memory_, s.buf, s.len))
        for (const iovec& span : *spans) kernel_console(static_cast<const uint8_t*>(span.iov_base), span.iov_len);
      return;
    }
  }
}

void UhyveHypercalls::handle_v2(Vcpu& vcpu, uint16_t port, uint64_t arg) {
  switch (port) {
    case v2::kExit:
      exit_guest(static_cast<int32_t>(arg), vcpu);
      return;
    case v2::kSerialWriteByte: {
      uint8_t byte = static_cast<uint8_t>(arg);
      kernel_console(&byte, 1);
      return;
    }
    case v2::kSerialWriteBuffer: {
      v2::SerialWriteBuffer s;
      if (!load(vcpu, "SerialWriteBuffer", port, arg, s)) return;
      if (auto spans = clamp_physical(memory_, s.buf, s.len))
        for (const iovec& span : *spans) kernel_console(static_cast<const uint8_t*>(span.iov_base), span.iov_len);
      return;
    }
    case v2::kSerialReadByte:
      return;  // answered on the port read
    case v2::kSerialReadBuffer: {
      v2::SerialReadBuffer s;
      if (!load(vcpu, "SerialReadBuffer", port, arg, s)) return;
      // Whatever input is queued, without waiting; a buffer outside RAM gets nothing.
      auto spans = clamp_physical(memory_, s.buf, s.maxlen);
      s.len = spans ? static_cast<uint64_t>(read_console(*spans, false)) : 0;
      store(arg, s);
      return;
    }
    case v2::kFileWrite: {
      v2::ReadWrite w;
      if (!load(vcpu, "FileWrite", port, arg, w)) return;
      w.ret = write_to(vcpu, w.fd, clamp_physical(memory_, w.buf, w.len));
      store(arg, w);
      return;
    }
    case v2::kFileRead: {
      v2::ReadWrite r;
      if (!load(vcpu, "FileRead", port, arg, r)) return;
      r.ret = read_from(r.fd, clamp_physical(memory_, r.buf, r.len));
      store(arg, r);
      return;
    }
    case v2::kFileOpen: {
      v1::Open o;
      if (!load(vcpu, "FileOpen", port, arg, o)) return;
      o.ret = open(o.name, o.flags, o.mode);
      store(arg, o);
      return;
    }
    case v2::kFileClose: {
      v1::Close c;
      if (!load(vcpu, "FileClose", port, arg, c)) return;
      c.ret = files_->close(c.fd);
      store(arg, c);
      return;
    }
    case v2::kFileLseek: {
      v2::Lseek l;
      if (!load(vcpu, "FileLseek", port, arg, l)) return;
      l.offset = files_->lseek(l.fd, l.offset, static_cast<int32_t>(l.whence));
      store(arg, l);
      return;
    }
    case v2::kFileUnlink: {
      v1::Unlink u;
      if (!load(vcpu, "FileUnlink", port, arg, u)) return;
      u.ret = unlink(u.name);
      store(arg, u);
      return;
    }
    case v2::kSharedMemOpen:
    case v2::kSharedMemClose: {
      StopRequest r;
      r.kind = StopRequest::Kind::GuestError;
      r.vcpu = vcpu.index();
      r.rip = x86_vcpu(vcpu).general_registers().rip;
      r.detail = "the Hermit guest used uhyve's shared-memory hypercall (port " + hex(port) + "), which vmrun does not provide";
      control_.request_stop(r);
      return;
    }
  }
}

void UhyveHypercalls::kernel_console(const uint8_t* data, size_t len) {
  console_.append(data, len);
  exception_watch_.console(data, len);
}

void UhyveHypercalls::console_write(const HostSpans& spans) {
  for (const iovec& s : spans) console_.append(static_cast<const uint8_t*>(s.iov_base), s.iov_len);
}

int64_t UhyveHypercalls::write_to(Vcpu&, int32_t fd, const std::optional<HostSpans>& spans) {
  if (!spans) return -EFAULT;
  if (fd == 1 || fd == 2) {
    console_write(*spans);
    int64_t total = 0;
    for (const iovec& s : *spans) total += static_cast<int64_t>(s.iov_len);
    return total;
  }
  return files_->write(fd, *spans);
}

int64_t UhyveHypercalls::read_from(int32_t fd, const std::optional<HostSpans>& spans) {
  if (!spans) return -EFAULT;
  if (fd == 0) return read_console(*spans, true);
  return files_->read(fd, *spans);
}

int64_t UhyveHypercalls::read_console(const HostSpans& spans, bool wait) {
  int64_t total = 0;
  for (const iovec& s : spans) {
    auto* out = static_cast<uint8_t*>(s.iov_base);
    // Only the first span may wait: a read returns what is there once it has something.
    size_t n = wait && total == 0 ? input_->read(out, s.iov_len) : input_->take(out, s.iov_len);
    total += static_cast<int64_t>(n);
    if (n < s.iov_len) break;
  }
  return total;
}

int32_t UhyveHypercalls::open(uint64_t name, int32_t flags, int32_t mode) {
  int error = 0;
  auto path = read_c_string(memory_, name, kMaxPathLength, error);
  if (!path) return -error;
  return files_->open(*path, flags, mode);
}

int32_t UhyveHypercalls::unlink(uint64_t name) {
  int error = 0;
  auto path = read_c_string(memory_, name, kMaxPathLength, error);
  if (!path) return -error;
  return files_->unlink(*path);
}

void UhyveHypercalls::fill_cmdsize(uint64_t gpa, Vcpu& vcpu) {
  v1::Cmdsize c{};
  if (!load(vcpu, "Cmdsize", v1::kCmdsize, gpa, c)) return;
  std::memset(&c, 0, sizeof c);
  for (const std::string& a : program_.argv) {
    if (c.argc >= v1::kMaxArgcEnvc) break;
    c.argsz[c.argc++] = static_cast<int32_t>(a.size() + 1);
  }
  for (const std::string& e : program_.env) {
    if (c.envc >= v1::kMaxArgcEnvc) break;
    c.envsz[c.envc++] = static_cast<int32_t>(e.size() + 1);
  }
  store(gpa, c);
  if (program_.trace)
    std::fprintf(stderr, "vmrun: hermit: Cmdsize argc=%d envc=%d (%zu of the application, the rest empty)\n", c.argc, c.envc,
                 application_env_count_);
}

bool UhyveHypercalls::copy_strings(uint64_t array_gpa, const std::vector<std::string>& strings) {
  size_t count = std::min<size_t>(strings.size(), v1::kMaxArgcEnvc);
  for (size_t i = 0; i < count; i++) {
    auto destination = memory_.read_obj<uint64_t>(array_gpa + i * 8);
    if (!destination) return false;
    const std::string& s = strings[i];
    uint8_t* host = memory_.range(*destination, s.size() + 1);
    if (!host) return false;
    std::memcpy(host, s.c_str(), s.size() + 1);
  }
  return true;
}

void UhyveHypercalls::copy_cmdval(uint64_t gpa, Vcpu& vcpu) {
  v1::Cmdval c;
  if (!load(vcpu, "Cmdval", v1::kCmdval, gpa, c)) return;
  // No result field: destinations outside RAM leave the guest without its arguments,
  // which it cannot notice, so it is stopped instead.
  if (!copy_strings(c.argv, program_.argv)) return refuse(vcpu, "Cmdval (argv destinations)", v1::kCmdval, c.argv);
  if (!copy_strings(c.envp, program_.env)) return refuse(vcpu, "Cmdval (envp destinations)", v1::kCmdval, c.envp);
  if (program_.trace) {
    trace_strings("argv", c.argv, program_.argv.size());
    trace_strings("env", c.envp, application_env_count_);
  }
}

void UhyveHypercalls::trace_strings(const char* what, uint64_t array_gpa, size_t count) const {
  for (size_t i = 0; i < std::min<size_t>(count, v1::kMaxArgcEnvc); i++) {
    uint64_t at = memory_.read_obj<uint64_t>(array_gpa + i * 8).value_or(0);
    int error = 0;
    std::string s = read_c_string(memory_, at, kMaxPathLength, error).value_or("?");
    std::fprintf(stderr, "vmrun: hermit: Cmdval %s[%zu] at %s = \"%s\"\n", what, i, hex(at).c_str(), s.c_str());
  }
}

void UhyveHypercalls::exit_guest(int32_t code, Vcpu& vcpu) {
  StopRequest r;
  r.kind = StopRequest::Kind::ExitCode;
  r.exit_code = code;
  r.vcpu = vcpu.index();
  r.detail = "the guest exited with code " + std::to_string(code);
  control_.request_stop(r);
}

void UhyveHypercalls::refuse(Vcpu& vcpu, const std::string& what, uint16_t port, uint64_t address) {
  StopRequest r;
  r.kind = StopRequest::Kind::GuestError;
  r.vcpu = vcpu.index();
  try {
    r.rip = x86_vcpu(vcpu).general_registers().rip;
  } catch (...) {
  }
  r.detail = "the Hermit guest's " + what + " hypercall (port " + hex(port) + ") points at " + hex(address) +
             ", which is not in guest RAM";
  control_.request_stop(r);
}

}  // namespace vmrun::uhyve
