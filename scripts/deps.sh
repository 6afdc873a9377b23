#!/usr/bin/env bash
# Installs what a target needs on a Debian-like machine, idempotently.
# Usage: scripts/deps.sh build|test|run|browser
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

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Modules, once: later builds and tests run offline from the module cache.
go mod download

# browser_deps: the web console's build tools (web/) and browser tests
# (test/browser, run by test/e2e/browser): Debian's chromium, driven by
# playwright-core; never a browser downloaded by Playwright. npm ci runs
# only when a lockfile is newer than what is installed.
browser_deps() {
  local pkgs=()
  command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
  command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
  command -v npm >/dev/null 2>&1 || pkgs+=(npm)
  # A Japanese font (3.5 MB), so the terminal's UTF-8 test and the
  # screenshots show 日本語 rather than empty boxes.
  dpkg -s fonts-ipafont-gothic >/dev/null 2>&1 || pkgs+=(fonts-ipafont-gothic)
  if [ ${#pkgs[@]} -gt 0 ]; then
    echo "deps: installing ${pkgs[*]}" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    echo "deps: Node.js $(node --version) is too old for playwright-core; install Node.js 20 or newer" >&2
    exit 1
  fi
  local d
  for d in web test/browser; do
    if [ ! -f "$d/node_modules/.package-lock.json" ] || [ "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]; then
      echo "deps: npm ci in $d" >&2
      (cd "$d" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
  done
}

case "${1:-build}" in
  build) ;;
  test)
    # The real parts the tests start themselves: PostgreSQL (the store's
    # conformance suite runs against a private server) and OpenSSH (sshd
    # configuration, logins and tunnels to a private sshd). Later: chromium.
    need_pkgs=()
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_pkgs+=(postgresql)
    [ -x /usr/sbin/sshd ] || need_pkgs+=(openssh-server)
    command -v ssh >/dev/null 2>&1 || need_pkgs+=(openssh-client)
    # scp, sftp, rsync and git through the tunnel (test/e2e/tunnel).
    command -v rsync >/dev/null 2>&1 || need_pkgs+=(rsync)
    command -v git >/dev/null 2>&1 || need_pkgs+=(git)
    if [ ${#need_pkgs[@]} -gt 0 ]; then
      echo "deps: installing ${need_pkgs[*]}" >&2
      as_root apt-get update -qq
      DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
      # Debian starts system services on install; the tests run their own
      # sshd and PostgreSQL, and leave the machine's alone.
      # Only the services of packages installed just now are stopped:
      # a machine's own running sshd is never touched.
      for pkg in "${need_pkgs[@]}"; do
        case "$pkg" in
          postgresql) svc=postgresql ;;
          openssh-server) svc=ssh ;;
          *) continue ;;
        esac
        as_root systemctl disable --now "$svc" >/dev/null 2>&1 || as_root service "$svc" stop >/dev/null 2>&1 || true
      done
    fi
    browser_deps
    ;;
  run)
    # make run (kaginashi dev) starts a private OpenSSH sshd on a loopback
    # port and logs in with ssh. The machine's own sshd is left alone: a
    # freshly installed one is stopped and disabled, as for the tests.
    need_pkgs=()
    [ -x /usr/sbin/sshd ] || need_pkgs+=(openssh-server)
    command -v ssh >/dev/null 2>&1 || need_pkgs+=(openssh-client)
    if [ ${#need_pkgs[@]} -gt 0 ]; then
      echo "deps: installing ${need_pkgs[*]}" >&2
      as_root apt-get update -qq
      DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
      if [[ " ${need_pkgs[*]} " == *" openssh-server "* ]]; then
        as_root systemctl disable --now ssh >/dev/null 2>&1 || as_root service ssh stop >/dev/null 2>&1 || true
      fi
    fi
    ;;
  browser) browser_deps ;;
  *) echo "deps: unknown target $1" >&2; exit 2 ;;
esac
