// Package benchpolicy compares kaginashi's policy engine with a baseline,
// MinIO's IAM policy engine (github.com/minio/pkg/v3/policy), on the same
// policy set in the same `go test -bench` run, so that kaginashi's figures
// can be given as ratios to a baseline measured on the same machine.
//
// It is a module of its own so that the main module gains no dependency.
// The fixture is the main module's policy/testdata/bench: ten policies with
// fifty statements and the requests of the benchmark. run.sh runs it and
// prints a summary table; docs/BENCHMARKS.md records the results.
package benchpolicy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FixtureDir is the fixture's place relative to this package's directory,
// which is where `go test` runs the benchmarks.
const FixtureDir = "../../policy/testdata/bench"

// Doc is one policy document.
type Doc struct {
	Name string // file name without .json
	JSON []byte
}

// Request is one benchmark request.
type Request struct {
	Name     string
	Action   string
	Resource string
	// Context is the caller's base context with the request's own keys.
	Context map[string][]string
	// Want is the decision: "allowed", "explicitDeny" or "implicitDeny".
	Want string
}

// Fixture is the benchmark's policy set and requests.
type Fixture struct {
	Docs     []Doc
	Requests []Request
	// Caller is the base context: what is known about the caller whatever
	// the request (user name, principal tags, source IP, MFA...).
	Caller map[string][]string
}

// LoadFixture reads dir/policies/*.json and dir/requests.json.
func LoadFixture(dir string) (*Fixture, error) {
	files, err := filepath.Glob(filepath.Join(dir, "policies", "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no policies in %s/policies", dir)
	}
	sort.Strings(files)
	f := &Fixture{}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		f.Docs = append(f.Docs, Doc{Name: strings.TrimSuffix(filepath.Base(name), ".json"), JSON: data})
	}
	data, err := os.ReadFile(filepath.Join(dir, "requests.json"))
	if err != nil {
		return nil, err
	}
	var rf struct {
		BaseContext map[string][]string `json:"base_context"`
		Requests    []struct {
			Name     string              `json:"name"`
			Action   string              `json:"action"`
			Resource string              `json:"resource"`
			Context  map[string][]string `json:"context"`
			Want     string              `json:"want"`
		} `json:"requests"`
	}
	if err := json.Unmarshal(data, &rf); err != nil {
		return nil, fmt.Errorf("requests.json: %w", err)
	}
	f.Caller = rf.BaseContext
	for _, r := range rf.Requests {
		ctx := map[string][]string{}
		for k, v := range rf.BaseContext {
			ctx[k] = v
		}
		for k, v := range r.Context {
			ctx[k] = v
		}
		f.Requests = append(f.Requests, Request{Name: r.Name, Action: r.Action, Resource: r.Resource, Context: ctx, Want: r.Want})
	}
	return f, nil
}
