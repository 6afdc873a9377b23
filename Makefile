# kaginashi — the README's two commands are `make run` and `make test`.
# Both install what they need themselves and can be run again safely.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/kaginashi/kaginashi/internal/cli.Version=$(VERSION)

.PHONY: all build run demo test deps fuzz bench lint clean webui

all: build

# The agent is static (no cgo): one file to copy to any Linux host. Next to
# it, kaginashi-authorized-keys: the AuthorizedKeysCommand alone, which sshd
# starts on every login, so it links as little as possible to load fast
# (setup-sshd picks it when both carry the same version).
build:
	@scripts/deps.sh build
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/kaginashi ./cmd/kaginashi
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X github.com/kaginashi/kaginashi/internal/agent.Version=$(VERSION)' -o bin/kaginashi-agent ./cmd/kaginashi-agent
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X github.com/kaginashi/kaginashi/internal/authkeys.Version=$(VERSION)' -o bin/kaginashi-authorized-keys ./cmd/kaginashi-authorized-keys

# The main job on the embedded default: kaginashi dev — the server on
# SQLite, an enrolled agent, a private sshd on a loopback port and a console
# user, in .kaginashi-dev/. Ctrl-C stops it and undoes its changes.
# Flags: make run DEV_ARGS='--os-user alice --listen 127.0.0.1:9443'
DEV_ARGS ?=
run: build
	@scripts/deps.sh run
	@exec bin/kaginashi dev $(DEV_ARGS)

# The policy tools on the seed article's policy (validate, simulate, a
# least-privilege template); no server needed.
demo: build
	@scripts/demo.sh bin/kaginashi

# The whole test suite: gofmt, go vet, go test -race, and a short run of
# every fuzz target. .ci/run calls exactly this.
test:
	@scripts/deps.sh test
	@scripts/test.sh

# Longer fuzzing: make fuzz FUZZTIME=5m
FUZZTIME ?= 1m
fuzz:
	@FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# Benchmarks; writes docs/BENCHMARKS.md. A subset, keeping the other
# sections: make bench BENCH=policy,tunnel (policy, server, agent, tunnel).
# Needs root, OpenSSH and PostgreSQL, as make test does.
BENCH ?=
bench:
	@scripts/deps.sh test
	@BENCH='$(BENCH)' scripts/bench.sh

# The web console's bundle (web/src → internal/webui/dist, committed so that
# `go build` needs no Node.js); scripts/webui-check.sh checks it is current.
webui:
	@scripts/deps.sh browser
	cd web && node build.mjs

clean:
	rm -rf bin
