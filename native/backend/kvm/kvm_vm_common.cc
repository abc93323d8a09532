#include "backend/kvm/kvm_vm_common.h"

#include "backend/kvm/kvm_uapi.h"

#include <fcntl.h>
#include <sys/eventfd.h>

#include <cstring>

namespace vmrun::kvm {

static std::string describe_open_failure(const std::string& path, int err) {
  if (err == ENOENT)
    return path + " does not exist: this host has no KVM (enable virtualization, or load kvm_intel/kvm_amd)";
  if (err == EACCES || err == EPERM)
    return "permission denied opening " + path + ": add your user to the kvm group (sudo usermod -aG kvm $USER, then log in again)";
  return errno_message("cannot open " + path, err);
}

Fd open_kvm_device(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) throw VmrunError(ErrorCode::Host, describe_open_failure(path, errno));
  int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
  if (version < 0) throw VmrunError(ErrorCode::Host, path + " is not a KVM device (KVM_GET_API_VERSION failed: " + std::strerror(errno) + ")");
  if (version != KVM_API_VERSION)
    throw VmrunError(ErrorCode::Host, path + " speaks KVM API version " + std::to_string(version) + ", vmrun needs " + std::to_string(KVM_API_VERSION));
  return fd;
}

int check_kvm_extension(int fd, long cap) {
  int r = ::ioctl(fd, KVM_CHECK_EXTENSION, cap);
  return r < 0 ? 0 : r;
}

void map_guest_memory(int vm_fd, const GuestMemory& memory) {
  uint32_t slot = 0;
  for (const auto& r : memory.regions()) {
    kvm_userspace_memory_region region{};
    region.slot = slot++;
    region.guest_phys_addr = r.guest_address;
    region.memory_size = r.size;
    region.userspace_addr = reinterpret_cast<uint64_t>(r.host);
    checked_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region, "SET_USER_MEMORY_REGION");
  }
}

namespace {
/** An eventfd KVM watches: each write pulses the GSI (irqfd), with no exit to the VMM. */
class KvmIrqfd : public InterruptEvent {
 public:
  explicit KvmIrqfd(Fd fd) : fd_(std::move(fd)) {}
  void trigger() override {
    uint64_t one = 1;
    // EAGAIN means the counter is already pending: the interrupt is raised anyway.
    [[maybe_unused]] ssize_t n = ::write(fd_.get(), &one, sizeof one);
  }
  // A vhost-user back end (virtiofsd) signals the GSI itself through this fd.
  int event_fd() const override { return fd_.get(); }

 private:
  Fd fd_;  // closing it unbinds it from the GSI
};
/** An eventfd KVM signals on a matching MMIO write (ioeventfd); it stays bound until the VM goes. */
class KvmIoeventfd : public NotifyEvent {
 public:
  explicit KvmIoeventfd(Fd fd) : fd_(std::move(fd)) {}
  int event_fd() const override { return fd_.get(); }

 private:
  Fd fd_;
};
}  // namespace

std::unique_ptr<NotifyEvent> create_ioeventfd(int vm_fd, uint64_t address, uint32_t value) {
  Fd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (fd.get() < 0) throw VmrunError(ErrorCode::Host, errno_message("eventfd for an MMIO notification", errno));
  kvm_ioeventfd io{};
  io.datamatch = value;
  io.addr = address;
  io.len = 4;
  io.fd = fd.get();
  io.flags = KVM_IOEVENTFD_FLAG_DATAMATCH;
  checked_ioctl(vm_fd, KVM_IOEVENTFD, &io, "IOEVENTFD");
  return std::make_unique<KvmIoeventfd>(std::move(fd));
}

std::unique_ptr<InterruptEvent> create_unbound_irqfd(uint32_t gsi) {
  Fd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (fd.get() < 0) throw VmrunError(ErrorCode::Host, errno_message("eventfd for GSI " + std::to_string(gsi), errno));
  return std::make_unique<KvmIrqfd>(std::move(fd));
}

void bind_irqfd(int vm_fd, int event_fd, uint32_t gsi) {
  kvm_irqfd irqfd{};
  irqfd.fd = static_cast<uint32_t>(event_fd);
  irqfd.gsi = gsi;
  checked_ioctl(vm_fd, KVM_IRQFD, &irqfd, "IRQFD");
}

std::unique_ptr<InterruptEvent> create_irqfd(int vm_fd, uint32_t gsi) {
  auto event = create_unbound_irqfd(gsi);
  bind_irqfd(vm_fd, event->event_fd(), gsi);
  return event;
}

}  // namespace vmrun::kvm
