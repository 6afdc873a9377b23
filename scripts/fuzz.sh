#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (default 5s).
# Go fuzzes one target per invocation, so targets are found and run in turn.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
time="${FUZZTIME:-5s}"

for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func \(Fuzz[A-Za-z0-9_]*\)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}' | sort -u); do
    echo "fuzz $pkg $target ($time)"
    go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$time" >/tmp/kaginashi-fuzz.log 2>&1 || {
      cat /tmp/kaginashi-fuzz.log
      echo "fuzz: $target failed; the failing input is saved under $dir/testdata/fuzz/$target" >&2
      exit 1
    }
  done
done
