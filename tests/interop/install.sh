#!/usr/bin/env bash
# Installs the real peers and servers the tests run against, from Debian:
# python3-websockets (for /usr/bin/python3), chromium, and redis-server (the
# broadcast bus's tests start their own on a free port). Idempotent: does
# nothing but print versions when all are already there. Needs root (or
# sudo) only when something is missing.
#
#   tests/interop/install.sh
set -euo pipefail

PYTHON=/usr/bin/python3
missing=()
if ! "$PYTHON" -c "import websockets" >/dev/null 2>&1; then
  missing+=(python3-websockets)
fi
if ! command -v chromium >/dev/null 2>&1; then
  missing+=(chromium)
fi
if ! command -v redis-server >/dev/null 2>&1; then
  missing+=(redis-server)
fi

if ((${#missing[@]} > 0)); then
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
  echo "installing: ${missing[*]}"
  "${sudo[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y \
    --no-install-recommends "${missing[@]}"
fi

echo "python: $("$PYTHON" --version 2>&1)"
echo "python3-websockets: $("$PYTHON" -c 'import websockets; print(websockets.__version__)')"
echo "chromium: $(chromium --version 2>/dev/null || echo 'no version (chromium --version failed)')"
echo "redis-server: $(redis-server --version 2>/dev/null || echo 'no version (redis-server --version failed)')"
