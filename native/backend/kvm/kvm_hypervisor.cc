#include "backend/kvm/kvm_hypervisor.h"

#include <cpuid.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cstring>
#include <mutex>
#include <fstream>
#include <sstream>

#include "backend/kvm/kvm_vm.h"
#include "backend/kvm/kvm_vm_common.h"
#include "backend/kvm/x86_64/vcpu_state.h"

namespace vmrun {

std::unique_ptr<Hypervisor> open_hypervisor(const std::string& device_path) {
  return std::make_unique<kvm::KvmHypervisor>(device_path.empty() ? "/dev/kvm" : device_path);
}

namespace kvm {

const RequiredCapability kRequiredCapabilities[] = {
    {KVM_CAP_USER_MEMORY, "USER_MEMORY"},   {KVM_CAP_IRQCHIP, "IRQCHIP"},
    {KVM_CAP_PIT2, "PIT2"},                 {KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR"},
    {KVM_CAP_EXT_CPUID, "EXT_CPUID"},       {KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT"},
    {KVM_CAP_MP_STATE, "MP_STATE"},         {KVM_CAP_VCPU_EVENTS, "VCPU_EVENTS"},
    {KVM_CAP_ADJUST_CLOCK, "ADJUST_CLOCK"}, {KVM_CAP_SET_IDENTITY_MAP_ADDR, "SET_IDENTITY_MAP_ADDR"},
};
const size_t kRequiredCapabilityCount = sizeof(kRequiredCapabilities) / sizeof(kRequiredCapabilities[0]);

// Reported but optional: vmrun uses them when present.
static const RequiredCapability kOptionalCapabilities[] = {
    {KVM_CAP_XSAVE, "XSAVE"},           {KVM_CAP_XCRS, "XCRS"},
    {KVM_CAP_DEBUGREGS, "DEBUGREGS"},   {KVM_CAP_TSC_CONTROL, "TSC_CONTROL"},
    {KVM_CAP_KVMCLOCK_CTRL, "KVMCLOCK_CTRL"}, {KVM_CAP_IOEVENTFD, "IOEVENTFD"},
    {KVM_CAP_IRQFD, "IRQFD"},           {KVM_CAP_XSAVE2, "XSAVE2"},
};

KvmHypervisor::KvmHypervisor(const std::string& device_path) : path_(device_path), fd_(open_kvm_device(device_path)) {
  const int fd = fd_.get();
  for (size_t i = 0; i < kRequiredCapabilityCount; i++) {
    if (check_extension(kRequiredCapabilities[i].id) <= 0)
      throw VmrunError(ErrorCode::Host, std::string("KVM at ") + device_path + " lacks the capability KVM_CAP_" + kRequiredCapabilities[i].name + " that vmrun needs");
  }
  int size = checked_ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0, "GET_VCPU_MMAP_SIZE");
  vcpu_mmap_size_ = static_cast<size_t>(size);
}

int KvmHypervisor::check_extension(long cap) const { return check_kvm_extension(fd_.get(), cap); }

const std::vector<kvm_cpuid_entry2>& KvmHypervisor::supported_cpuid() {
  // The host's answer does not change while the process lives: ask once per process
  // (a restore creates a new handle each time and is latency-critical).
  static std::mutex mu;
  static std::vector<kvm_cpuid_entry2> cpuid_;
  std::lock_guard<std::mutex> lock(mu);
  if (!cpuid_.empty()) return cpuid_;
  for (uint32_t n = 256; n <= 4096; n *= 2) {
    std::vector<uint8_t> buf(sizeof(kvm_cpuid2) + n * sizeof(kvm_cpuid_entry2));
    auto* c = reinterpret_cast<kvm_cpuid2*>(buf.data());
    c->nent = n;
    if (::ioctl(fd_.get(), KVM_GET_SUPPORTED_CPUID, c) == 0) {
      cpuid_.assign(c->entries, c->entries + c->nent);
      return cpuid_;
    }
    if (errno != E2BIG) throw VmrunError(ErrorCode::Host, errno_message("KVM_GET_SUPPORTED_CPUID failed", errno));
  }
  throw VmrunError(ErrorCode::Host, "KVM_GET_SUPPORTED_CPUID: too many entries");
}

const std::vector<uint32_t>& KvmHypervisor::msr_index_list() {
  if (!msrs_.empty()) return msrs_;
  kvm_msr_list probe{};
  probe.nmsrs = 0;
  ::ioctl(fd_.get(), KVM_GET_MSR_INDEX_LIST, &probe);  // E2BIG, fills nmsrs
  if (probe.nmsrs == 0 || probe.nmsrs > 16384) throw VmrunError(ErrorCode::Host, "KVM_GET_MSR_INDEX_LIST returned no MSRs");
  std::vector<uint8_t> buf(sizeof(kvm_msr_list) + probe.nmsrs * sizeof(uint32_t));
  auto* list = reinterpret_cast<kvm_msr_list*>(buf.data());
  list->nmsrs = probe.nmsrs;
  checked_ioctl(fd_.get(), KVM_GET_MSR_INDEX_LIST, list, "GET_MSR_INDEX_LIST");
  msrs_.assign(list->indices, list->indices + list->nmsrs);
  return msrs_;
}

static std::string read_cpu_flags_line() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) return line + " ";
  }
  return "";
}

