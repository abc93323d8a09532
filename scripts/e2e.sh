#!/bin/sh
# Runs the end-to-end suite (test/e2e, vitest.e2e.config.ts) where real guests run:
# directly when this host's KVM runs guests natively, otherwise each test file in its
# own nested-KVM L1 (test/harness/nested-kvm, through test/e2e/setup/run-files-in-l1.js):
# a stalled L1 is reported by the harness's watchdog and costs that file one re-run,
# printed and counted. Arguments go to vitest (file filters pick files), e.g.
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
exec node test/e2e/setup/run-files-in-l1.js "$@"
