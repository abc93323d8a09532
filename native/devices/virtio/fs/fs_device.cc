#include "devices/virtio/fs/fs_device.h"

#include <poll.h>
#include <unistd.h>

#include <chrono>

#include <cstdio>
#include <cstring>

#include "common/error.h"
#include "common/state_codec.h"
#include "devices/virtio/virtio_spec.h"

namespace vmrun::virtio::fs {

using vhost_user::Request;

FsDevice::FsDevice(const VolumeConfig& config, int index, FsWiring wiring)
    : config_(config), index_(index), wiring_(std::move(wiring)), process_(VirtiofsdProcess::start(config)) {
  if (config_.tag.empty() || config_.tag.size() > kMaxTagBytes)
    throw VmrunError(ErrorCode::Usage, "volume tag \"" + config_.tag + "\" must be 1 to 36 bytes");
  if (wiring_.notify.size() != kQueueCount || wiring_.interrupt_fd < 0 || !wiring_.memory || wiring_.memory->shared_fd() < 0)
    throw VmrunError(ErrorCode::Internal, "virtio-fs needs shared guest RAM, a notify event per queue and an interrupt eventfd");
  connection_ = std::make_unique<vhost_user::Connection>(process_.take_socket(), kReplyTimeoutMs);
  try {
    connection_->send(vhost_user::encode_empty(Request::SetOwner));
    backend_features_ = connection_->request_u64(Request::GetFeatures);
  } catch (const VmrunError& e) {
    throw VmrunError(ErrorCode::Host, "virtiofsd for " + config_.host_dir + " did not start: " + e.what());
  }
  if (!(backend_features_ & kFeatureVersion1))
    throw VmrunError(ErrorCode::Host, "virtiofsd for " + config_.host_dir + " does not offer VIRTIO_F_VERSION_1");
  started_.assign(kQueueCount, false);
  thread_ = std::thread([this] { run(); });
}

FsDevice::~FsDevice() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands_.emplace_back(Command::Quit, 0);
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  process_.stop();
  connection_.reset();
}

void FsDevice::read_config(uint32_t offset, uint8_t* data, uint32_t size) {
  // struct virtio_fs_config { u8 tag[36]; le32 num_request_queues; }
  uint8_t config[kMaxTagBytes + 4] = {};
  std::memcpy(config, config_.tag.data(), config_.tag.size());
  const uint32_t request_queues = kQueueCount - 1;
  std::memcpy(config + kMaxTagBytes, &request_queues, 4);
  std::memcpy(data, config + offset, size);  // the transport checked the range
}

void FsDevice::activate(uint64_t driver_features) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands_.emplace_back(Command::Start, driver_features);
  }
  wake_.notify_all();
}

void FsDevice::reset() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands_.emplace_back(Command::Stop, 0);
  }
  wake_.notify_all();
}

void FsDevice::notify(uint16_t index) {
  if (index >= kQueueCount) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wiring_.notify[index]->event_fd(), &one, sizeof one);
}

namespace {
constexpr uint32_t kStateVersion = 1;
constexpr uint32_t kTagVolume = 1;

/**
 * A volume's state in a snapshot: the tag the guest mounts it by. The FUSE session
 * itself (node ids, open handles) lives in virtiofsd and is not saved: the guest
 * unmounts its volumes before a save and mounts them again after (docs/snapshots.md),
 * and the transport refuses a save with requests in flight.
 */
struct FsState {
  uint32_t tag_length;
  char tag[kMaxTagBytes];
};
}  // namespace

StateBlob FsDevice::save() {
  FsState s{};
  s.tag_length = static_cast<uint32_t>(config_.tag.size());
  std::memcpy(s.tag, config_.tag.data(), config_.tag.size());
  StateWriter w(kStateVersion);
  w.record(kTagVolume, s);
  return w.take();
}

void FsDevice::restore(const StateBlob& state) {
  StateReader r(state, name() + " device state", kStateVersion);
  auto s = r.expect_obj<FsState>(kTagVolume);
  if (!r.at_end()) throw VmrunError(ErrorCode::Snapshot, name() + " device state has trailing records");
  if (s.tag_length > kMaxTagBytes || std::string(s.tag, s.tag_length) != config_.tag)
    throw VmrunError(ErrorCode::Snapshot, name() + ": the snapshot's volume in this slot has another tag than " + config_.tag);
}

