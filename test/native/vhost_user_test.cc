// The vhost-user messages vmrun sends virtiofsd, byte for byte as the protocol lays
// them out (QEMU's docs/interop/vhost-user.rst), and the connection's handling of a
// back end's replies: a good one, a wrong one, silence and a closed socket.
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "check.h"
#include "devices/virtio/fs/vhost_user.h"

using namespace vmrun::virtio::fs::vhost_user;

namespace {

uint32_t u32_at(const std::vector<uint8_t>& b, size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}
uint64_t u64_at(const std::vector<uint8_t>& b, size_t at) {
  uint64_t v;
  std::memcpy(&v, b.data() + at, 8);
  return v;
}

std::vector<uint8_t> reply(uint32_t request, uint32_t flags, const void* payload, uint32_t size) {
  std::vector<uint8_t> b(kHeaderSize + (payload ? size : 0));
  const uint32_t h[3] = {request, flags, size};
  std::memcpy(b.data(), h, kHeaderSize);
  if (payload) std::memcpy(b.data() + kHeaderSize, payload, size);
  return b;
}

/** A back end on the other end of a socketpair: reads one message (and its fds), then answers `answer`. */
struct FakeBackEnd {
  int fds[2];
  std::vector<uint8_t> received;
  int received_fds = 0;
  FakeBackEnd() { socketpair(AF_UNIX, SOCK_STREAM, 0, fds); }
  ~FakeBackEnd() { close(fds[1]); }
  void serve(const std::vector<uint8_t>& answer) {
    uint8_t buf[256];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(fds[1], &msg, 0);
    if (n > 0) received.assign(buf, buf + n);
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_type != SCM_RIGHTS) continue;
      received_fds = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      for (int i = 0; i < received_fds; i++) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        close(fd);
      }
    }
    if (!answer.empty()) [[maybe_unused]] ssize_t w = write(fds[1], answer.data(), answer.size());
  }
};

}  // namespace

TEST("vhost-user: a request without payload is a 12-byte header, version 1") {
  Message m = encode_empty(Request::SetOwner);
  CHECK_EQ(m.bytes.size(), size_t{12});
  CHECK_EQ(u32_at(m.bytes, 0), uint32_t{3});
  CHECK_EQ(u32_at(m.bytes, 4), uint32_t{1});
  CHECK_EQ(u32_at(m.bytes, 8), uint32_t{0});
  CHECK(m.fds.empty());
}

TEST("vhost-user: SET_FEATURES carries the u64") {
  Message m = encode_u64(Request::SetFeatures, 0x1'3000'0000ULL);
  CHECK_EQ(m.bytes.size(), size_t{20});
  CHECK_EQ(u32_at(m.bytes, 0), uint32_t{2});
  CHECK_EQ(u32_at(m.bytes, 8), uint32_t{8});
  CHECK_EQ(u64_at(m.bytes, 12), uint64_t{0x1'3000'0000ULL});
}

