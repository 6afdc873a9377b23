#!/usr/bin/env bash
# Checks that the committed console bundle (internal/webui/dist) is exactly
# what web/src builds to: type-checks the sources, runs their unit tests
# (web/test), rebuilds into a temp dir
# and compares. Fails with the differing files listed, and how to fix it.
# Needs Node.js and web/node_modules (scripts/deps.sh browser installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1; then
  echo "webui-check: Node.js is not installed (scripts/deps.sh browser installs it)" >&2
  exit 2
fi
if [ ! -x web/node_modules/.bin/esbuild ]; then
  echo "webui-check: web/node_modules is missing: run (cd web && npm ci), or scripts/deps.sh browser" >&2
  exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd web && node_modules/.bin/tsc --noEmit -p .)
(cd web && node --test --test-reporter=dot test/)
(cd web && node build.mjs --outdir "$tmp/dist" >/dev/null)
if ! diff -r "$tmp/dist" internal/webui/dist >"$tmp/diff" 2>&1; then
  echo "webui-check: internal/webui/dist does not match a fresh build of web/src:" >&2
  grep -E '^(Only in|diff|Binary)' "$tmp/diff" | sed "s#$tmp/dist#<fresh build>#" >&2 || head -20 "$tmp/diff" >&2
  echo "webui-check: run 'make webui' and commit internal/webui/dist" >&2
  exit 1
fi
echo "webui-check: internal/webui/dist matches web/src"
