#!/usr/bin/env bash
# Policy evaluation benchmark: kaginashi's engine against MinIO's IAM policy
# engine (the baseline), both in one `go test -bench` run on one core, and a
# markdown summary of the medians. See docs/BENCHMARKS.md.
#
#   bench/policy/run.sh                 # 5 runs of 1s per benchmark
#   COUNT=10 BENCHTIME=2s bench/policy/run.sh
#   RAW=/tmp/raw.txt bench/policy/run.sh   # keep the raw go test output
#
# The goal (issue "Fast: compile once, evaluate many"): at least 1,000,000
# decisions/s on one core with 0 allocs/op, on the 10-policy, 50-statement
# fixture in policy/testdata/bench.
set -euo pipefail
cd "$(dirname "$0")"

COUNT="${COUNT:-5}"
BENCHTIME="${BENCHTIME:-1s}"
RAW="${RAW:-$(mktemp)}"

echo "## Machine"
echo
echo "- nproc: $(nproc)"
echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "- $(go version)"
echo "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# The parity test checks that the three evaluators reach the fixture's
# decisions, so that the benchmarks compare equal work.
go test -count=1 -run '^TestParity$' . >/dev/null

GOMAXPROCS=1 go test -run '^$' -bench . -benchmem -cpu 1 -count "$COUNT" -benchtime "$BENCHTIME" . >"$RAW"

echo "## Command"
echo
echo '```'
echo "cd bench/policy && GOMAXPROCS=1 go test -run '^\$' -bench . -benchmem -cpu 1 -count $COUNT -benchtime $BENCHTIME ."
echo '```'
echo
echo "- load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "## Results (median of $COUNT runs)"
echo

awk -v count="$COUNT" '
function median(list,    n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) {
		t = a[i] + 0
		for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
		a[j + 1] = t
	}
	if (n % 2) return a[(n + 1) / 2] + 0
	return (a[n / 2] + a[n / 2 + 1]) / 2
}
function spread(list,    n, a, i, lo, hi) {
	n = split(list, a, " ")
	lo = hi = a[1] + 0
	for (i = 2; i <= n; i++) {
		if (a[i] + 0 < lo) lo = a[i] + 0
		if (a[i] + 0 > hi) hi = a[i] + 0
	}
	return sprintf("%.0f–%.0f", lo, hi)
}
function fmtns(x) { return x < 100 ? sprintf("%.1f", x) : sprintf("%.0f", x) }
function fmtrate(x,    s) {
	s = sprintf("%.0f", x)
	while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
	gsub(/,,/, ",", s)
	return s
}
/^BenchmarkCompile\// {
	name = $1
	sub(/-[0-9]+$/, "", name)
	split(name, p, "/")
	for (i = 2; i < NF; i++) {
		if ($(i + 1) == "ns/op") cns[p[2]] = cns[p[2]] " " $i
		if ($(i + 1) == "B/op") cb[p[2]] = cb[p[2]] " " $i
		if ($(i + 1) == "allocs/op") cal[p[2]] = cal[p[2]] " " $i
	}
	next
}
/^BenchmarkEvaluate\// {
	name = $1
	sub(/-[0-9]+$/, "", name)
	n = split(name, p, "/")
	if (n < 3) next
	req = p[2]; eng = p[3]
	if (!(req in seen)) { seen[req] = 1; order[++nreq] = req }
	for (i = 2; i < NF; i++) {
		if ($(i + 1) == "ns/op") ns[req, eng] = ns[req, eng] " " $i
		if ($(i + 1) == "decisions/s") rate[req, eng] = rate[req, eng] " " $i
		if ($(i + 1) == "allocs/op") al[req, eng] = al[req, eng] " " $i
	}
}
END {
	print "| request | kaginashi ns/op | min–max | kaginashi decisions/s | allocs/op | goal ≥1M/s, 0 allocs | kaginashi (subset) ns/op | MinIO (subset) ns/op | MinIO allocs/op | kaginashi speed-up vs MinIO, same subset | kaginashi full set vs MinIO subset |"
	print "|---|---:|---:|---:|---:|:---:|---:|---:|---:|---:|---:|"
	met = 0
	for (k = 1; k <= nreq; k++) {
		r = order[k]
		kn = median(ns[r, "kaginashi"]); kr = median(rate[r, "kaginashi"]); ka = median(al[r, "kaginashi"])
		sn = median(ns[r, "kaginashi_subset"])
		mn = median(ns[r, "minio_subset"]); ma = median(al[r, "minio_subset"])
		goal = (kr >= 1000000 && ka == 0) ? "yes" : "no"
		if (goal == "yes") met++
		printf "| %s | %s | %s | %s | %d | %s | %s | %s | %d | %.1f× | %.1f× |\n", r, fmtns(kn), spread(ns[r, "kaginashi"]), fmtrate(kr), ka, goal, fmtns(sn), fmtns(mn), ma, mn / sn, mn / kn
	}
	print ""
	printf "Goal met for %d of %d rows (\"mix\" cycles through all the requests).\n", met, nreq
	if (("kaginashi" in cns) && ("json_unmarshal" in cns)) {
		print ""
		print "| compile the 10 policies | ns/op | B/op | allocs/op | ratio to json_unmarshal |"
		print "|---|---:|---:|---:|---:|"
		base = median(cns["json_unmarshal"])
		printf "| kaginashi (parse + compile + NewSet) | %.0f | %.0f | %.0f | %.1f× |\n", median(cns["kaginashi"]), median(cb["kaginashi"]), median(cal["kaginashi"]), median(cns["kaginashi"]) / base
		printf "| encoding/json into any (floor) | %.0f | %.0f | %.0f | 1.0× |\n", base, median(cb["json_unmarshal"]), median(cal["json_unmarshal"])
	}
}
' "$RAW"
echo
echo "Raw output: $RAW"
