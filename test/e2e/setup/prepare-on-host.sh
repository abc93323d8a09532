# Sourced by scripts/e2e.sh on the host, before the suite enters the nested-KVM L1:
# builds what the e2e tests need and what would be far slower (or break) to build
# inside L1, where the CPU is emulated and file locks do not exclude the host.
# Results land in caches the tests find by themselves, or in variables exported here
# (the harness passes the environment into L1).
# Add a step here when an e2e test needs a new slow-to-build artifact.

if [ -x guest/kernel/build.sh ] && [ -z "${VMRUN_GUEST_KERNEL:-}" ]; then
  echo "e2e: building (or finding cached) the guest kernel on the host: guest/kernel/build.sh" >&2
  kernel_paths=$(guest/kernel/build.sh) || { echo "e2e: guest/kernel/build.sh failed" >&2; exit 125; }
  VMRUN_GUEST_KERNEL=$(printf '%s\n' "$kernel_paths" | sed -n 's/^bzImage: //p')
  export VMRUN_GUEST_KERNEL
fi
if [ -f guest/init/Makefile ]; then
  make -s -C guest/init || { echo "e2e: make -C guest/init failed" >&2; exit 125; }
fi
