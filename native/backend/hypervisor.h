// The one interface every hypervisor backend implements (KVM x86_64, KVM arm64; Apple's
// Hypervisor.framework later): a host handle, VMs, vCPUs and their state, with no
// architecture in its signatures. What only one architecture has (x86's registers and
// page tables, arm64's boot registers) is the arch-specific vCPU interface under
// arch/<arch>/vcpu.h, reached through Vcpu::x86() / Vcpu::arm64() (docs/backends.md).
// Code above this line (vmm/, devices/, loaders/) never includes a backend's headers.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/vcpu_exit.h"
#include "common/error.h"
#include "memory/guest_memory.h"

namespace vmrun {

/** What the host offers, for `vmrun doctor` and for refusing a VM early. */
struct HostReport {
  std::string backend;          // "kvm"
  std::string device_path;      // "/dev/kvm"
  int api_version = 0;
  std::string cpu_vendor;       // "GenuineIntel", "AuthenticAMD"
  std::string cpu_model;        // the brand string
  bool hardware_virtualization = false;  // vmx/svm: guests run natively
  std::string virtualization_kind;       // "vmx", "svm", "pvm (emulated)", ...
  int max_vcpus = 0;
  int recommended_vcpus = 0;
  std::vector<std::pair<std::string, bool>> capabilities;  // name -> present
  // How a snapshot restore sets the guest's clock on this host, when the backend has
  // more than one way (arm64: the counter-offset API or the counter register); else empty.
  std::string guest_clock_restore;
};

/** Opaque, versioned per-component state blob for snapshots (see snapshot/). */
using StateBlob = std::vector<uint8_t>;

enum class VcpuSetup { ForBoot, ForRestore };

/**
 * An edge-triggered interrupt that any thread raises with one call and no VMM lock
 * (KVM: an eventfd bound to a GSI with KVM_IRQFD). Device threads use it.
 */
class InterruptEvent {
 public:
  virtual ~InterruptEvent() = default;
  virtual void trigger() = 0;
  /**
   * The eventfd behind it, which another process may signal to raise the interrupt
   * (a vhost-user back end's call fd); -1 when there is none. Owned by this object.
   */
  virtual int event_fd() const { return -1; }
};

/**
 * An eventfd the hypervisor signals, with no exit to the VMM, when the guest writes
 * one 32-bit value to one MMIO register (KVM: KVM_IOEVENTFD with a datamatch). A
 * virtio queue's notification for a back end in another process (vhost-user kick).
 */
class NotifyEvent {
 public:
  virtual ~NotifyEvent() = default;
  virtual int event_fd() const = 0;
};

/** What a debugger asks of a vCPU's debug facilities (KVM_SET_GUEST_DEBUG). */
struct GuestDebug {
  bool enabled = false;
  bool single_step = false;
  /** With single_step: no interrupt is taken during the step (where the host can), so a step lands on the next instruction, not in a handler. */
  bool block_interrupts = false;
  bool software_breakpoints = false;  // the guest's int3 exits to the VMM instead of the guest
  /** Execution breakpoints in the debug registers (DR0-DR3), by guest-virtual address. */
  uint64_t hardware_breakpoints[4] = {};
  int hardware_breakpoint_count = 0;
};

/** Which debug traps reach the VMM on this host, as a probe guest found out. */
struct DebugTrapSupport {
  bool int3 = false;                  // int3 with software breakpoints on
  bool hardware_breakpoints = false;  // an execution breakpoint in DR0
  bool single_step = false;           // the trap flag
};

class X86Vcpu;
class Arm64Vcpu;

/** A saved vCPU state decoded once and checked against this host, ready to apply (the backend's own type). */
class LoadedVcpuState {
 public:
  virtual ~LoadedVcpuState() = default;
};

/** One virtual CPU. run() is called only from the vCPU's own thread. */
class Vcpu {
 public:
  virtual ~Vcpu() = default;
  virtual int index() const = 0;
  /** Runs guest code until the next exit the VMM must handle. */
  virtual VcpuExit run() = 0;
  /** Thread-safe: makes a current or the next run() return Interrupted promptly. */
  virtual void kick() = 0;
  /** Called by the vCPU thread after it handled an Interrupted exit. */
  virtual void clear_kick() = 0;
  /**
   * Enters the hypervisor without running guest code, so that the port I/O or MMIO
   * exit just handled is completed (RIP, RAX, RSI/RCX of a `rep` string): until then
   * the vCPU's registers describe the instruction as not yet done, and a snapshot of
   * them would run it again. Returns Interrupted, or a further exit the completion
   * produced (the next piece of a split access), which the caller must handle.
   */
  virtual VcpuExit complete_pending_io() = 0;
  /** Must be called once on the vCPU thread before the first run(). */
  virtual void bind_to_current_thread() = 0;