TEST("vhost-user: SET_MEM_TABLE lists only the regions there are, one fd per region") {
  Message m = encode_mem_table({{0, 0xC000'0000, 0x7f00'0000'0000, 0}, {0x1'0000'0000, 0x4000'0000, 0x7f00'C000'0000, 0xC000'0000}}, 42);
  CHECK_EQ(u32_at(m.bytes, 0), uint32_t{5});
  CHECK_EQ(u32_at(m.bytes, 8), uint32_t{8 + 2 * 32});
  CHECK_EQ(m.bytes.size(), size_t{12 + 8 + 64});
  CHECK_EQ(u32_at(m.bytes, 12), uint32_t{2});  // nregions
  CHECK_EQ(u32_at(m.bytes, 16), uint32_t{0});  // padding
  const size_t second = 12 + 8 + 32;
  CHECK_EQ(u64_at(m.bytes, second), uint64_t{0x1'0000'0000});
  CHECK_EQ(u64_at(m.bytes, second + 8), uint64_t{0x4000'0000});
  CHECK_EQ(u64_at(m.bytes, second + 16), uint64_t{0x7f00'C000'0000});
  CHECK_EQ(u64_at(m.bytes, second + 24), uint64_t{0xC000'0000});
  CHECK_EQ(m.fds.size(), size_t{2});
  CHECK_EQ(m.fds[1], 42);
  CHECK_THROWS(encode_mem_table({}, 42), "memory regions");
  CHECK_THROWS(encode_mem_table(std::vector<MemoryRegion>(9), 42), "memory regions");
}

TEST("vhost-user: vring messages: state, address and kick/call with the index in bits 0-7") {
  Message num = encode_vring_state(Request::SetVringNum, 1, 1024);
  CHECK_EQ(u32_at(num.bytes, 8), uint32_t{8});
  CHECK_EQ(u32_at(num.bytes, 12), uint32_t{1});
  CHECK_EQ(u32_at(num.bytes, 16), uint32_t{1024});
  Message addr = encode_vring_address({1, 0, 0x1000, 0x3000, 0x2000, 0});
  CHECK_EQ(u32_at(addr.bytes, 0), uint32_t{9});
  CHECK_EQ(u32_at(addr.bytes, 8), uint32_t{40});
  CHECK_EQ(u64_at(addr.bytes, 12 + 8), uint64_t{0x1000});   // descriptors
  CHECK_EQ(u64_at(addr.bytes, 12 + 16), uint64_t{0x3000});  // used
  CHECK_EQ(u64_at(addr.bytes, 12 + 24), uint64_t{0x2000});  // available
  Message kick = encode_vring_fd(Request::SetVringKick, 0x101, 7);
  CHECK_EQ(u64_at(kick.bytes, 12), uint64_t{1});  // never the no-fd bit 8
  CHECK_EQ(kick.fds.size(), size_t{1});
  CHECK_EQ(kick.fds[0], 7);
}

TEST("vhost-user: a reply header must answer the request, carry the reply bit and a small payload") {
  std::string why;
  uint32_t size = 99;
  auto good = reply(1, kVersion | kFlagReply, nullptr, 8);
  CHECK(check_reply_header(good.data(), Request::GetFeatures, &size, &why));
  CHECK_EQ(size, uint32_t{8});
  auto other = reply(11, kVersion | kFlagReply, nullptr, 8);
  CHECK(!check_reply_header(other.data(), Request::GetFeatures, &size, &why));
  CHECK(why.find("request 11") != std::string::npos);
  auto not_reply = reply(1, kVersion, nullptr, 8);
  CHECK(!check_reply_header(not_reply.data(), Request::GetFeatures, &size, &why));
  auto huge = reply(1, kVersion | kFlagReply, nullptr, 0xFFFF'FFFF);
  CHECK(!check_reply_header(huge.data(), Request::GetFeatures, &size, &why));
  CHECK(why.find("too large") != std::string::npos);
}

TEST("vhost-user connection: GET_FEATURES round trip, fds travel with SET_MEM_TABLE") {
  FakeBackEnd back;
  Connection c(back.fds[0], 5000);
  const uint64_t features = 0x1'7000'0000ULL;
  std::thread t([&] { back.serve(reply(1, kVersion | kFlagReply, &features, 8)); });
  CHECK_EQ(c.request_u64(Request::GetFeatures), features);
  t.join();
  CHECK_EQ(u32_at(back.received, 0), uint32_t{1});
  int memfd = dup(0);
  std::thread t2([&] { back.serve({}); });
  c.send(encode_mem_table({{0, 4096, 0x1000, 0}, {8192, 4096, 0x3000, 4096}}, memfd));
  t2.join();
  close(memfd);
  CHECK_EQ(back.received_fds, 2);
}

TEST("vhost-user connection: a wrong reply, silence and a closed socket are errors, not hangs") {
  {
    FakeBackEnd back;
    Connection c(back.fds[0], 5000);
    const uint32_t state[2] = {0, 7};
    std::thread t([&] { back.serve(reply(11, kVersion | kFlagReply, state, 8)); });
    CHECK_THROWS(c.get_vring_base(1), "another ring");
    t.join();
  }
  {
    FakeBackEnd back;
    Connection c(back.fds[0], 200);
    std::thread t([&] { back.serve({}); });
    CHECK_THROWS(c.request_u64(Request::GetFeatures), "did not answer");
    t.join();
  }
  {
    FakeBackEnd back;
    Connection c(back.fds[0], 5000);
    std::thread t([&] {
      back.serve({});
      shutdown(back.fds[1], SHUT_RDWR);
    });
    CHECK_THROWS(c.request_u64(Request::GetFeatures), "closed its socket");
    t.join();
  }
}
