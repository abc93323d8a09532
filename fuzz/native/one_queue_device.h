// A virtio device with one queue and nothing else, whose queue the caller drives through
// the link the transport hands it (what a real device's thread does): the stand-in the
// transport and receive-path tests and the virtio_net_rx fuzz target share. Also an
// interrupt that goes nowhere.
#pragma once
#include <string>

#include "devices/virtio/virtio_device.h"

namespace vmrun::virtio {

struct NoInterrupt : InterruptEvent {
  void trigger() override {}
};

struct OneQueueDevice : VirtioDevice {
  OneQueueDevice(std::string name, uint32_t type, uint64_t features, uint16_t max_size, StateBlob saved = {})
      : name_(std::move(name)), type_(type), features_(features), max_size_(max_size), saved_(std::move(saved)) {}
  VirtioLink* link = nullptr;
  std::string name() const override { return name_; }
  uint32_t device_type() const override { return type_; }
  uint64_t features() const override { return features_; }
  uint16_t queue_count() const override { return 1; }
  uint16_t queue_max_size(uint16_t) const override { return max_size_; }
  uint32_t config_size() const override { return 0; }
  void read_config(uint32_t, uint8_t*, uint32_t) override {}
  void attach(VirtioLink* l) override { link = l; }
  void activate(uint64_t) override {}
  void notify(uint16_t) override {}
  void reset() override {}
  StateBlob save() override { return saved_; }
  void restore(const StateBlob&) override {}

 private:
  std::string name_;
  uint32_t type_;
  uint64_t features_;
  uint16_t max_size_;
  StateBlob saved_;
};

}  // namespace vmrun::virtio
