// The addon's entry point: registers the host report function and the NativeMachine
// class. Only type conversion and forwarding happen in binding/.
#include <napi.h>

#include <cstring>
#include <memory>

#include "backend/hypervisor.h"
#include "binding/convert.h"
#include "binding/layout.h"
#include "binding/machine_binding.h"
#include "binding/network_convert.h"
#include "binding/promise_worker.h"
#include "devices/virtio/fs/virtiofsd_process.h"
#include "snapshot/crc32c.h"
#include "snapshot/memory_image.h"
#include "hypercalls/guest_files.h"
#include "loaders/kernel_format.h"

namespace vmrun::binding {

/** hostReport(devicePath?: string): what the host's hypervisor offers. */
static Napi::Value host_report(const Napi::CallbackInfo& info) {
  std::string path = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  try {
    return host_report_to(info.Env(), open_hypervisor(path)->report());
  } catch (const std::exception& e) {
    throw_js(info.Env(), e);
  }
}

/**
 * virtiofsdArguments(virtiofsd, hostDir): the command line vmrun starts virtiofsd with
 * for a read-write volume (its socket as fd 3), so a benchmark anchor runs the same.
 */
static Napi::Value virtiofsd_arguments_of(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) throw Napi::TypeError::New(info.Env(), "virtiofsdArguments(virtiofsd: string, hostDir: string)");
  virtio::fs::VolumeConfig c{"", info[1].As<Napi::String>().Utf8Value(), false, info[0].As<Napi::String>().Utf8Value()};
  auto args = virtio::fs::virtiofsd_arguments(c);
  auto out = Napi::Array::New(info.Env(), args.size());
  for (uint32_t i = 0; i < args.size(); i++) out.Set(i, Napi::String::New(info.Env(), args[i]));
  return out;
}

/** crc32c(bytes): CRC-32C of a buffer (the snapshot format's checksum). */
static Napi::Value crc32c_of(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "crc32c(bytes: Uint8Array)");
  auto b = info[0].As<Napi::Uint8Array>();
  return Napi::Number::New(info.Env(), crc32c(b.Data(), b.ByteLength()));
}

/**
 * buildRamImage(snapshotFd, snapshotName, dataOffset, dataLength, index, ramSize, tempPath, imagePath):
 * expands a snapshot's RAM chunks into a raw image; resolves when it is in place, with
 * true if this call built it (false: another builder had, see build_ram_image). The
 * fd must stay open until the promise settles.
 */
static Napi::Value build_ram_image_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 8 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber() || !info[3].IsNumber() ||
      !info[4].IsBuffer() || !info[5].IsNumber() || !info[6].IsString() || !info[7].IsString())
    throw Napi::TypeError::New(env, "buildRamImage(snapshotFd, snapshotName, dataOffset, dataLength, index, ramSize, tempPath, imagePath)");
  auto index = info[4].As<Napi::Buffer<uint8_t>>();
  if (index.Length() % sizeof(MemoryChunk) != 0) throw Napi::TypeError::New(env, "buildRamImage: the index length is not a whole number of chunks");
  std::vector<MemoryChunk> chunks(index.Length() / sizeof(MemoryChunk));
  std::memcpy(chunks.data(), index.Data(), index.Length());
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string snapshot = info[1].As<Napi::String>().Utf8Value();
  uint64_t data_offset = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
  uint64_t data_length = static_cast<uint64_t>(info[3].As<Napi::Number>().Int64Value());
  uint64_t ram_size = static_cast<uint64_t>(info[5].As<Napi::Number>().Int64Value());
  std::string temp = info[6].As<Napi::String>().Utf8Value();
  std::string image = info[7].As<Napi::String>().Utf8Value();
  auto built = std::make_shared<bool>(false);
  return PromiseWorker::run(
      env, [=] { *built = build_ram_image(fd, snapshot, data_offset, data_length, chunks, ram_size, temp, image); },
      [built](Napi::Env e) { return Napi::Boolean::New(e, *built); });
}

/** kernelFormat(bytes): "linux-bzimage" | "linux-elf" | "hermit" | "unknown", from the file's bytes. */
static Napi::Value kernel_format_of(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "kernelFormat(bytes: Uint8Array)");
  auto b = info[0].As<Napi::Uint8Array>();
  std::vector<uint8_t> bytes(b.Data(), b.Data() + b.ByteLength());
  return Napi::String::New(info.Env(), kernel_format_name(detect_kernel_format(bytes, nullptr)));
}

static Napi::Object init(Napi::Env env, Napi::Object exports) {
  exports.Set("hostReport", Napi::Function::New(env, host_report, "hostReport"));
  exports.Set("NativeMachine", MachineBinding::define(env));
  exports.Set("crc32c", Napi::Function::New(env, crc32c_of, "crc32c"));
  exports.Set("kernelFormat", Napi::Function::New(env, kernel_format_of, "kernelFormat"));
  exports.Set("virtiofsdArguments", Napi::Function::New(env, virtiofsd_arguments_of, "virtiofsdArguments"));
  exports.Set("buildRamImage", Napi::Function::New(env, build_ram_image_async, "buildRamImage"));
  Napi::Object temp_limits = Napi::Object::New(env);
  temp_limits.Set("files", Napi::Number::New(env, static_cast<double>(uhyve::kMaxTempFiles)));
  temp_limits.Set("fileBytes", Napi::Number::New(env, static_cast<double>(uhyve::kMaxTempFileBytes)));
  temp_limits.Set("totalBytes", Napi::Number::New(env, static_cast<double>(uhyve::kMaxTempBytes)));
  temp_limits.Set("snapshotBytes", Napi::Number::New(env, static_cast<double>(uhyve::GuestFilesState::kMaxSavedTempBytes)));
  exports.Set("hermitTempFileLimits", temp_limits);
  exports.Set("guestNetwork", guest_addresses_to(env));
  exports.Set("vsockLimits", vsock_limits_to(env));
  exports.Set("layout", layout_object(env));
  exports.Set("limits", limits_object(env));
  exports.Set("machine", machine_object(env));
  return exports;
}

NODE_API_MODULE(vmrun_native, init)

}  // namespace vmrun::binding
