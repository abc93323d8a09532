#include "arch/aarch64/device_tree.h"

#include <cstdio>

#include "arch/aarch64/layout.h"
#include "common/error.h"
#include "common/fdt_writer.h"

namespace vmrun::aarch64 {

namespace {

// Device tree interrupt specifiers for the GIC: <type number flags>.
constexpr uint32_t kSpi = 0;
constexpr uint32_t kPpi = 1;
constexpr uint32_t kLevelHigh = 4;  // IRQ_TYPE_LEVEL_HIGH (GICv3 ignores the CPU mask)
constexpr uint32_t kEdgeRising = 1;
constexpr uint32_t kGicPhandle = 1;

/** "name@unit-address" with the address in lower-case hex, no 0x, as DT names are. */
std::string node_name(const char* name, uint64_t address) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s@%llx", name, static_cast<unsigned long long>(address));
  return buf;
}

}  // namespace

std::vector<uint8_t> build_device_tree(const DeviceTreeConfig& c) {
  if (c.cpus < 1 || c.cpus > kMaxCpus)
    throw VmrunError(ErrorCode::Usage, "--cpus " + std::to_string(c.cpus) + " is out of range (1-" + std::to_string(kMaxCpus) + ")");
  if (c.virtio_slots > kVirtioMmioSlots) throw VmrunError(ErrorCode::Internal, "more virtio devices than MMIO slots");
  fdt::FdtWriter w;
  w.begin_node("");
  w.property_u32("#address-cells", 2);
  w.property_u32("#size-cells", 2);
  w.property_string("compatible", "linux,dummy-virt");
  w.property_u32("interrupt-parent", kGicPhandle);

  w.begin_node("chosen");
  w.property_string("bootargs", c.bootargs);
  w.property_string("stdout-path", "/" + node_name("uart", kUartBase));
  if (c.initrd_size > 0) {
    w.property_u64s("linux,initrd-start", {c.initrd_start});
    w.property_u64s("linux,initrd-end", {c.initrd_start + c.initrd_size});
  }
  w.end_node();

  w.begin_node(node_name("memory", c.ram_base));
  w.property_string("device_type", "memory");
  w.property_u64s("reg", {c.ram_base, c.ram_size});
  w.end_node();

  // KVM gives vCPU n the MPIDR affinity Aff0 = n % 16, Aff1 = n / 16: the cpu's reg.
  w.begin_node("cpus");
  w.property_u32("#address-cells", 1);
  w.property_u32("#size-cells", 0);
  for (int i = 0; i < c.cpus; i++) {
    const uint32_t mpidr = (static_cast<uint32_t>(i / 16) << 8) | static_cast<uint32_t>(i % 16);
    w.begin_node(node_name("cpu", mpidr));
    w.property_string("device_type", "cpu");
    w.property_string("compatible", "arm,arm-v8");
    w.property_string("enable-method", "psci");  // secondaries start with PSCI CPU_ON
    w.property_u32("reg", mpidr);
    w.end_node();
  }
  w.end_node();

  // KVM's in-kernel PSCI (KVM_ARM_VCPU_PSCI_0_2), called with HVC.
  w.begin_node("psci");
  w.property_strings("compatible", {"arm,psci-0.2", "arm,psci"});
  w.property_string("method", "hvc");
  w.end_node();

  w.begin_node(node_name("intc", kGicDistributorBase));
  w.property_string("compatible", "arm,gic-v3");
  w.property_empty("interrupt-controller");
  w.property_u32("#interrupt-cells", 3);
  w.property_u32("#redistributor-regions", 1);
  w.property_u64s("reg", {kGicDistributorBase, kGicDistributorSize, kGicRedistributorBase,
                          kGicRedistributorSizePerCpu * static_cast<uint64_t>(c.cpus)});
  w.property_u32("phandle", kGicPhandle);
  w.end_node();

  w.begin_node("timer");
  w.property_string("compatible", "arm,armv8-timer");
  w.property_u32s("interrupts", {kPpi, kTimerSecurePhysPpi, kLevelHigh, kPpi, kTimerPhysPpi, kLevelHigh,
                                 kPpi, kTimerVirtPpi, kLevelHigh, kPpi, kTimerHypPpi, kLevelHigh});
  w.property_empty("always-on");
  w.end_node();

  // A 16550A: Linux's 8250 driver fills its 16-byte FIFO without polling LSR per
  // byte (one exit per byte; a PL011 costs two: the driver reads FR before each).
  w.begin_node(node_name("uart", kUartBase));
  w.property_string("compatible", "ns16550a");
  w.property_u64s("reg", {kUartBase, kUartSize});
  w.property_u32s("interrupts", {kSpi, kUartSpi, kLevelHigh});
  w.property_u32("clock-frequency", kUartClockHz);
  w.end_node();

  // vmrun's exit device: no Linux driver binds to it; vmrun-init finds it by this
  // compatible string and writes the workload's status to it through /dev/mem.
  w.begin_node(node_name("exit", kExitDeviceBase));
  w.property_string("compatible", kExitDeviceCompatible);
  w.property_u64s("reg", {kExitDeviceBase, kExitDeviceSize});
  w.end_node();

  for (uint32_t slot = 0; slot < c.virtio_slots; slot++) {
    const uint64_t base = kVirtioMmioBase + slot * kVirtioMmioSlotSize;
    w.begin_node(node_name("virtio_mmio", base));
    w.property_string("compatible", "virtio,mmio");
    w.property_u64s("reg", {base, kVirtioMmioSlotSize});
    w.property_u32s("interrupts", {kSpi, kVirtioMmioFirstSpi + slot, kEdgeRising});
    w.property_empty("dma-coherent");
    w.end_node();
  }
  w.end_node();
  return w.finish();
}

}  // namespace vmrun::aarch64
