package iam

import (
	"context"
	"errors"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/policy"
)

// Boundary is a compiled permissions boundary.
type Boundary struct {
	// Source names it: the managed policy's ARN, or
	// PermissionsBoundaryPolicyInputList.N in a simulation.
	Source string
	// Set allows nothing when the boundary's policy is gone or does not
	// compile: a broken boundary fails closed.
	Set *policy.Set
	// Problem says why Set is empty when it is broken ("" otherwise).
	Problem string
}

// loadBoundary compiles the default version of the managed policy arn
// ("": no boundary, nil).
func loadBoundary(ctx context.Context, st store.Store, arn string) (*Boundary, error) {
	if arn == "" {
		return nil, nil
	}
	b := &Boundary{Source: arn, Set: policy.NewSet()}
	mp, err := st.GetPolicy(ctx, arn)
	if errors.Is(err, store.ErrNotFound) {
		b.Problem = arn + " (permissions boundary: no such policy)"
		return b, nil
	}
	if err != nil {
		return nil, apierr.Wrap(err, "loading the permissions boundary")
	}
	v, err := st.GetPolicyVersion(ctx, mp.ARN, mp.DefaultVersionID)
	if err != nil {
		return nil, apierr.Wrap(err, "loading the permissions boundary")
	}
	c, err := policy.ParseAndCompile(mp.ARN, []byte(v.Document))
	if err != nil {
		b.Problem = mp.Name + " (permissions boundary)"
		return b, nil
	}
	b.Set = policy.NewSet(c)
	return b, nil
}

// Evaluation is a decision explained: the identity policies' evaluation,
// the permissions boundary's, and the outcome of both. For the simulate
// APIs and "which statement decided".
type Evaluation struct {
	Action   string
	Resource string
	// Result is the final decision: Matched names the statements that
	// decided it (the identity policies' and the boundary's allows when
	// allowed; the denying statements for an explicit deny), Missing the
	// context keys either asked for and the request lacked.
	policy.Result
	// Identity is the identity policies' own evaluation, statement by
	// statement.
	Identity policy.Explanation
	// Boundary is nil for a principal without a permissions boundary.
	Boundary *BoundaryEvaluation
	// DeniedByBoundary: the identity policies alone would have allowed
	// (or did not deny), and the boundary is why the request is refused.
	DeniedByBoundary bool
}

// BoundaryEvaluation is how a permissions boundary fared.
type BoundaryEvaluation struct {
	Source  string
	Allowed bool
	policy.Explanation
}

// Evaluate decides req with identity policies capped by a boundary (nil:
// none), as IAM does: both must allow, and an explicit deny in either is
// final. It agrees with Authorizer.Authorize, and explains.
func Evaluate(identity *policy.Set, b *Boundary, req *policy.Request) *Evaluation {
	ex := identity.Explain(req)
	ev := &Evaluation{Action: req.Action, Resource: req.Resource, Identity: *ex}
	ev.Decision = ex.Decision
	ev.Matched = append([]policy.StatementRef(nil), ex.Matched...)
	ev.Missing = append([]string(nil), ex.Missing...)
	if b == nil {
		return ev
	}
	bx := b.Set.Explain(req)
	ev.Boundary = &BoundaryEvaluation{Source: b.Source, Allowed: bx.Decision == policy.Allowed, Explanation: *bx}
	for _, k := range bx.Missing {
		if !contains(ev.Missing, k) {
			ev.Missing = append(ev.Missing, k)
		}
	}
	switch {
	case ex.Decision == policy.ExplicitDeny:
		// The identity policies' deny decides; the boundary cannot undo it.
	case bx.Decision == policy.ExplicitDeny:
		ev.Decision, ev.Matched, ev.DeniedByBoundary = policy.ExplicitDeny, append([]policy.StatementRef(nil), bx.Matched...), true
	case bx.Decision != policy.Allowed:
		if ex.Decision == policy.Allowed {
			ev.Decision, ev.Matched, ev.DeniedByBoundary = policy.ImplicitDeny, nil, true
		}
	case ex.Decision == policy.Allowed:
		ev.Matched = append(ev.Matched, bx.Matched...)
	}
	return ev
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
