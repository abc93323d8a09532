// Address decoding: which device an access reaches, at which offset, and which
// accesses no device claims.
#include <memory>

#include "check.h"
#include "devices/bus.h"

using namespace vmrun;

namespace {

struct Recorder : Device {
  std::string id;
  uint64_t last_offset = ~0ULL;
  uint32_t last_size = 0;
  int accesses = 0;
  explicit Recorder(std::string n) : id(std::move(n)) {}
  std::string name() const override { return id; }
  void read(uint64_t offset, uint8_t* data, uint32_t size) override {
    last_offset = offset, last_size = size, accesses++;
    for (uint32_t i = 0; i < size; i++) data[i] = static_cast<uint8_t>(offset + i);
  }
  void write(uint64_t offset, const uint8_t*, uint32_t size) override { last_offset = offset, last_size = size, accesses++; }
};

}  // namespace

TEST("bus: an access reaches the device that owns it, at its offset from the base") {
  Bus bus;
  auto a = std::make_shared<Recorder>("a"), b = std::make_shared<Recorder>("b");
  bus.add(0x3F8, 8, a);
  bus.add(0x60, 5, b);
  uint8_t data[4] = {};
  CHECK(bus.read(0x3FD, data, 1));
  CHECK_EQ(a->last_offset, 5u);
  CHECK_EQ(data[0], 5);
  CHECK(bus.write(0x64, data, 1));
  CHECK_EQ(b->last_offset, 4u);
  CHECK_EQ(a->accesses, 1);
}

TEST("bus: addresses outside every range, and accesses that straddle a range's end, are unclaimed") {
  Bus bus;
  auto a = std::make_shared<Recorder>("a");
  bus.add(0x100, 0x10, a);
  uint8_t data[8] = {};
  CHECK(!bus.read(0xFF, data, 1));
  CHECK(!bus.read(0x110, data, 1));
  CHECK(!bus.read(0x10E, data, 4));    // two bytes inside, two past the end
  CHECK(!bus.read(0xFFFFFFFFFFFFFFFFULL, data, 8));
  CHECK(bus.read(0x10C, data, 4));     // the last four bytes exactly
  CHECK_EQ(a->accesses, 1);
}

TEST("bus: overlapping ranges are refused; devices() lists each device once, by address") {
  Bus bus;
  auto a = std::make_shared<Recorder>("a"), b = std::make_shared<Recorder>("b");
  bus.add(0x20, 2, a);
  bus.add(0xA0, 2, a);  // one device, two ranges (like the PIC pair)
  bus.add(0x10, 4, b);
  CHECK_THROWS(bus.add(0x21, 4, b), "overlaps a");
  CHECK_THROWS(bus.add(0x0, 0x11, b), "overlaps b");
  auto devices = bus.devices();
  CHECK_EQ(devices.size(), 2u);
  CHECK_EQ(devices[0]->name(), std::string("b"));
  CHECK_EQ(devices[1]->name(), std::string("a"));
}