void FsDevice::run() {
  for (;;) {
    std::pair<Command, uint64_t> command;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Once a second, a look at the socket: virtiofsd sends nothing unasked, so a
      // readable or hung-up socket means it exited, and the guest must not wait on it.
      while (!wake_.wait_for(lock, std::chrono::seconds(1), [&] { return !commands_.empty(); })) {
        if (broken_) continue;
        pollfd p{connection_->fd(), POLLIN, 0};
        if (poll(&p, 1, 0) > 0) {
          lock.unlock();
          fail("virtiofsd exited");
          lock.lock();
        }
      }
      command = commands_.front();
      commands_.pop_front();
    }
    if (command.first == Command::Quit) return;
    if (broken_) continue;
    try {
      if (command.first == Command::Start) start_rings(command.second);
      else stop_rings();
    } catch (const VmrunError& e) {
      fail(e.what());
    }
  }
}

void FsDevice::start_rings(uint64_t driver_features) {
  struct Ring {
    uint16_t size;
    uint16_t next;
    uint64_t desc, avail, used;
  };
  std::vector<Ring> rings(kQueueCount);
  const GuestMemory& memory = *wiring_.memory;
  // The transport checked each ready queue's layout against guest RAM (check_layout);
  // the host addresses are looked up again here, so nothing outside RAM is ever sent.
  bool live = link_->with_queues([&](VirtioQueues& q) {
    for (uint16_t i = 0; i < kQueueCount; i++) {
      const VirtqueueConfig& c = q.queue(i).config;
      if (!c.ready) continue;
      const uint64_t n = c.size;
      uint8_t* desc = memory.range(c.desc_table, 16 * n);
      uint8_t* avail = memory.range(c.avail_ring, 6 + 2 * n);
      uint8_t* used = memory.range(c.used_ring, 6 + 8 * n);
      if (!desc || !avail || !used) continue;
      // Where virtiofsd starts: the used index (0 at boot; after a restore, what the
      // guest had seen completed, every request before it being done: see save()).
      uint16_t next;
      std::memcpy(&next, used + 2, 2);
      rings[i] = {c.size, next, reinterpret_cast<uint64_t>(desc), reinterpret_cast<uint64_t>(avail), reinterpret_cast<uint64_t>(used)};
    }
  });
  if (!live) return;  // reset again before this thread got to it

  // Without VHOST_USER_F_PROTOCOL_FEATURES, virtiofsd enables each ring when it gets its kick fd.
  connection_->send(vhost_user::encode_u64(Request::SetFeatures, driver_features & ~vhost_user::kFeatureProtocolFeatures));
  std::vector<vhost_user::MemoryRegion> regions;
  for (const auto& r : memory.regions())
    regions.push_back({r.guest_address, r.size, reinterpret_cast<uint64_t>(r.host), static_cast<uint64_t>(r.host - memory.host_base())});
  connection_->send(vhost_user::encode_mem_table(regions, memory.shared_fd()));
  for (uint32_t i = 0; i < kQueueCount; i++) {
    const Ring& r = rings[i];
    if (r.size == 0) continue;
    connection_->send(vhost_user::encode_vring_state(Request::SetVringNum, i, r.size));
    connection_->send(vhost_user::encode_vring_state(Request::SetVringBase, i, r.next));
    connection_->send(vhost_user::encode_vring_address({i, 0, r.desc, r.used, r.avail, 0}));
    connection_->send(vhost_user::encode_vring_fd(Request::SetVringCall, i, wiring_.interrupt_fd));
    connection_->send(vhost_user::encode_vring_fd(Request::SetVringKick, i, wiring_.notify[i]->event_fd()));
    started_[i] = true;
  }
  // A request with a reply: virtiofsd has taken everything above (or it is gone).
  connection_->request_u64(Request::GetFeatures);
}

void FsDevice::stop_rings() {
  for (uint32_t i = 0; i < kQueueCount; i++) {
    if (!started_[i]) continue;
    connection_->get_vring_base(i);  // stops the ring in virtiofsd
    started_[i] = false;
  }
}

void FsDevice::fail(const std::string& why) {
  broken_ = true;
  std::fprintf(stderr, "vmrun: volume %s: %s\n", config_.host_dir.c_str(), why.c_str());
  link_->with_queues([&](VirtioQueues& q) { q.fail("virtiofsd: " + why); });
}

}  // namespace vmrun::virtio::fs
