# The addon sources that need neither Node nor /dev/kvm: what the native unit tests
# (test/native) and the fuzz targets (fuzz/native) link. Set VMRUN_NATIVE first.
file(GLOB_RECURSE VMRUN_PORTABLE_SOURCES CONFIGURE_DEPENDS
  ${VMRUN_NATIVE}/common/*.cc
  ${VMRUN_NATIVE}/devices/*.cc
  ${VMRUN_NATIVE}/loaders/*.cc
  ${VMRUN_NATIVE}/memory/*.cc
  ${VMRUN_NATIVE}/arch/x86_64/*.cc
  ${VMRUN_NATIVE}/arch/aarch64/*.cc
  ${VMRUN_NATIVE}/hypercalls/*.cc
  ${VMRUN_NATIVE}/snapshot/*.cc)
list(APPEND VMRUN_PORTABLE_SOURCES ${VMRUN_NATIVE}/backend/kvm/x86_64/vcpu_state_codec.cc)
# The arm64 vCPU state codec is portable too (it spells KVM's arm64 register ids out).
list(APPEND VMRUN_PORTABLE_SOURCES ${VMRUN_NATIVE}/backend/kvm/aarch64/vcpu_state_codec.cc)
# Hermit's boot plan builds a whole machine (vmm/); the fuzz targets call its parts.
list(FILTER VMRUN_PORTABLE_SOURCES EXCLUDE REGEX ".*/loaders/hermit/hermit_boot\\.cc$")
# Devices arriving in their own folders bring their own tests.
list(FILTER VMRUN_PORTABLE_SOURCES EXCLUDE REGEX ".*/devices/virtio/.*")
# Except the split virtqueue, the virtio-mmio transport and virtio-net's receive path,
# which the unit tests and the virtio_net_rx fuzz target drive (no libslirp, no KVM).
list(APPEND VMRUN_PORTABLE_SOURCES ${VMRUN_NATIVE}/devices/virtio/virtqueue.cc ${VMRUN_NATIVE}/devices/virtio/mmio_transport.cc
  ${VMRUN_NATIVE}/devices/virtio/net/rx_frames.cc)
# The fuzz target bodies, replayed on their corpora by the unit tests.
file(GLOB VMRUN_FUZZ_TARGETS CONFIGURE_DEPENDS ${VMRUN_NATIVE}/../fuzz/native/*.cc)
# The gdb stub's packet framing (its socket code needs a machine; the framing does not).
list(APPEND VMRUN_PORTABLE_SOURCES ${VMRUN_NATIVE}/debug/gdb_packet.cc)
