# Sourced by scripts/e2e.sh on the host, before the suite enters the nested-KVM L1:
# builds what the e2e tests need and what would be far slower (or break) to build
# inside L1, where the CPU is emulated and file locks do not exclude the host.
# Results land in caches the tests find by themselves, or in variables exported here
# (the harness passes the environment into L1).
# Add a step here when an e2e test needs a new slow-to-build artifact.

# The suite runs the CLI from dist/ and the addon from build/native, while its
# in-process tests import src/: a source edited after its last build would be tested
# half as it was then. Refuse that mix, naming the file and the build to run. (Each
# build touches its stamp when it ends; an output's own time would not do, since an
# incremental build leaves unchanged outputs as they were.)
refuse_stale_build() { # STAMP SOURCE-DIR BUILD-COMMAND...
  stamp=$1 sources=$2
  shift 2
  if [ ! -f "$stamp" ]; then
    echo "e2e: $stamp is missing (never built, or built before stamps): run $*" >&2
    exit 125
  fi
  newer=$(find "$sources" -type f -newer "$stamp" \( -name '*.ts' -o -name '*.cc' -o -name '*.h' -o -name CMakeLists.txt \) | head -n 1)
  if [ -n "$newer" ]; then
    echo "e2e: $newer changed after the last build ($stamp): run $*" >&2
    exit 125
  fi
}
refuse_stale_build dist/built.stamp src npm run build:ts
refuse_stale_build build/native/built.stamp native npm run build:native

if [ -x guest/kernel/build.sh ] && [ -z "${VMRUN_GUEST_KERNEL:-}" ]; then
  echo "e2e: building (or finding cached) the guest kernel on the host: guest/kernel/build.sh" >&2
  kernel_paths=$(guest/kernel/build.sh) || { echo "e2e: guest/kernel/build.sh failed" >&2; exit 125; }
  VMRUN_GUEST_KERNEL=$(printf '%s\n' "$kernel_paths" | sed -n 's/^bzImage: //p')
  export VMRUN_GUEST_KERNEL
fi
if [ -f guest/init/Makefile ]; then
  make -s -C guest/init || { echo "e2e: make -C guest/init failed" >&2; exit 125; }
fi
