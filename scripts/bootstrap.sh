#!/usr/bin/env bash
# Create .venv and install qunyun with its dev tools; on a bare Debian machine, add what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
  else
    echo "missing: $* (install them, then run again)" >&2
    exit 1
  fi
}
command -v "$PY" >/dev/null || apt_install python3 python3-venv python3-pip
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "qunyun needs Python >= 3.11 (found $($PY --version))" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv 2>/dev/null || { apt_install python3-venv; rm -rf .venv; "$PY" -m venv .venv; }
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || apt_install redis-server
touch .venv/.installed
