#!/usr/bin/env bash
# The whole test suite: installs what the tests need on a fresh machine, then runs them.
# This is the README's test command and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the suite needs, as "command:package" pairs; installed only when missing.
NEEDED=("chromium:chromium")
missing=()
for pair in "${NEEDED[@]}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

cargo test --locked --all-targets "$@"
