#!/usr/bin/env bash
# `make run`: the main job of today's kaginashi — the policy tools — on the
# seed article's policy. Later the same command starts the whole system.
set -uo pipefail
cd "$(dirname "$0")/.."
k="${1:-bin/kaginashi}"

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; echo "(exit $?)"; }

echo "kaginashi $("$k" --version | awk '{print $NF}') — the policy tools on the seed article's policy (examples/seed-policy.json)"

# 1. The article's policy as published: its ARN still holds placeholders.
run "$k" policy validate examples/seed-policy.json

# 2. Filled in: valid, but it lets its holder into every instance, and its
#    OpenTunnel grant can never match (AWS authorizes OpenTunnel on
#    instance-connect-endpoint ARNs).
run "$k" policy validate examples/seed-policy-filled.json

# 3. What it allows, and what it does not.
run "$k" policy simulate --policy examples/seed-policy-filled.json \
  --action ec2-instance-connect:SendSSHPublicKey \
  --resource arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0123456789abcdef0 \
  --context ec2:osuser=ec2-user
run "$k" policy simulate --policy examples/seed-policy-filled.json \
  --action ec2-instance-connect:OpenTunnel \
  --resource arn:aws:ec2:ap-northeast-1:123456789012:instance-connect-endpoint/eice-0123456789abcdef0 \
  --context ec2-instance-connect:remotePort=22

# 4. The seed's policy done right: least privilege, and it validates clean.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say "$k policy template eic --region ap-northeast-1 --account-id 123456789012 --instance-id i-0123456789abcdef0 --os-user ec2-user > eic.json"
"$k" policy template eic --region ap-northeast-1 --account-id 123456789012 \
  --instance-id i-0123456789abcdef0 --os-user ec2-user | tee "$tmp/eic.json"
run "$k" policy validate "$tmp/eic.json"
run "$k" policy simulate --policy "$tmp/eic.json" \
  --action ec2-instance-connect:SendSSHPublicKey \
  --resource arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0123456789abcdef0 \
  --context ec2:osuser=root

printf '\nNext: kaginashi policy --help, and docs/POLICY.md for the policy guide.\n'
