# Cross-compiling the addon for arm64 Linux on an x86 host (scripts/build-arm64-addon.sh):
# Debian's aarch64-linux-gnu toolchain (g++-aarch64-linux-gnu), and the arm64 libraries
# the addon links (libzstd, libslirp) from the sysroot VMRUN_ARM64_SYSROOT, Debian's
# arm64 packages extracted there (test/harness/arm64-userland.js).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# try_compile re-reads this file in its own project: pass the sysroot on.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES VMRUN_ARM64_SYSROOT)
set(CMAKE_FIND_ROOT_PATH ${VMRUN_ARM64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
