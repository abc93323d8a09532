#include "vmm/builder.h"

#include <fcntl.h>

#include <chrono>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/file.h"
#include "devices/virtio/blk/blk_device.h"
#include "devices/virtio/fs/fs_device.h"
#include "devices/virtio/virtio_spec.h"
#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/net/virtio_net.h"
#include "hypercalls/uhyve_hypercalls.h"
#include "vmm/platform.h"

namespace vmrun {

namespace {

/** Records how long each set-up step takes, for benchmarks ("where the time goes"). */
class StepTimer {
 public:
  explicit StepTimer(std::vector<std::pair<std::string, double>>& out) : out_(out), last_(std::chrono::steady_clock::now()) {}
  void step(const char* name) {
    auto now = std::chrono::steady_clock::now();
    out_.emplace_back(name, std::chrono::duration<double, std::milli>(now - last_).count());
    last_ = now;
  }

 private:
  std::vector<std::pair<std::string, double>>& out_;
  std::chrono::steady_clock::time_point last_;
};

constexpr uint64_t kMaxKernelSize = 512ULL << 20;

void validate_shape(uint64_t memory_size, int cpus) {
  if (memory_size < kMinMemorySize || memory_size > kMaxMemorySize)
    throw VmrunError(ErrorCode::Usage, "--memory " + std::to_string(memory_size >> 20) + "M is out of range (16M to 1T)");
  if (memory_size % (2ULL << 20) != 0) throw VmrunError(ErrorCode::Usage, "--memory must be a multiple of 2M");
  if (cpus < 1 || cpus > platform::max_cpus())
    throw VmrunError(ErrorCode::Usage, "--cpus " + std::to_string(cpus) + " is out of range (1-" + std::to_string(platform::max_cpus()) + ")");
}

}  // namespace

std::unique_ptr<Machine> MachineBuilder::create_platform(const std::string& kvm_device, uint64_t memory_size, int cpus,
                                                         GuestMemory memory, MachineCallbacks callbacks) {
  std::unique_ptr<Machine> m(new Machine());
  StepTimer t(m->setup_ms_);
  m->callbacks_ = std::move(callbacks);
  m->hypervisor_ = open_hypervisor(kvm_device);
  t.step("open-kvm");
  int max_vcpus = m->hypervisor_->max_vcpus();
  if (max_vcpus > 0 && cpus > max_vcpus)
    throw VmrunError(ErrorCode::Usage, "--cpus " + std::to_string(cpus) + " exceeds this host's KVM limit of " + std::to_string(max_vcpus));
  m->vm_ = m->hypervisor_->create_vm();
  t.step("create-vm");
  m->memory_ = std::move(memory);
  platform::place_ram(m->memory_);
  // RAM slots before the irqchip: registering them afterwards costs 30x more here.
  m->vm_->map_memory(m->memory_);
  t.step("memory-slots");
  m->vm_->create_interrupt_controller();
  t.step("irqchip-pit");

  ConsoleOutput::Sink sink = m->callbacks_.console;
  m->console_ = std::make_unique<ConsoleOutput>(sink ? sink : [](std::vector<uint8_t>&&) {});
  add_platform_devices(*m, memory_size);
  t.step("devices");
  return m;
}

size_t MachineBuilder::attach_virtio_devices(Machine& m, const std::optional<virtio::vsock::VsockConfig>& vsock,
                                             const std::optional<NetworkConfig>& network,
                                             const std::vector<virtio::blk::DiskConfig>& disks,
                                             const std::vector<virtio::fs::VolumeConfig>& volumes) {
  // The order (vsock, net, disks, volumes) is each device's MMIO slot: boot and restore share it.
  const size_t wanted = (vsock ? 1 : 0) + (network ? 1 : 0) + disks.size() + volumes.size();
  if (wanted > platform::virtio_slot_count())
    throw VmrunError(ErrorCode::Usage, std::to_string(disks.size()) + " disks and " + std::to_string(volumes.size()) + " volumes are too many: a VM has " +
                                           std::to_string(platform::virtio_slot_count()) + " virtio devices, vsock and the network included");
  std::vector<std::unique_ptr<virtio::VirtioDevice>> devices;
  if (vsock) devices.push_back(std::make_unique<virtio::vsock::VsockDevice>(*vsock));
  // Binds the published ports now: a port in use fails the boot before the guest runs.
  if (network) {
    devices.push_back(std::make_unique<virtio::net::VirtioNet>(*network));
    m.published_ports_ = network->forwards;
  }
  // Disks in order: Linux names them vda, vdb... as it probes them (slot order).
  for (size_t i = 0; i < disks.size(); i++)
    devices.push_back(std::make_unique<virtio::blk::BlkDevice>(disks[i], virtio::blk::open_disk(disks[i]), static_cast<int>(i)));
  for (auto& device : devices) {
    const platform::VirtioSlot slot = platform::virtio_slot(m.virtio_.size());
    // Before the transport exists: constructing it attaches the device, which starts its thread.
    if (device->takes_notify_events()) {
      std::vector<std::unique_ptr<NotifyEvent>> events;
      for (uint16_t q = 0; q < device->queue_count(); q++) events.push_back(m.vm_->create_notify_event(slot.base + virtio::mmio::kQueueNotify, q));
      device->use_notify_events(std::move(events));
    }
    auto transport = std::make_shared<virtio::VirtioMmioTransport>(std::move(device), m.memory_, m.vm_->create_interrupt_event(slot.gsi));
    m.mmio_bus_.add(slot.base, slot.size, transport);
    m.virtio_.push_back(transport);
  }
  // A volume's queues are served by virtiofsd: its kicks are ioeventfds on this slot's
  // QueueNotify (one per queue index) and its calls the slot's irqfd.
  for (size_t i = 0; i < volumes.size(); i++) {
    const platform::VirtioSlot slot = platform::virtio_slot(m.virtio_.size());
    auto interrupt = m.vm_->create_interrupt_event(slot.gsi);
    virtio::fs::FsWiring wiring{&m.memory_, {}, interrupt->event_fd()};
    for (uint32_t q = 0; q < virtio::fs::kQueueCount; q++)
      wiring.notify.push_back(m.vm_->create_notify_event(slot.base + virtio::mmio::kQueueNotify, q));
    auto device = std::make_unique<virtio::fs::FsDevice>(volumes[i], static_cast<int>(i), std::move(wiring));
    auto transport = std::make_shared<virtio::VirtioMmioTransport>(std::move(device), m.memory_, std::move(interrupt));
    m.mmio_bus_.add(slot.base, slot.size, transport);
    m.virtio_.push_back(transport);
  }
  return m.virtio_.size();
}

std::unique_ptr<Machine> MachineBuilder::boot(const MachineConfig& config, MachineCallbacks callbacks, BootInfo* info) {
  validate_shape(config.memory_size, config.cpus);
  // Everything that can be wrong with the inputs is checked before a VM exists.
  std::vector<uint8_t> kernel = read_file(config.kernel_path, "kernel", kMaxKernelSize);
  std::string why;
  KernelFormat format = detect_kernel_format(kernel, &why);
  if (format == KernelFormat::Unknown) throw VmrunError(ErrorCode::KernelFormat, "kernel " + config.kernel_path + ": " + why);
  platform::check_kernel_format(format, config.kernel_path);
  if (config.gdb && !platform::has_gdb_stub())
    throw VmrunError(ErrorCode::Usage, std::string("--gdb is not available on this ") + platform::machine_type() + " machine: the gdb stub knows x86-64 registers only");
  if (info) info->kernel_format = kernel_format_name(format);
  KernelImage image;
  image.kernel = std::move(kernel);
  image.format = format;
  image.has_initrd = !config.initrd_paths.empty();
  if (image.has_initrd && format == KernelFormat::HermitElf)
    throw VmrunError(ErrorCode::Usage, "--initrd is for Linux kernels; " + config.kernel_path + " is a Hermit kernel");
  if (config.vsock && format == KernelFormat::HermitElf)
    throw VmrunError(ErrorCode::Usage, "vsock is for Linux guests; " + config.kernel_path + " is a Hermit kernel");
  if (config.vsock) virtio::vsock::validate_vsock_config(*config.vsock);
  if (config.network && format == KernelFormat::HermitElf)
    throw VmrunError(ErrorCode::Usage, "networking is for Linux guests; " + config.kernel_path + " is a Hermit kernel");
  if (!config.disks.empty() && format == KernelFormat::HermitElf)
    throw VmrunError(ErrorCode::Usage, "disks are for Linux guests; " + config.kernel_path + " is a Hermit kernel");
  if (!config.file_mappings.empty() && format != KernelFormat::HermitElf)
    throw VmrunError(ErrorCode::Usage, "--file-mapping is for Hermit kernels; " + config.kernel_path + " is a Linux kernel (give Linux guests volumes)");
  if (!config.volumes.empty() && format == KernelFormat::HermitElf)
    throw VmrunError(ErrorCode::Usage, "volumes are for Linux guests; " + config.kernel_path + " is a Hermit kernel");
  std::vector<uint8_t>& initrd = image.initrd;
  for (const auto& path : config.initrd_paths) {
    std::vector<uint8_t> part = read_file(path, "initrd", config.memory_size);
    initrd.resize((initrd.size() + 3) & ~size_t{3}, 0);
    if (part.size() > config.memory_size - initrd.size()) throw VmrunError(ErrorCode::Usage, "the initrds together are larger than --memory");
    initrd.insert(initrd.end(), part.begin(), part.end());
  }
  for (const auto& path : config.initrd_paths) image.initrd_names += (image.initrd_names.empty() ? "" : " + ") + path;

  // virtiofsd maps guest RAM itself: with volumes it is a shared memfd.
  GuestMemory memory = config.volumes.empty() ? GuestMemory::anonymous(config.memory_size) : GuestMemory::shared(config.memory_size);
  auto m = create_platform(config.kvm_device, config.memory_size, config.cpus, std::move(memory), std::move(callbacks));

  // Hermit guests have no virtio devices (checked above); Linux guests learn of theirs from the loader.
  const size_t virtio_devices = attach_virtio_devices(*m, config.vsock, config.network, config.disks, config.volumes);
  const GuestStart start = load_guest(*m, config, image, virtio_devices);
  for (int i = 0; i < config.cpus; i++) {
    auto vcpu = m->vm_->create_vcpu(i, config.cpus, VcpuSetup::ForBoot);
    start.start_vcpu(i, *vcpu);
    m->vcpus_.push_back(std::make_unique<VcpuThread>(std::move(vcpu), *m));
  }
  // Last: it listens now (a port in use fails the boot) and needs the vCPUs.
  if (config.gdb) m->gdb_ = std::make_unique<GdbStub>(*m, *config.gdb, m->hypervisor_->probe_debug_traps(), start.gdb_note);
  return m;
}

std::unique_ptr<Machine> MachineBuilder::restore(const RestoreConfig& config, MachineCallbacks callbacks) {
  validate_shape(config.memory_size, config.cpus);
  if (config.state.vcpus.size() != static_cast<size_t>(config.cpus))
    throw VmrunError(ErrorCode::Snapshot, "the snapshot's vCPU state count does not match its configuration");
  const bool hermit = config.kernel_format == "hermit";
  if (hermit && (config.vsock || config.network || !config.disks.empty() || !config.volumes.empty()))
    throw VmrunError(ErrorCode::Snapshot, "the snapshot describes a Hermit guest with virtio devices, which Hermit guests do not have");
  if (!hermit && !config.file_mappings.empty())
    throw VmrunError(ErrorCode::Snapshot, "the snapshot gives file mappings to a Linux guest, which has none");
  int fd = open(config.ram_image_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw VmrunError(ErrorCode::NotFound, errno_message("cannot open the RAM image " + config.ram_image_path, errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != config.memory_size) {
    close(fd);
    throw VmrunError(ErrorCode::Snapshot, "the RAM image " + config.ram_image_path + " does not match the snapshot's memory size");
  }
  GuestMemory memory;
  try {
    memory = config.volumes.empty() ? GuestMemory::from_file(fd, 0, config.memory_size) : GuestMemory::shared_copy_of(fd, config.memory_size);
  } catch (...) {
    close(fd);
    throw;
  }
  close(fd);  // the mapping keeps the file

  auto m = create_platform(config.kvm_device, config.memory_size, config.cpus, std::move(memory), std::move(callbacks));
  StepTimer t(m->setup_ms_);
  if (hermit) {
    // The hypercall handler comes back empty; restore_state reopens the guest's files.
    auto files = std::make_unique<uhyve::GuestFiles>(uhyve::parse_file_mappings(config.file_mappings, "the snapshot's file mapping"));
    m->port_io_handler_ = std::make_unique<uhyve::UhyveHypercalls>(m->memory_, *m, *m->console_, m->console_input_, std::move(files),
                                                                   uhyve::GuestProgram{});
  } else {
    attach_virtio_devices(*m, config.vsock, config.network, config.disks, config.volumes);
  }
  t.step("virtio-devices");
  for (int i = 0; i < config.cpus; i++) {
    auto vcpu = m->vm_->create_vcpu(i, config.cpus, VcpuSetup::ForRestore);
    m->vcpus_.push_back(std::make_unique<VcpuThread>(std::move(vcpu), *m));
  }
  t.step("create-vcpus");
  m->restore_state(config.state, config.catch_up_wall_clock);
  t.step("restore-state");
  return m;
}

}  // namespace vmrun
