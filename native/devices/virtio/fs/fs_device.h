// virtio-fs (virtio 1.2, 5.11) as a vhost-user front end: vmrun owns the device's
// transport registers and config space (the tag), and virtiofsd, in its own process,
// serves the queues straight from guest RAM (a shared memfd). Guest notifications
// reach virtiofsd as KVM ioeventfds on QueueNotify and its completions reach the
// guest as the transport's irqfd, so no FUSE byte passes through vmrun and vmrun
// parses no guest-supplied data but the transport's registers (which the transport
// checks). The vhost-user set-up runs on the device's own thread, never under the
// transport's lock or on a vCPU thread.
#pragma once
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend/hypervisor.h"
#include "devices/virtio/fs/vhost_user.h"
#include "devices/virtio/fs/virtiofsd_process.h"
#include "devices/virtio/virtio_device.h"

namespace vmrun::virtio::fs {

constexpr uint32_t kDeviceType = 26;
/** virtio_fs_config.tag: 36 bytes, NUL-padded (a tag of 36 bytes has no NUL). */
constexpr size_t kMaxTagBytes = 36;
/** One high-priority queue (FUSE interrupts, forgets) and one request queue. */
constexpr uint16_t kQueueCount = 2;
constexpr uint16_t kQueueSize = 1024;
/** How long vmrun waits for a reply of virtiofsd before it gives up on it. */
constexpr int kReplyTimeoutMs = 60'000;
/** Ring features vmrun lets through from virtiofsd to the driver (virtiofsd walks the rings). */
constexpr uint64_t kFeatureIndirectDesc = 1ULL << 28;
constexpr uint64_t kFeatureEventIdx = 1ULL << 29;

/** What the builder hands a virtio-fs device besides its volume: the VM's events for its MMIO slot. */
struct FsWiring {
  const GuestMemory* memory;
  /** One per queue, signalled by the VM when the driver writes that queue's index to QueueNotify. */
  std::vector<std::unique_ptr<NotifyEvent>> notify;
  /** The transport's interrupt eventfd: virtiofsd's call fd for every queue. */
  int interrupt_fd;
};

class FsDevice : public VirtioDevice {
 public:
  /** Starts virtiofsd for the volume and asks it for its features (throws VmrunError(Host)). */
  FsDevice(const VolumeConfig& config, int index, FsWiring wiring);
  ~FsDevice() override;

  std::string name() const override { return "virtio-fs" + std::to_string(index_); }
  uint32_t device_type() const override { return kDeviceType; }
  uint64_t features() const override { return backend_features_ & (kFeatureIndirectDesc | kFeatureEventIdx); }
  uint16_t queue_count() const override { return kQueueCount; }
  uint16_t queue_max_size(uint16_t) const override { return kQueueSize; }
  uint32_t config_size() const override { return kMaxTagBytes + 4; }
  void read_config(uint32_t offset, uint8_t* data, uint32_t size) override;
  void attach(VirtioLink* link) override { link_ = link; }
  void activate(uint64_t driver_features) override;
  /** Only reached if a notification bypassed the ioeventfd: passed on to virtiofsd. */
  void notify(uint16_t index) override;
  void reset() override;
  bool queues_served_elsewhere() const override { return true; }
  /** The volume's tag; the FUSE session is not saved (the guest remounts: docs/snapshots.md). */
  StateBlob save() override;
  void restore(const StateBlob& state) override;

 private:
  enum class Command { Start, Stop, Quit };
  void run();
  void start_rings(uint64_t driver_features);
  void stop_rings();
  void fail(const std::string& why);

  VolumeConfig config_;
  int index_;
  FsWiring wiring_;
  VirtiofsdProcess process_;
  std::unique_ptr<vhost_user::Connection> connection_;
  uint64_t backend_features_ = 0;
  VirtioLink* link_ = nullptr;

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::pair<Command, uint64_t>> commands_;
  std::vector<bool> started_;  // device thread only
  bool broken_ = false;        // device thread only: virtiofsd failed, nothing more is sent
  std::thread thread_;
};

}  // namespace vmrun::virtio::fs
