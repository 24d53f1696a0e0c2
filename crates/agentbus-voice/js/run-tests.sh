#!/usr/bin/env bash
# Runs the browser edge's suite: `agentbus voice --listen` and its page in headless
# Chromium with a fake microphone (playwright-core drives Debian's chromium).
#
# Needs: node 20 + npm (the npm registry), Debian's chromium at /usr/bin/chromium (or
# CHROMIUM_PATH), espeak-ng, and the voice and chat models (`agentbus model pull`,
# `... silero-vad`, `... whisper-tiny.en`). Uses $AGENTBUS_BIN, else builds
# target/debug/agentbus. The page's screenshot: crates/agentbus-voice/js/test-output/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
if [[ -z "${AGENTBUS_BIN:-}" ]]; then
  (cd "$root" && cargo build -p agentbus-cli --quiet)
  export AGENTBUS_BIN="$root/target/debug/agentbus"
fi
cd "$here"
npm ci --no-audit --no-fund --loglevel=error
exec node --test --test-concurrency=1 test/*.test.mjs
