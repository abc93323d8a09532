#include "binding/layout.h"

#include <cstddef>

#include "snapshot/memory_image.h"
#include "vmm/builder.h"
#include "vmm/platform.h"

namespace vmrun::binding {

static Napi::Number number(Napi::Env env, uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }

Napi::Object layout_object(Napi::Env env) {
  Napi::Object entry = Napi::Object::New(env);
  entry.Set("bytes", number(env, sizeof(MemoryChunk)));
  entry.Set("ramOffset", number(env, offsetof(MemoryChunk, ram_offset)));
  entry.Set("dataOffset", number(env, offsetof(MemoryChunk, data_offset)));
  entry.Set("compressedSize", number(env, offsetof(MemoryChunk, compressed_size)));
  entry.Set("pageCount", number(env, offsetof(MemoryChunk, page_count)));
  entry.Set("crc", number(env, offsetof(MemoryChunk, crc)));
  entry.Set("bitmap", number(env, offsetof(MemoryChunk, bitmap)));
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("memoryIndexEntry", entry);
  layout.Set("memoryChunkBytes", number(env, kChunkBytes));
  layout.Set("pageBytes", number(env, kPageSize));
  return layout;
}

Napi::Object limits_object(Napi::Env env) {
  Napi::Object limits = Napi::Object::New(env);
  limits.Set("minMemoryBytes", number(env, kMinMemorySize));
  limits.Set("maxMemoryBytes", number(env, kMaxMemorySize));
  limits.Set("maxCpus", number(env, static_cast<uint64_t>(platform::max_cpus())));
  // Every virtio device (vsock, network, each disk and volume) takes one MMIO slot.
  limits.Set("virtioDevices", number(env, platform::virtio_slot_count()));
  return limits;
}

Napi::Object machine_object(Napi::Env env) {
  Napi::Object machine = Napi::Object::New(env);
  machine.Set("type", Napi::String::New(env, platform::machine_type()));
  return machine;
}

}  // namespace vmrun::binding
