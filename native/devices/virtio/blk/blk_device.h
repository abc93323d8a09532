// virtio-blk (virtio 1.2, 5.2) over a host file: IN, OUT, FLUSH and GET_ID, served on
// the vCPU thread that notified the queue (synchronous preadv/pwritev, as
// Firecracker's sync engine). Every request is checked before it touches the file:
// header and status placement, data length a multiple of 512, the sector range
// against the capacity (overflow-safe). A bad request completes with IOERR/UNSUPP;
// only a broken descriptor chain stops the device (the transport's rule).
#pragma once
#include <cstdint>
#include <string>

#include "devices/virtio/virtio_device.h"

namespace vmrun::virtio::blk {

constexpr uint32_t kDeviceType = 2;
constexpr uint16_t kQueueSize = 256;
constexpr uint64_t kSectorSize = 512;
/** GET_ID answers with this many bytes (spec: VIRTIO_BLK_ID_BYTES). */
constexpr size_t kSerialBytes = 20;

// Request types and status values (spec 5.2.6).
constexpr uint32_t kRequestIn = 0;
constexpr uint32_t kRequestOut = 1;
constexpr uint32_t kRequestFlush = 4;
constexpr uint32_t kRequestGetId = 8;
constexpr uint8_t kStatusOk = 0;
constexpr uint8_t kStatusIoErr = 1;
constexpr uint8_t kStatusUnsupported = 2;

// Feature bits (spec 5.2.3).
constexpr uint64_t kFeatureSegMax = 1ULL << 2;
constexpr uint64_t kFeatureReadOnly = 1ULL << 5;
constexpr uint64_t kFeatureFlush = 1ULL << 9;

/** One disk as the host asks for it. */
struct DiskConfig {
  std::string path;
  bool read_only = false;
  /** GET_ID's answer (at most kSerialBytes; the guest shows it in /sys/block/vdX/serial). */
  std::string serial;
};

/** An open disk file: what the device serves and what a snapshot checks. */
struct DiskFile {
  int fd = -1;
  uint64_t bytes = 0;
};

/** Opens a disk's file (read-only or read-write); throws VmrunError naming the path. */
DiskFile open_disk(const DiskConfig& config);

class BlkDevice : public VirtioDevice {
 public:
  /** Takes ownership of `file` (from open_disk). `index` makes the snapshot name unique. */
  BlkDevice(DiskConfig config, DiskFile file, int index);
  ~BlkDevice() override;

  std::string name() const override { return "virtio-blk" + std::to_string(index_); }
  uint32_t device_type() const override { return kDeviceType; }
  uint64_t features() const override;
  uint16_t queue_count() const override { return 1; }
  uint16_t queue_max_size(uint16_t) const override { return kQueueSize; }
  uint32_t config_size() const override;
  void read_config(uint32_t offset, uint8_t* data, uint32_t size) override;
  void attach(VirtioLink* link) override { link_ = link; }
  void activate(uint64_t) override {}
  void notify(uint16_t index) override;
  void reset() override {}
  StateBlob save() override;
  void restore(const StateBlob& state) override;

  uint64_t capacity_sectors() const { return file_.bytes / kSectorSize; }

 private:
  void serve(VirtioQueues& q);
  /** Completes one request; returns the bytes written into the chain (data + status). */
  uint32_t handle(const DescriptorChain& chain);
  uint8_t transfer(const DescriptorChain& chain, bool write, uint64_t sector, uint64_t length);

  DiskConfig config_;
  DiskFile file_;
  int index_;
  VirtioLink* link_ = nullptr;
};

}  // namespace vmrun::virtio::blk
