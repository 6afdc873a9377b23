#!/usr/bin/env bash
# Installs what a target needs on a Debian-like machine, idempotently.
# Usage: scripts/deps.sh build|test
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="/usr/local/go/bin:$PATH"
if ! command -v go >/dev/null 2>&1; then
  echo "deps: Go is not installed; install Go 1.26 or newer (https://go.dev/doc/install) and run again" >&2
  exit 1
fi
need=$(sed -n 's/^go \([0-9.]*\).*/\1/p' go.mod)
have=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then
  echo "deps: go.mod needs Go $need, this machine has $have" >&2
  exit 1
fi

# Modules, once: later builds and tests run offline from the module cache.
go mod download

case "${1:-build}" in
  build) ;;
  test)
    # Later issues add the real parts the tests start themselves here
    # (openssh-server, postgresql, chromium); the policy tests need only Go.
    ;;
  *) echo "deps: unknown target $1" >&2; exit 2 ;;
esac
