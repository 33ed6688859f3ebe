#!/usr/bin/env bash
# Creates (once) the Python virtualenv the `serve` tests use for the real Python clients:
# the `kubernetes` client and kopf, from PyPI, in target/py-venv. Prints the venv's python
# on success; on failure prints why on stderr and exits non-zero (the tests then SKIP).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${KUBE_CHAOS_PY_VENV:-target/py-venv}"
stamp="$venv/.kube-chaos-ready"
if [ ! -f "$stamp" ]; then
  command -v python3 >/dev/null 2>&1 || { echo "python3 is not installed" >&2; exit 1; }
  python3 -m venv "$venv" >&2 || { echo "python3 -m venv failed (install python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes>=31" "kopf>=1.37" >&2 \
    || { echo "pip install kubernetes kopf failed (no PyPI access?)" >&2; exit 1; }
  touch "$stamp"
fi
echo "$(pwd)/$venv/bin/python"
