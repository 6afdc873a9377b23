package benchpolicy

import (
	"encoding/json"
	"testing"

	"github.com/kaginashi/kaginashi/policy"
	minio "github.com/minio/pkg/v3/policy"
)

// engines holds the three evaluators of one run, built from one fixture.
type engines struct {
	fix    *Fixture
	full   *policy.Set // kaginashi, the fixture as written
	subset *policy.Set // kaginashi, the MinIO subset
	minio  minio.Policy
	rws    []Rewrite
}

func load(tb testing.TB) *engines {
	tb.Helper()
	fix, err := LoadFixture(FixtureDir)
	if err != nil {
		tb.Fatal(err)
	}
	e := &engines{fix: fix}
	if e.full, err = KaginashiSet(fix.Docs); err != nil {
		tb.Fatal(err)
	}
	sub, rws, err := MinIOSubset(fix.Docs, fix.Caller)
	if err != nil {
		tb.Fatal(err)
	}
	e.rws = rws
	if e.subset, err = KaginashiSet(sub); err != nil {
		tb.Fatal(err)
	}
	if e.minio, err = MinIOSet(sub); err != nil {
		tb.Fatal(err)
	}
	return e
}

// TestParity checks that the three evaluators agree with the fixture's
// expected decisions, so the benchmarks compare equal work. MinIO only says
// allowed or not: explicit and implicit deny are both "not allowed" there.
func TestParity(t *testing.T) {
	e := load(t)
	if len(e.fix.Docs) != 10 {
		t.Errorf("%d policies, want 10", len(e.fix.Docs))
	}
	if n := e.full.Len(); n != 50 {
		t.Errorf("kaginashi full set: %d statements, want 50", n)
	}
	if n := e.subset.Len(); n != 50 {
		t.Errorf("kaginashi subset: %d statements, want 50", n)
	}
	if n := len(e.minio.Statements); n != 50 {
		t.Errorf("MinIO subset: %d statements, want 50", n)
	}
	for _, rw := range e.rws {
		t.Logf("subset rewrite: %s", rw)
	}
	for _, r := range e.fix.Requests {
		kr := KaginashiRequest(r)
		if got := e.full.Decide(kr).Decision.String(); got != r.Want {
			t.Errorf("%s: kaginashi (full set): %s, want %s", r.Name, got, r.Want)
		}
		if got := e.subset.Decide(kr).Decision.String(); got != r.Want {
			t.Errorf("%s: kaginashi (subset): %s, want %s", r.Name, got, r.Want)
		}
		if got := e.minio.IsAllowed(MinIOArgs(r)); got != (r.Want == "allowed") {
			t.Errorf("%s: MinIO (subset): allowed=%v, want %s", r.Name, got, r.Want)
		}
	}
}

var sinkBool bool

// BenchmarkEvaluate runs every request against each evaluator:
//
//	kaginashi         the 10-policy fixture as written (the figure)
//	kaginashi_subset  the fixture rewritten to what MinIO understands
//	minio_subset      MinIO's engine on that same rewritten fixture
//
// "mix" cycles through all the requests.
func BenchmarkEvaluate(b *testing.B) {
	e := load(b)
	reqs := e.fix.Requests
	kreqs := make([]*policy.Request, len(reqs))
	margs := make([]minio.Args, len(reqs))
	for i, r := range reqs {
		kreqs[i] = KaginashiRequest(r)
		margs[i] = MinIOArgs(r)
	}
	kag := func(set *policy.Set, idx []int) func(*testing.B) {
		return func(b *testing.B) {
			var res policy.Result
			for _, i := range idx {
				set.Evaluate(kreqs[i], &res)
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				set.Evaluate(kreqs[idx[n]], &res)
				if n++; n == len(idx) {
					n = 0
				}
			}
			reportDecisionRate(b)
		}
	}
	min := func(idx []int) func(*testing.B) {
		return func(b *testing.B) {
			p := e.minio
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				sinkBool = p.IsAllowed(margs[idx[n]])
				if n++; n == len(idx) {
					n = 0
				}
			}
			reportDecisionRate(b)
		}
	}
	run := func(name string, idx []int) {
		b.Run(name, func(b *testing.B) {
			b.Run("kaginashi", kag(e.full, idx))
			b.Run("kaginashi_subset", kag(e.subset, idx))
			b.Run("minio_subset", min(idx))
		})
	}
	all := make([]int, len(reqs))
	for i, r := range reqs {
		all[i] = i
		run(r.Name, []int{i})
	}
	run("mix", all)
}

func reportDecisionRate(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "decisions/s")
	}
}

// BenchmarkCompile measures turning the ten documents into an evaluator:
// kaginashi's parse, compile and index, against a floor of encoding/json
// decoding the same documents into generic values (MinIO's own parser
// rejects EC2 and IAM ARNs, so it cannot serve as the baseline here).
func BenchmarkCompile(b *testing.B) {
	fix, err := LoadFixture(FixtureDir)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("kaginashi", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			set, err := KaginashiSet(fix.Docs)
			if err != nil || set.Len() != 50 {
				b.Fatal(err)
			}
		}
	})
	b.Run("json_unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, d := range fix.Docs {
				var v any
				if err := json.Unmarshal(d.JSON, &v); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
