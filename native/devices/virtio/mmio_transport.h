// The virtio-mmio transport (virtio 1.2, 4.2; version 2 registers, modern only): one
// 4 KiB MMIO window per device with the identification registers, feature
// negotiation, queue set-up, notification, interrupt status and the device's config
// space. It owns the device's split virtqueues and checks what the driver programs;
// anything the guest gets wrong marks the device DEVICE_NEEDS_RESET and raises a
// config-change interrupt, and the device stops until the driver resets it.
#pragma once
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/hypervisor.h"
#include "devices/device.h"
#include "devices/virtio/virtio_device.h"

namespace vmrun::virtio {

class VirtioMmioTransport : public Device, private VirtioLink, private VirtioQueues {
 public:
  VirtioMmioTransport(std::unique_ptr<VirtioDevice> device, const GuestMemory& memory, std::unique_ptr<InterruptEvent> interrupt);
  ~VirtioMmioTransport() override;

  std::string name() const override { return device_->name(); }
  void read(uint64_t offset, uint8_t* data, uint32_t size) override;
  void write(uint64_t offset, const uint8_t* data, uint32_t size) override;
  StateBlob save() override;
  void restore(const StateBlob& state) override;
  void pause_work() override;
  void resume_work() override;

  /** How often the guest made the device need a reset, and the last reason (kept across resets). */
  struct Failures {
    uint64_t count = 0;
    std::string last;
  };
  Failures failures() const;
  /** Failures also written to stderr; later ones are only counted. */
  static constexpr uint64_t kFailuresLogged = 8;

 private:
  uint32_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint32_t value);
  void write_status(uint32_t value);
  void reset_locked();
  /** Tells the queues which ring features (event_idx) the driver accepted; at DRIVER_OK. */
  void apply_ring_features_locked();
  void fail_locked(const std::string& why);
  Virtqueue* selected_queue();
  bool live_locked() const;
  /** For queues served by another process: throws if any ready ring has requests in flight. */
  void check_rings_idle_locked() const;

  // VirtioLink
  bool with_queues(const std::function<void(VirtioQueues&)>& work) override;
  // VirtioQueues (called with mu_ held)
  const GuestMemory& memory() const override { return memory_; }
  uint16_t count() const override { return static_cast<uint16_t>(queues_.size()); }
  Virtqueue& queue(uint16_t index) override { return queues_.at(index); }
  Virtqueue::Pop pop(uint16_t index, DescriptorChain* chain) override;
  void unpop(uint16_t index) override { queues_.at(index).unpop(); }
  void push_used(uint16_t index, uint16_t head, uint32_t written) override;
  void push_used(uint16_t index, const UsedBuffer* buffers, size_t count) override;
  void signal_used() override;
  void fail(const std::string& why) override { fail_locked(why); }

  std::unique_ptr<VirtioDevice> device_;
  const GuestMemory& memory_;
  std::unique_ptr<InterruptEvent> interrupt_;

  mutable std::mutex mu_;
  std::condition_variable unpaused_;
  bool paused_ = false;
  bool closing_ = false;

  // Transport registers.
  uint32_t status_ = 0;
  uint32_t device_features_sel_ = 0;
  uint32_t driver_features_sel_ = 0;
  uint64_t driver_features_ = 0;
  uint32_t queue_sel_ = 0;
  uint32_t interrupt_status_ = 0;
  uint32_t config_generation_ = 0;
  std::vector<Virtqueue> queues_;
  Failures failures_;
};

}  // namespace vmrun::virtio
