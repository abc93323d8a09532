#include "loaders/hermit/hermit_boot.h"

#include <chrono>
#include <cstdio>
#include <random>

#include "common/error.h"
#include "common/hex.h"
#include "hypercalls/uhyve_abi.h"
#include "hypercalls/uhyve_hypercalls.h"
#include "loaders/hermit/boot_info.h"
#include "loaders/hermit/hermit_boot_tables.h"
#include "loaders/hermit/hermit_device_tree.h"
#include "loaders/hermit/hermit_image.h"
#include "loaders/hermit/hermit_layout.h"
#include "vmm/builder.h"

extern char** environ;

namespace vmrun {

namespace {

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

/** The end of the RAM a Hermit kernel is told about: one contiguous range from 0 (below the MMIO hole). */
uint64_t hermit_ram_end(const GuestMemory& memory) { return memory.regions().front().size; }

/** Where the kernel goes: its own address (ET_EXEC) or uhyve's base + 0x40000, randomised with ASLR. */
uint64_t choose_load_address(const hermit::HermitImage& image, const MachineConfig& config, uint64_t ram_end) {
  if (!image.position_independent) {
    if (image.first_vaddr < hermit::kKernelOffset)
      throw VmrunError(ErrorCode::KernelFormat, "kernel " + config.kernel_path + " is linked at " + hex(image.first_vaddr) +
                                                    ", inside the boot structures (a Hermit kernel must start at or above " + hex(hermit::kKernelOffset) + ")");
    return image.first_vaddr;
  }
  uint64_t alignment = std::max(image.alignment, uint64_t{0x1000});
  uint64_t footprint = align_up(hermit::kKernelOffset, alignment) + image.mem_size;
  uint64_t base = 0;
  // Under a debugger the kernel stays where the last run had it, so its symbols' offset holds.
  if (config.aslr && !config.gdb) {
    // RAM cannot move here (uhyve moves all of it), so the kernel moves within it: a
    // 2 MiB-aligned base in the first quarter of RAM, leaving the rest for its heap.
    uint64_t slots = footprint < ram_end / 4 ? (ram_end / 4 - footprint) / hermit::kLargePageSize + 1 : 1;
    std::random_device random;
    base = (std::uniform_int_distribution<uint64_t>(0, slots - 1)(random)) * hermit::kLargePageSize;
  }
  return align_up(base + hermit::kKernelOffset, alignment);
}

/** The application's environment: K=V entries, and the host's own for "host" (uhyve's -e host). */
std::vector<std::string> guest_environment(const std::vector<std::string>& specs) {
  std::vector<std::string> env;
  for (const std::string& e : specs) {
    if (e == "host") {
      for (char** p = environ; p && *p; p++) env.emplace_back(*p);
      continue;
    }
    size_t eq = e.find('=');
    if (eq == std::string::npos || eq == 0)
      throw VmrunError(ErrorCode::Usage, "--env " + e + ": expected KEY=VALUE, or host for the host's environment");
    env.push_back(e);
  }
  return env;
}

/** vmrun boot --debug: what the kernel is entered with, on stderr. */
void trace_boot(const hermit::HermitImage& image, const hermit::LoadedKernel& k, const hermit::BootInfoInput& info) {
  std::fprintf(stderr, "vmrun: hermit: entry version %u, interface v%u%s; kernel %s-%s, entry %s, tls %s+%s\n",
               image.notes.entry_version, image.notes.interface_version, image.position_independent ? " (relocated)" : "",
               hex(k.start).c_str(), hex(k.end).c_str(), hex(k.entry).c_str(), hex(k.tls.start).c_str(), hex(k.tls.memsz).c_str());
  std::fprintf(stderr, "vmrun: hermit: boot info at %s: ram 0x0-%s, serial port %s, device tree %s, cpus %d, cpu %u kHz\n",
               hex(hermit::kBootInfoAddress).c_str(), hex(info.ram_end).c_str(), hex(info.serial_port_base).c_str(),
               hex(info.device_tree).c_str(), info.num_cpus, info.cpu_freq_khz);
}

}  // namespace

HermitBootPlan prepare_hermit_boot(const std::vector<uint8_t>& kernel, const MachineConfig& config, const GuestMemory& memory,
                                   VmControl& control, ConsoleOutput& console, std::shared_ptr<ConsoleInput> input) {
  // Inputs first: nothing is written to the guest until every check passed.
  Elf64File elf(kernel, "kernel " + config.kernel_path);
  hermit::HermitImage image = hermit::inspect_hermit_image(elf);
  std::vector<std::string> env = guest_environment(config.guest_env);
  auto files = std::make_unique<uhyve::GuestFiles>(uhyve::parse_file_mappings(config.file_mappings));
  const uint64_t ram_end = hermit_ram_end(memory);
  const uint64_t load_address = choose_load_address(image, config, ram_end);
  if (load_address + image.mem_size > ram_end || load_address + image.mem_size < load_address)
    throw VmrunError(ErrorCode::Usage, "kernel " + config.kernel_path + " (" + std::to_string(image.mem_size >> 10) + " KiB at " +
                                           hex(load_address) + ") does not fit in " + std::to_string(config.memory_size >> 20) +
                                           " MiB of guest memory; give it more --memory");

  hermit::DeviceTreeInput dt;
  dt.ram_end = ram_end;
  dt.tsc_khz = hermit::host_cpu_khz();
  dt.mounts = files->mount_points();
  dt.env = env;
  dt.app_args = config.guest_args;
  std::vector<uint8_t> fdt = hermit::build_device_tree(dt);
  if (fdt.size() > hermit::kFdtMaxSize)
    throw VmrunError(ErrorCode::Usage, "the Hermit guest's arguments and environment are too long: the device tree takes " +
                                           std::to_string(fdt.size()) + " bytes, the limit is " + std::to_string(hermit::kFdtMaxSize));

  hermit::LoadedKernel loaded = hermit::load_hermit_image(elf, image, load_address, memory);
  if (!memory.write(hermit::kFdtAddress, fdt.data(), fdt.size())) throw VmrunError(ErrorCode::Usage, "guest memory is too small for the device tree");

  hermit::BootInfoInput info;
  info.ram_end = ram_end;
  info.serial_port_base = uhyve::serial_port_for_interface(image.notes.interface_version);
  info.device_tree = hermit::kFdtAddress;
  info.num_cpus = config.cpus;
  info.cpu_freq_khz = dt.tsc_khz;
  info.boot_time_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  hermit::write_boot_info(memory, loaded, info, image.notes.entry_version);

  x86::StartState tables;
  hermit::write_gdt(memory, tables);
  // Old kernels (and those that do not say their version) expect their whole 1 GiB region mapped.
  uint64_t last = image.notes.wants_legacy_mapping() ? std::max<uint64_t>((loaded.start | ((1ULL << 30) - 1)) - (hermit::kLargePageSize - 1), loaded.end)
                                                       : loaded.end;
  tables.cr3 = hermit::write_page_tables(memory, last);

  HermitBootPlan plan;
  plan.load_bias = image.position_independent ? load_address - image.first_vaddr : 0;
  for (int cpu = 0; cpu < config.cpus; cpu++) plan.vcpu_states.push_back(hermit::start_state(tables, loaded.entry, loaded.start, cpu));
  uhyve::GuestProgram program;
  program.argv.push_back(config.kernel_path);
  program.argv.insert(program.argv.end(), config.guest_args.begin(), config.guest_args.end());
  program.env = std::move(env);
  program.trace = config.debug;
  if (config.debug) trace_boot(image, loaded, info);
  plan.hypercalls = std::make_unique<uhyve::UhyveHypercalls>(memory, control, console, std::move(input), std::move(files),
                                                             std::move(program));
  return plan;
}

}  // namespace vmrun
