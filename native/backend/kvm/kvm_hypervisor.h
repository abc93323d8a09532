// The /dev/kvm handle: opening it, checking the API version and the capabilities
// vmrun relies on, and describing the host for `vmrun doctor`.
#pragma once
#include "backend/kvm/kvm_uapi.h"

#include <memory>
#include <string>
#include <vector>

#include "backend/hypervisor.h"
#include "backend/kvm/kvm_fd.h"

namespace vmrun::kvm {

class KvmHypervisor : public Hypervisor {
 public:
  explicit KvmHypervisor(const std::string& device_path);
  HostReport report() override;
  int max_vcpus() override { return check_extension(KVM_CAP_MAX_VCPUS); }
  std::unique_ptr<Vm> create_vm() override;
  DebugTrapSupport probe_debug_traps() override;

  int fd() const { return fd_.get(); }
  int check_extension(long cap) const;
  size_t vcpu_mmap_size() const { return vcpu_mmap_size_; }
  /** KVM_GET_SUPPORTED_CPUID, fetched once. */
  const std::vector<kvm_cpuid_entry2>& supported_cpuid();
  /** KVM_GET_MSR_INDEX_LIST, fetched once. */
  const std::vector<uint32_t>& msr_index_list();

 private:
  std::string path_;
  Fd fd_;
  size_t vcpu_mmap_size_ = 0;
  std::vector<uint32_t> msrs_;
};

/** Capabilities vmrun cannot run without, with the names users see. */
struct RequiredCapability {
  long id;
  const char* name;
};
extern const RequiredCapability kRequiredCapabilities[];
extern const size_t kRequiredCapabilityCount;

}  // namespace vmrun::kvm
