#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run → make test → here).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

step() { printf '\n== %s\n' "$*"; }

step gofmt
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bench/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step go vet
go vet ./...

step "go test -race"
go test -race -count=1 ./...

step "fuzz targets (${FUZZ_SMOKE_TIME:-5s} each)"
FUZZTIME="${FUZZ_SMOKE_TIME:-5s}" scripts/fuzz.sh

step "all tests passed"
