#!/usr/bin/env bash
# Runs the Node suites of agentbus-serve: the real AG-UI and AI SDK clients and the
# dashboard in headless Chromium, against the `agentbus` binary.
#
# Needs: node 20 + npm (the npm registry), Debian's chromium at /usr/bin/chromium
# (or CHROMIUM_PATH). Uses $AGENTBUS_BIN, else builds target/debug/agentbus.
# Screenshots: crates/agentbus-serve/js/test-output/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
if [[ -z "${AGENTBUS_BIN:-}" ]]; then
  (cd "$root" && cargo build -p agentbus-cli --quiet)
  export AGENTBUS_BIN="$root/target/debug/agentbus"
fi
cd "$here"
npm ci --no-audit --no-fund --loglevel=error
exec node --test --test-concurrency=1 --test-timeout=60000 test/*.test.mjs