  /** Where the vCPU executes (RIP, PC), for reports; the vCPU must not be running. */
  virtual uint64_t instruction_pointer() = 0;
  /** The x86-64 interface of this vCPU (arch/x86_64/vcpu.h); nullptr on another architecture. */
  virtual X86Vcpu* x86() { return nullptr; }
  /** The arm64 interface of this vCPU (arch/aarch64/vcpu.h); nullptr on another architecture. */
  virtual Arm64Vcpu* arm64() { return nullptr; }

  /** Sets the vCPU's debug traps (gdb stub); the vCPU must not be running. */
  virtual void set_guest_debug(const GuestDebug&) { throw_no_debug(); }

  /** Full architectural state for a snapshot; the vCPU must not be running. */
  virtual StateBlob save_state() = 0;
  /**
   * Decodes a saved state once and refuses (VmrunError Snapshot) one this vCPU cannot
   * run: CPU features the guest saw at save time that this vCPU, fresh on this host,
   * does not offer, or a TSC frequency it cannot match. Applies nothing.
   */
  virtual std::unique_ptr<LoadedVcpuState> load_state(const StateBlob& blob) = 0;
  /** Applies a state this vCPU's load_state() returned; the vCPU must not be running. */
  virtual void restore_state(const LoadedVcpuState& state) = 0;

 protected:
  [[noreturn]] static void throw_no_debug() { throw VmrunError(ErrorCode::Host, "this backend has no debugger support"); }
};

/** One virtual machine: memory, interrupt controller, clock, vCPUs. */
class Vm {
 public:
  virtual ~Vm() = default;
  /** Registers guest RAM. Done before the interrupt controller: it is 30x cheaper then. */
  virtual void map_memory(const GuestMemory& memory) = 0;
  /** Creates the in-kernel interrupt controllers and timer (PIC, IOAPIC, PIT / GIC). */
  virtual void create_interrupt_controller() = 0;
  /**
   * Creates vCPU `index` of `count` with its CPUID; ForBoot also sets the boot-time
   * MSRs, FPU and LAPIC lines, which a restore overwrites anyway.
   */
  virtual std::unique_ptr<Vcpu> create_vcpu(int index, int count, VcpuSetup setup) = 0;
  /** Raises or lowers an interrupt line (level-triggered ISA IRQ / GSI). */
  virtual void set_irq_line(uint32_t gsi, bool level) = 0;
  /** An edge-triggered interrupt on `gsi` for a device thread; needs the interrupt controller. */
  virtual std::unique_ptr<InterruptEvent> create_interrupt_event(uint32_t gsi) = 0;
  /** An event for guest writes of `value` to the 4-byte MMIO register at `address`; lives as long as the VM. */
  virtual std::unique_ptr<NotifyEvent> create_notify_event(uint64_t address, uint32_t value) = 0;

  /** VM-wide state: interrupt controllers, PIT, clock. vCPUs must not be running. */
  virtual StateBlob save_state() = 0;
  /**
   * Whether the VM's state is saved before its vCPUs' and restored before their
   * registers (arm64: the guest counter is read first at a save, and the GIC and the
   * counter must be in place before the timer registers are written), or after them
   * (x86: the IOAPIC and PIT after the LAPICs).
   */
  virtual bool state_precedes_vcpus() const { return false; }
  /**
   * By default the guest clock continues from the moment of the save; with
   * `catch_up_wall_clock` it jumps forward by the wall time the snapshot spent on disk.
   */
  virtual void restore_state(const StateBlob& blob, bool catch_up_wall_clock) = 0;
};

/** A handle on the host's hypervisor. */
class Hypervisor {
 public:
  virtual ~Hypervisor() = default;
  virtual HostReport report() = 0;
  /** The most vCPUs one VM may have (0 if unknown). */
  virtual int max_vcpus() = 0;
  virtual std::unique_ptr<Vm> create_vm() = 0;
  /** Runs a tiny probe guest to learn which debug traps reach the VMM (none by default). */
  virtual DebugTrapSupport probe_debug_traps() { return {}; }
};

/**
 * Opens the host's hypervisor. `device_path` is the KVM device on Linux ("" for the
 * default /dev/kvm); throws VmrunError(Host) naming what is missing.
 */
std::unique_ptr<Hypervisor> open_hypervisor(const std::string& device_path);

}  // namespace vmrun
