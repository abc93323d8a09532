// The seam between the one virtio-mmio transport and the devices behind it (vsock now;
// rng, net, blk, fs later). A device describes itself (type, features, queues, config
// space), is told when the driver starts and resets it, and does its queue work
// through VirtioQueues, which the transport hands out under its lock. A device never
// sees transport registers, and the transport never knows what a device does.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include <memory>
#include <vector>

#include "backend/hypervisor.h"
#include "devices/device.h"
#include "devices/virtio/virtqueue.h"
#include "memory/guest_memory.h"

namespace vmrun::virtio {

/** A device's queues while it holds the transport's lock (inside VirtioLink::with_queues). */
class VirtioQueues {
 public:
  virtual ~VirtioQueues() = default;
  virtual const GuestMemory& memory() const = 0;
  virtual uint16_t count() const = 0;
  virtual Virtqueue& queue(uint16_t index) = 0;
  /** Pops the next chain of a queue; a broken chain marks the device as needing a reset. */
  virtual Virtqueue::Pop pop(uint16_t index, DescriptorChain* chain) = 0;
  /** Hands back the chain pop() just returned, unused, to be popped again later. */
  virtual void unpop(uint16_t index) = 0;
  /** Returns a chain to the driver; `written` bytes went into its writable part. */
  virtual void push_used(uint16_t index, uint16_t head, uint32_t written) = 0;
  /** Returns several chains in order, published to the driver at once (one used-index update). */
  virtual void push_used(uint16_t index, const UsedBuffer* buffers, size_t count) = 0;
  /** Interrupts the driver for the used buffers pushed so far (once per batch). */
  virtual void signal_used() = 0;
  /** Marks the device DEVICE_NEEDS_RESET (config interrupt): it stops until the driver resets it. */
  virtual void fail(const std::string& why) = 0;
};

/** What the transport offers a device. */
class VirtioLink {
 public:
  virtual ~VirtioLink() = default;
  /**
   * Runs `work` with the queues under the transport's lock if the device is live
   * (DRIVER_OK, not failed); returns false without running it otherwise. Waits while
   * the machine is paused for a snapshot, so a device thread never touches guest
   * memory then. Callable from any thread.
   */
  virtual bool with_queues(const std::function<void(VirtioQueues&)>& work) = 0;
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;
  /** The name of the device in snapshots and messages ("virtio-vsock"). */
  virtual std::string name() const = 0;
  /** The virtio device ID (spec 5: 19 = vsock, 4 = entropy...). */
  virtual uint32_t device_type() const = 0;
  /** Device-specific feature bits offered (the transport adds VIRTIO_F_VERSION_1). */
  virtual uint64_t features() const = 0;
  virtual uint16_t queue_count() const = 0;
  virtual uint16_t queue_max_size(uint16_t index) const = 0;
  /** Config space size and accesses (offsets from the start of the config space, in range). */
  virtual uint32_t config_size() const = 0;
  virtual void read_config(uint32_t offset, uint8_t* data, uint32_t size) = 0;
  virtual void write_config(uint32_t /*offset*/, const uint8_t* /*data*/, uint32_t /*size*/) {}

  /**
   * Whether the device's own thread takes its queue notifications as eventfds that
   * the hypervisor signals on a QueueNotify write, with no exit to the VMM (KVM
   * ioeventfds; one per queue). Worth it for busy queues: an exit to user space costs
   * a vCPU far more than one the kernel handles, above all under nested virtualization.
   */
  virtual bool takes_notify_events() const { return false; }
  /** Before attach(), if takes_notify_events(): the events, indexed by queue; notify() still sees writes they did not match. */
  virtual void use_notify_events(std::vector<std::unique_ptr<NotifyEvent>> /*events*/) {}

  /** Called once, before the guest runs: how the device reaches its queues. */
  virtual void attach(VirtioLink* link) = 0;
  /** The driver set DRIVER_OK with these features; transport lock held: do not block. */
  virtual void activate(uint64_t driver_features) = 0;
  /** The driver notified queue `index` (on a vCPU thread, no lock held). */
  virtual void notify(uint16_t index) = 0;
  /** The driver reset the device: forget everything tied to the queues. Lock held: do not block. */
  virtual void reset() = 0;

  /**
   * Whether another process serves the queues (vhost-user) and interrupts the guest
   * through the transport's eventfd directly: the transport cannot see those used
   * buffers, so its InterruptStatus always shows one (a driver checks its rings anyway).
   */
  virtual bool queues_served_elsewhere() const { return false; }

  /** Device state beside the transport's queue state (versioned, named fields). */
  virtual StateBlob save() = 0;
  /** Applied after the transport's state; the queues are as saved. */
  virtual void restore(const StateBlob& state) = 0;
};

}  // namespace vmrun::virtio
