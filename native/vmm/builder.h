// Assembles a Machine from a description, so the order of creation is written once:
// memory slots before the irqchip (30x cheaper, see notes/host-kvm.md), irqchip and
// PIT before vCPUs, devices on the buses, then the loader's start state. What differs
// by architecture (the platform devices, the kernel loaders, the virtio slots) is in
// vmm/<arch>/platform.cc behind vmm/platform.h.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "devices/virtio/net/network_config.h"
#include "devices/virtio/blk/blk_device.h"
#include "devices/virtio/fs/virtiofsd_process.h"
#include "devices/virtio/vsock/vsock_device.h"
#include "loaders/kernel_format.h"
#include "vmm/machine.h"

namespace vmrun {

/** What to boot and with what resources. */
struct MachineConfig {
  std::string kvm_device;  // "" = /dev/kvm
  uint64_t memory_size = 256ULL << 20;
  int cpus = 1;
  std::string kernel_path;
  /** Linux initrds, concatenated in order (each 4-byte aligned, as the kernel needs for cpio). */
  std::vector<std::string> initrd_paths;
  std::string cmdline;
  // Hermit: arguments and environment for the application, file mappings host:guest.
  std::vector<std::string> guest_args;
  std::vector<std::string> guest_env;
  std::vector<std::string> file_mappings;
  bool aslr = true;  // Hermit: place a position-independent kernel at a random 2 MiB-aligned base
  std::optional<NetworkConfig> network;  // a virtio-net device with the user-mode back end; none without
  /** A virtio-vsock device (Linux guests): announced on the command line by the builder. */
  std::optional<virtio::vsock::VsockConfig> vsock;
  bool debug = false;  // Hermit: trace the boot handover (boot info, Cmdsize/Cmdval) on stderr
  /** virtio-blk disks (Linux guests), in order: /dev/vda, /dev/vdb... */
  std::vector<virtio::blk::DiskConfig> disks;
  /** virtio-fs volumes served by virtiofsd (Linux guests); guest RAM is then a shared memfd. */
  std::vector<virtio::fs::VolumeConfig> volumes;
  /** A gdb stub: the guest waits at its first instruction for a debugger there. */
  std::optional<GdbListenConfig> gdb;
};

/** What the builder learned about the kernel, for the host to report. */
struct BootInfo {
  std::string kernel_format;  // "linux-bzimage", "linux-elf", "hermit", "linux-arm64-image"
};

/** A kernel read and recognised, with its initrds concatenated: builder.cc reads them, the architecture loads them. */
struct KernelImage {
  std::vector<uint8_t> kernel;
  KernelFormat format = KernelFormat::Unknown;
  bool has_initrd = false;
  std::vector<uint8_t> initrd;
  std::string initrd_names;  // "a + b", for messages
};

/** What the architecture's loader decided for the vCPUs. */
struct GuestStart {
  /** Sets vCPU `index`'s start state; a vCPU it leaves alone waits for the guest to wake it (x86: INIT/SIPI; arm64: PSCI CPU_ON). */
  std::function<void(int index, Vcpu& vcpu)> start_vcpu;
  /** What the gdb stub tells the debugger about this boot (a relocated Hermit kernel). */
  std::string gdb_note;
};

constexpr uint64_t kMinMemorySize = 16ULL << 20;
constexpr uint64_t kMaxMemorySize = 1ULL << 40;

/** What a restore needs: the saved machine's shape, its RAM image, and its state. */
struct RestoreConfig {
  std::string kvm_device;
  uint64_t memory_size = 0;
  int cpus = 1;
  std::string ram_image_path;  // raw RAM image (see snapshot/memory_image.h), mapped copy-on-write (copied with volumes)
  MachineState state;
  bool catch_up_wall_clock = false;  // default: guest time continues from the save
  /** The saved machine's virtio-net device, if it had one (a MAC of its own; maybe other ports). */
  std::optional<NetworkConfig> network;
  /** The saved machine's vsock device, if it had one (its socket is created anew). */
  std::optional<virtio::vsock::VsockConfig> vsock;
  /** The saved machine's disks, in their saved order (their files are used in place). */
  std::vector<virtio::blk::DiskConfig> disks;
  /**
   * The saved machine's volumes, in their saved order: a new virtiofsd serves each. Guest
   * RAM is then a shared memfd filled from the RAM image (virtiofsd cannot see a
   * private copy-on-write mapping's writes), not the image mapped in place.
   */
  std::vector<virtio::fs::VolumeConfig> volumes;
  /** "hermit" for a Hermit guest (its hypercalls come back, with its open files); else a Linux-protocol guest. */
  std::string kernel_format;
  /** A Hermit guest's file mappings (HOST:GUEST) as it was booted with. */
  std::vector<std::string> file_mappings;
};

class MachineBuilder {
 public:
  /** Boots a kernel (Linux or Hermit, detected from the file). */
  static std::unique_ptr<Machine> boot(const MachineConfig& config, MachineCallbacks callbacks, BootInfo* info);
  /** Recreates a saved machine (Linux-protocol or Hermit); its vCPUs start where they were saved. */
  static std::unique_ptr<Machine> restore(const RestoreConfig& config, MachineCallbacks callbacks);

 private:
  /** Hypervisor, VM, RAM slots, irqchip, console and the platform devices, in that order. */
  static std::unique_ptr<Machine> create_platform(const std::string& kvm_device, uint64_t memory_size, int cpus,
                                                  GuestMemory memory, MachineCallbacks callbacks);
  /**
   * The architecture's devices beside its interrupt controller: the console UART (on
   * m.uart_), the exit device, a PC's legacy ports (vmm/<arch>/platform.cc).
   */
  static void add_platform_devices(Machine& m, uint64_t memory_size);
  /**
   * Loads the kernel and initrd as the architecture boots them, announcing the first
   * `virtio_devices` slots to a Linux guest, and says how each vCPU starts
   * (vmm/<arch>/platform.cc).
   */
  static GuestStart load_guest(Machine& m, const MachineConfig& config, const KernelImage& image, size_t virtio_devices);
  /**
   * Attaches the virtio devices in their fixed order (a restore must find each in its
   * saved slot, platform::virtio_slot) and returns how many slots they took.
   */
  static size_t attach_virtio_devices(Machine& m, const std::optional<virtio::vsock::VsockConfig>& vsock,
                                           const std::optional<NetworkConfig>& network,
                                           const std::vector<virtio::blk::DiskConfig>& disks,
                                           const std::vector<virtio::fs::VolumeConfig>& volumes);
};

}  // namespace vmrun