static std::string cpu_brand() {
  unsigned int regs[12] = {};
  if (__get_cpuid_max(0x80000000, nullptr) < 0x80000004) return "unknown";
  for (unsigned int i = 0; i < 3; i++) __get_cpuid(0x80000002 + i, &regs[i * 4], &regs[i * 4 + 1], &regs[i * 4 + 2], &regs[i * 4 + 3]);
  std::string s(reinterpret_cast<char*>(regs), 48);
  s = s.c_str();
  size_t b = s.find_first_not_of(' ');
  return b == std::string::npos ? s : s.substr(b);
}

static std::string cpu_vendor() {
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  __get_cpuid(0, &eax, &ebx, &ecx, &edx);
  char v[13] = {};
  std::memcpy(v, &ebx, 4);
  std::memcpy(v + 4, &edx, 4);
  std::memcpy(v + 8, &ecx, 4);
  return v;
}

HostReport KvmHypervisor::report() {
  HostReport r;
  r.backend = "kvm";
  r.device_path = path_;
  r.api_version = ::ioctl(fd_.get(), KVM_GET_API_VERSION, 0);
  r.cpu_vendor = cpu_vendor();
  r.cpu_model = cpu_brand();
  std::string flags = read_cpu_flags_line();
  struct stat st {};
  bool pvm = ::stat("/sys/module/kvm_pvm", &st) == 0;
  if (flags.find(" vmx ") != std::string::npos) r.virtualization_kind = "vmx";
  else if (flags.find(" svm ") != std::string::npos) r.virtualization_kind = "svm";
  // PVM (and any KVM without vmx/svm) runs guests through the instruction emulator.
  if (pvm) r.virtualization_kind = "pvm";
  r.hardware_virtualization = !pvm && !r.virtualization_kind.empty();
  if (r.virtualization_kind.empty()) r.virtualization_kind = "none";
  r.max_vcpus = check_extension(KVM_CAP_MAX_VCPUS);
  r.recommended_vcpus = check_extension(KVM_CAP_NR_VCPUS);
  for (size_t i = 0; i < kRequiredCapabilityCount; i++)
    r.capabilities.emplace_back(kRequiredCapabilities[i].name, check_extension(kRequiredCapabilities[i].id) > 0);
  for (const auto& c : kOptionalCapabilities) r.capabilities.emplace_back(c.name, check_extension(c.id) > 0);
  return r;
}

std::unique_ptr<Vm> KvmHypervisor::create_vm() { return std::make_unique<KvmVm>(*this); }

}  // namespace kvm
}  // namespace vmrun
