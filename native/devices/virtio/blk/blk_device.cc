#include "devices/virtio/blk/blk_device.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "common/error.h"
#include "common/state_codec.h"

namespace vmrun::virtio::blk {

namespace {

constexpr uint32_t kStateVersion = 1;
constexpr uint32_t kTagDisk = 1;
constexpr uint64_t kRequestHeaderBytes = 16;

/** The request header the driver puts first in the chain (spec 5.2.6). */
struct RequestHeader {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};
static_assert(sizeof(RequestHeader) == kRequestHeaderBytes);

/** The config space fields vmrun fills (spec 5.2.4): capacity, size_max, seg_max. */
struct BlkConfigSpace {
  uint64_t capacity;
  uint32_t size_max;
  uint32_t seg_max;
};
static_assert(sizeof(BlkConfigSpace) == 16);

/** A disk's state in a snapshot: what the guest was shown. */
struct BlkState {
  uint64_t capacity_sectors;
  uint32_t read_only;
  uint32_t reserved;
};

}  // namespace

DiskFile open_disk(const DiskConfig& config) {
  if (config.serial.size() > kSerialBytes)
    throw VmrunError(ErrorCode::Usage, "disk serial \"" + config.serial + "\" is longer than " + std::to_string(kSerialBytes) + " bytes");
  int fd = open(config.path.c_str(), (config.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    throw VmrunError(err == ENOENT ? ErrorCode::NotFound : ErrorCode::Usage, errno_message("disk " + config.path + " cannot be opened" + (config.read_only ? "" : " for writing"), err));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    throw VmrunError(ErrorCode::Usage, "disk " + config.path + " is not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) < kSectorSize) {
    close(fd);
    throw VmrunError(ErrorCode::Usage, "disk " + config.path + " is smaller than one 512-byte sector");
  }
  return DiskFile{fd, static_cast<uint64_t>(st.st_size)};
}

BlkDevice::BlkDevice(DiskConfig config, DiskFile file, int index) : config_(std::move(config)), file_(file), index_(index) {}

BlkDevice::~BlkDevice() {
  if (file_.fd >= 0) close(file_.fd);
}

uint64_t BlkDevice::features() const { return kFeatureFlush | kFeatureSegMax | (config_.read_only ? kFeatureReadOnly : 0); }

uint32_t BlkDevice::config_size() const { return sizeof(BlkConfigSpace); }

void BlkDevice::read_config(uint32_t offset, uint8_t* data, uint32_t size) {
  BlkConfigSpace c{capacity_sectors(), 0, kQueueSize - 2};
  const auto* bytes = reinterpret_cast<const uint8_t*>(&c);
  for (uint32_t i = 0; i < size; i++) data[i] = offset + i < sizeof c ? bytes[offset + i] : 0;
}

void BlkDevice::notify(uint16_t index) {
  if (index != 0 || !link_) return;
  link_->with_queues([this](VirtioQueues& q) { serve(q); });
}

void BlkDevice::serve(VirtioQueues& q) {
  bool completed = false;
  for (;;) {
    DescriptorChain chain;
    if (q.pop(0, &chain) != Virtqueue::Pop::Chain) break;  // Empty, or Broken: the transport failed the device
    q.push_used(0, chain.head, handle(chain));
    completed = true;
  }
  if (completed) q.signal_used();
}

uint32_t BlkDevice::handle(const DescriptorChain& chain) {
  // The status byte is the last writable byte; a chain without one cannot be answered.
  if (chain.writable_length == 0) return 0;
  const uint64_t status_at = chain.writable_length - 1;
  auto finish = [&](uint8_t status, uint64_t data_written) -> uint32_t {
    chain.write(status_at, &status, 1);
    return static_cast<uint32_t>(std::min<uint64_t>(data_written + 1, UINT32_MAX));
  };
  RequestHeader h{};
  if (chain.readable_length < kRequestHeaderBytes || chain.read(0, &h, sizeof h) != sizeof h) return finish(kStatusIoErr, 0);

  switch (h.type) {
    case kRequestIn: {
      const uint64_t length = status_at;  // every writable byte before the status
      uint8_t s = transfer(chain, false, h.sector, length);
      return finish(s, s == kStatusOk ? length : 0);
    }
    case kRequestOut: {
      if (config_.read_only) return finish(kStatusIoErr, 0);
      return finish(transfer(chain, true, h.sector, chain.readable_length - kRequestHeaderBytes), 0);
    }
    case kRequestFlush:
      if (!config_.read_only && fdatasync(file_.fd) != 0) return finish(kStatusIoErr, 0);
      return finish(kStatusOk, 0);
    case kRequestGetId: {
      char id[kSerialBytes] = {};
      std::memcpy(id, config_.serial.data(), std::min(config_.serial.size(), kSerialBytes));
      uint64_t n = std::min<uint64_t>(status_at, kSerialBytes);
      chain.write(0, id, n);
      return finish(kStatusOk, n);
    }
    default:
      return finish(kStatusUnsupported, 0);
  }
}

uint8_t BlkDevice::transfer(const DescriptorChain& chain, bool write, uint64_t sector, uint64_t length) {
  const uint64_t capacity = capacity_sectors();
  if (length % kSectorSize != 0) return kStatusIoErr;
  const uint64_t sectors = length / kSectorSize;
  if (sector > capacity || sectors > capacity - sector) return kStatusIoErr;
  std::vector<iovec> iov = write ? chain.readable_iovecs(kRequestHeaderBytes, length) : chain.writable_iovecs(0, length);
  uint64_t offset = sector * kSectorSize;
  size_t at = 0;
  while (at < iov.size()) {
    const int count = static_cast<int>(std::min<size_t>(iov.size() - at, IOV_MAX));
    ssize_t n = write ? pwritev(file_.fd, iov.data() + at, count, static_cast<off_t>(offset))
                      : preadv(file_.fd, iov.data() + at, count, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return kStatusIoErr;  // an error, or the host file shrank under the guest
    offset += static_cast<uint64_t>(n);
    // Skip what was done; a partial transfer resumes inside an iovec.
    auto left = static_cast<size_t>(n);
    while (left > 0 && at < iov.size()) {
      if (left >= iov[at].iov_len) {
        left -= iov[at].iov_len;
        at++;
      } else {
        iov[at].iov_base = static_cast<uint8_t*>(iov[at].iov_base) + left;
        iov[at].iov_len -= left;
        left = 0;
      }
    }
  }
  return kStatusOk;
}

StateBlob BlkDevice::save() {
  StateWriter w(kStateVersion);
  w.record(kTagDisk, BlkState{capacity_sectors(), config_.read_only ? 1U : 0U, 0});
  return w.take();
}

void BlkDevice::restore(const StateBlob& state) {
  StateReader r(state, name() + " device state", kStateVersion);
  auto s = r.expect_obj<BlkState>(kTagDisk);
  if (!r.at_end()) throw VmrunError(ErrorCode::Snapshot, name() + " device state has trailing records");
  if (s.capacity_sectors != capacity_sectors())
    throw VmrunError(ErrorCode::Snapshot, "disk " + config_.path + " has " + std::to_string(capacity_sectors()) + " sectors; the snapshot's guest saw " + std::to_string(s.capacity_sectors));
  if ((s.read_only != 0) != config_.read_only)
    throw VmrunError(ErrorCode::Snapshot, "disk " + config_.path + (config_.read_only ? " is read-only now but was writable" : " is writable now but was read-only") + " in the snapshot");
}

}  // namespace vmrun::virtio::blk
