#!/bin/sh
# Cross-builds test/arm64's driver, vmrun-arm64-boot (the KVM arm64 backend, VcpuThread,
# the MMIO bus, the 16550, the arm64 loader and device tree), as a static arm64
# binary for the aarch64 harness's L1: build/arm64/vmrun-arm64-boot. Needs
# g++-aarch64-linux-gnu (docs/testing.md: the aarch64 harness). Not part of npm run
# build (the tests that use it build it); vmrun itself runs on arm64 through the addon that
# scripts/build-arm64-addon.sh cross-builds.
set -eu
cd -- "$(dirname -- "$0")/.."
cxx=${VMRUN_ARM64_CXX:-aarch64-linux-gnu-g++}
command -v "$cxx" >/dev/null 2>&1 || { echo "build-arm64-driver: $cxx not found; install it with: apt-get install -y g++-aarch64-linux-gnu" >&2; exit 125; }
out=build/arm64
mkdir -p "$out"
n=native
# Up to date: nothing it is built from (conservatively: anything under native/) is newer.
if [ -f "$out/vmrun-arm64-boot" ] && [ -z "$(find "$n" test/arm64/boot_driver.cc "$0" -newer "$out/vmrun-arm64-boot" -type f | head -n 1)" ]; then
  exit 0
fi
sources="test/arm64/boot_driver.cc
  $n/common/error.cc $n/common/file.cc $n/common/fdt_writer.cc
  $n/memory/guest_memory.cc
  $n/devices/bus.cc $n/devices/console_output.cc
  $n/devices/legacy/uart_16550.cc $n/devices/legacy/uart_16550_state.cc $n/devices/legacy/exit_port.cc
  $n/vcpu/vcpu_thread.cc $n/arch/x86_64/page_walk.cc $n/arch/x86_64/shutdown_report.cc
  $n/arch/aarch64/device_tree.cc $n/arch/aarch64/interrupt_state.cc $n/loaders/linux/arm64_image.cc $n/snapshot/crc32c.cc
  $n/backend/kvm/kvm_run_area.cc $n/backend/kvm/kvm_vm_common.cc $n/backend/kvm/aarch64/arm64_hypervisor.cc $n/backend/kvm/aarch64/vcpu_state_codec.cc"
# One compiler call: the driver is small, and a build takes about 30 s on 2 cores.
# shellcheck disable=SC2086 # the source list is meant to split
"$cxx" -std=c++20 -O2 -Wall -Wextra -Wno-unused-parameter -fexceptions -I"$n" -static -pthread \
  -o "$out/vmrun-arm64-boot.tmp" $sources
mv "$out/vmrun-arm64-boot.tmp" "$out/vmrun-arm64-boot"
