#!/bin/sh
# Runs the end-to-end suite (test/e2e, vitest.e2e.config.ts) where real guests run:
# directly when this host's KVM runs guests natively, otherwise inside one nested-KVM
# L1 (test/harness/nested-kvm) for the whole suite. Arguments go to vitest, e.g.
#   scripts/e2e.sh test/e2e/harness.test.ts
# VMRUN_E2E_HARNESS_OPTIONS passes options to the harness, e.g. "--memory 6G --cpus 2".
set -eu
cd -- "$(dirname -- "$0")/.."

# The local vitest binary directly: npx's own start costs seconds under TCG.
vitest=node_modules/.bin/vitest
if [ ! -x "$vitest" ]; then
  echo "e2e: $vitest is missing; run npm install first" >&2
  exit 125
fi

# shellcheck source=../test/e2e/setup/prepare-on-host.sh
. test/e2e/setup/prepare-on-host.sh
if node test/harness/native-guests.js; then
  exec "$vitest" run -c vitest.e2e.config.ts "$@"
fi
# shellcheck disable=SC2086 # the options are meant to split into words
# A bound on the whole suite, so a guest that wedges L1's kernel (seen once: a
# real-mode guest left a CPU in a soft lockup) cannot eat CI's time: exit 124.
exec test/harness/nested-kvm ${VMRUN_E2E_HARNESS_OPTIONS:---timeout 2400} -- "$vitest" run -c vitest.e2e.config.ts "$@"
