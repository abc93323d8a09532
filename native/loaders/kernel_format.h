// Which kind of kernel a file is, decided from its bytes, never from its name.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vmrun {

/** LinuxArm64Image: an arm64 "Image" (loaders/linux/arm64_image.h), for the aarch64 backend. */
enum class KernelFormat { LinuxBzImage, LinuxElf, HermitElf, LinuxArm64Image, Unknown };

/** Detects the format; `why` gets a reason when the answer is Unknown. */
KernelFormat detect_kernel_format(const std::vector<uint8_t>& file, std::string* why);

const char* kernel_format_name(KernelFormat f);

}  // namespace vmrun
