#!/usr/bin/env bash
# Debian's chromium for the browser test of examples/web-demo (test/src/web-demo-browser.test.ts).
# Idempotent: does nothing when /usr/bin/chromium is already installed.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
chromium --version
