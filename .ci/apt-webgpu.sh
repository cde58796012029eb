#!/usr/bin/env bash
# A WebGPU device for @segkit/backend-webgpu's tests: Mesa's lavapipe (a CPU Vulkan driver). Debian 12's
# Mesa 22.3 is rejected by Dawn, so Mesa 25 comes from bookworm-backports. Idempotent: skips what is there.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then echo "apt-webgpu: needs root (apt-get)" >&2; exit 1; fi
if dpkg-query -W -f='${Status}\n' libvulkan1 2>/dev/null | grep -q 'ok installed' &&
  dpkg-query -W -f='${Status} ${Version}\n' mesa-vulkan-drivers 2>/dev/null | grep -q 'ok installed 2[5-9]\.'; then
  exit 0
fi
if ! grep -rqsE '^(Suites:|deb ).*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  # The mirror is the one this machine already uses: the first stanza of debian.sources, suite swapped.
  awk 'BEGIN { RS = ""; ORS = "\n" } NR == 1 { sub(/Suites:[^\n]*/, "Suites: bookworm-backports"); print; exit }' \
    /etc/apt/sources.list.d/debian.sources > /etc/apt/sources.list.d/segkit-backports.sources
fi
apt-get -o DPkg::Lock::Timeout=1800 update -qq
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=1800 install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
