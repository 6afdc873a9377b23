package policy

// The evaluation benchmark of the issue "Fast: compile once, evaluate many":
// a realistic set of 10 policies with 50 statements — the policies one
// kaginashi user might have — and a handful of requests against it. The
// fixture lives in testdata/bench so that the baseline comparison in
// bench/policy (a separate module) evaluates exactly the same documents.
// docs/BENCHMARKS.md records the figures and how to reproduce them.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// benchFixtureDir holds the benchmark fixture: policies/*.json (the ten
// policies) and requests.json (the requests and their expected decisions).
const benchFixtureDir = "testdata/bench"

// benchRequest is one request of the benchmark with the decision it must get.
type benchRequest struct {
	Name string
	Req  *Request
	Want Decision
}

// benchRequestFile is the shape of testdata/bench/requests.json.
type benchRequestFile struct {
	BaseContext map[string][]string `json:"base_context"`
	Requests    []struct {
		Name     string              `json:"name"`
		Action   string              `json:"action"`
		Resource string              `json:"resource"`
		Context  map[string][]string `json:"context"`
		Want     string              `json:"want"`
	} `json:"requests"`
}

// benchPolicyDocs returns the fixture's policy documents and their names
// (file names without .json), in file-name order.
func benchPolicyDocs(tb testing.TB) (names []string, docs [][]byte) {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(benchFixtureDir, "policies", "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		names = append(names, filepath.Base(f[:len(f)-len(".json")]))
		docs = append(docs, data)
	}
	if len(docs) == 0 {
		tb.Fatalf("no policies in %s/policies", benchFixtureDir)
	}
	return names, docs
}

// benchCompile parses, compiles and indexes the given documents.
func benchCompile(tb testing.TB, names []string, docs [][]byte) *Set {
	tb.Helper()
	compiled := make([]*Compiled, len(docs))
	for i, d := range docs {
		c, err := ParseAndCompile(names[i], d)
		if err != nil {
			tb.Fatalf("%s: %v", names[i], err)
		}
		compiled[i] = c
	}
	return NewSet(compiled...)
}

// benchRequests reads the fixture's requests. Each gets its own Context:
// the base context plus the request's own keys.
func benchRequests(tb testing.TB) []benchRequest {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(benchFixtureDir, "requests.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var f benchRequestFile
	if err := json.Unmarshal(data, &f); err != nil {
		tb.Fatalf("requests.json: %v", err)
	}
	var out []benchRequest
	for _, r := range f.Requests {
		ctx := NewContext()
		for k, v := range f.BaseContext {
			ctx.Set(k, v...)
		}
		for k, v := range r.Context {
			ctx.Set(k, v...)
		}
		var want Decision
		switch r.Want {
		case "allowed":
			want = Allowed
		case "explicitDeny":
			want = ExplicitDeny
		case "implicitDeny":
			want = ImplicitDeny
		default:
			tb.Fatalf("requests.json: %s: unknown decision %q", r.Name, r.Want)
		}
		out = append(out, benchRequest{
			Name: r.Name,
			Req:  &Request{Action: r.Action, Resource: r.Resource, Context: ctx},
			Want: want,
		})
	}
	return out
}

// benchFixture is the compiled 10-policy set and the benchmark requests.
// Other tests may reuse it as a realistic policy set.
func benchFixture(tb testing.TB) (*Set, []benchRequest) {
	tb.Helper()
	names, docs := benchPolicyDocs(tb)
	return benchCompile(tb, names, docs), benchRequests(tb)
}

func TestBenchFixture(t *testing.T) {
	names, docs := benchPolicyDocs(t)
	if len(docs) != 10 {
		t.Errorf("fixture has %d policies, want 10", len(docs))
	}
	set := benchCompile(t, names, docs)
	if set.Len() != 50 {
		t.Errorf("fixture has %d statements, want 50", set.Len())
	}
	for _, r := range benchRequests(t) {
		res := set.Decide(r.Req)
		if res.Decision != r.Want {
			t.Errorf("%s: decision %v, want %v (matched %v, missing %v)", r.Name, res.Decision, r.Want, res.Matched, res.Missing)
		}
	}
}

// TestEvaluateDoesNotAllocate holds the hot path to zero allocations: with
// a reused Result, Evaluate must not allocate for any benchmark request.
func TestEvaluateDoesNotAllocate(t *testing.T) {
	set, reqs := benchFixture(t)
	for _, r := range reqs {
		var res Result
		// AllocsPerRun's warm-up run lets res grow its lists first.
		allocs := testing.AllocsPerRun(200, func() { set.Evaluate(r.Req, &res) })
		if allocs != 0 {
			t.Errorf("%s: Evaluate allocates %.1f times per call, want 0", r.Name, allocs)
		}
		if res.Decision != r.Want {
			t.Errorf("%s: decision %v, want %v", r.Name, res.Decision, r.Want)
		}
	}
}

// BenchmarkEvaluate measures one decision against the 10-policy set for each
// request, and a round-robin mix of them all.
func BenchmarkEvaluate(b *testing.B) {
	set, reqs := benchFixture(b)
	for _, r := range reqs {
		b.Run(r.Name, func(b *testing.B) {
			var res Result
			set.Evaluate(r.Req, &res)
			if res.Decision != r.Want {
				b.Fatalf("decision %v, want %v", res.Decision, r.Want)
			}
			b.ReportAllocs()
			for b.Loop() {
				set.Evaluate(r.Req, &res)
			}
			reportDecisionRate(b)
		})
	}
	b.Run("mix", func(b *testing.B) {
		var res Result
		for _, r := range reqs {
			set.Evaluate(r.Req, &res)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			set.Evaluate(reqs[i].Req, &res)
			if i++; i == len(reqs) {
				i = 0
			}
		}
		reportDecisionRate(b)
	})
}

// reportDecisionRate adds decisions/s (one decision per iteration).
func reportDecisionRate(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "decisions/s")
	}
}

// BenchmarkCompile measures parsing, compiling and indexing the 10 policies.
func BenchmarkCompile(b *testing.B) {
	names, docs := benchPolicyDocs(b)
	b.ReportAllocs()
	for b.Loop() {
		compiled := make([]*Compiled, len(docs))
		for i, d := range docs {
			c, err := ParseAndCompile(names[i], d)
			if err != nil {
				b.Fatal(err)
			}
			compiled[i] = c
		}
		if NewSet(compiled...).Len() != 50 {
			b.Fatal("wrong statement count")
		}
	}
}
