package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/kaginashi/kaginashi/internal/store"
)

// testTagKeyCase: TagResource refuses a key that differs only in case from
// one the resource has, naming the resource's spelling; the same spelling
// overwrites; a pair stored before the check (PutInstance writes what it
// is given) is left alone and either of its spellings may still be set.
func testTagKeyCase(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	in := newInstance(1)
	in.Tags = []store.Tag{{Key: "Team", Value: "prod"}}
	must(t, s.PutInstance(ctx, in))
	const eice = "eice-0123456789abcdef0"
	must(t, s.TagResource(ctx, eice, []store.Tag{{Key: "Owner", Value: "ops"}}))

	for _, c := range []struct {
		id, key, existing string
	}{
		{in.ID, "team", "Team"},
		{in.ID, "TEAM", "Team"},
		{eice, "owner", "Owner"},
	} {
		err := s.TagResource(ctx, c.id, []store.Tag{{Key: "other", Value: "1"}, {Key: c.key, Value: "sandbox"}})
		var tc *store.TagKeyCaseError
		if !errors.As(err, &tc) {
			t.Fatalf("TagResource(%s, %s): error %v, want a *store.TagKeyCaseError", c.id, c.key, err)
		}
		equal(t, "refused key", *tc, store.TagKeyCaseError{Resource: c.id, Key: c.key, Existing: c.existing})
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", c.existing)) {
			t.Fatalf("error %q does not name the existing key %q", err, c.existing)
		}
	}
	// Nothing of a refused call was written, not even its other tag.
	tags, err := s.ResourceTags(ctx, in.ID)
	must(t, err)
	equal(t, "tags after refusals", tags, []store.Tag{{Key: "Team", Value: "prod"}})
	tags, err = s.ResourceTags(ctx, eice)
	must(t, err)
	equal(t, "endpoint tags after refusals", tags, []store.Tag{{Key: "Owner", Value: "ops"}})

	// The same spelling overwrites; other resources are not affected.
	must(t, s.TagResource(ctx, in.ID, []store.Tag{{Key: "Team", Value: "dev"}}))
	must(t, s.TagResource(ctx, eice, []store.Tag{{Key: "team", Value: "x"}}))
	tags, err = s.ResourceTags(ctx, in.ID)
	must(t, err)
	equal(t, "tags after overwrite", tags, []store.Tag{{Key: "Team", Value: "dev"}})

	// Two spellings in one request.
	var tc *store.TagKeyCaseError
	if err := s.TagResource(ctx, in.ID, []store.Tag{{Key: "Env", Value: "a"}, {Key: "env", Value: "b"}}); !errors.As(err, &tc) {
		t.Fatalf("TagResource with Env and env: error %v, want a *store.TagKeyCaseError", err)
	}

	// A pair stored before the check: both spellings stay settable, a
	// third is refused.
	legacy := newInstance(2)
	legacy.Tags = []store.Tag{{Key: "Team", Value: "prod"}, {Key: "team", Value: "dev"}}
	must(t, s.PutInstance(ctx, legacy))
	must(t, s.TagResource(ctx, legacy.ID, []store.Tag{{Key: "team", Value: "qa"}}))
	must(t, s.TagResource(ctx, legacy.ID, []store.Tag{{Key: "Team", Value: "prod2"}}))
	if err := s.TagResource(ctx, legacy.ID, []store.Tag{{Key: "TEAM", Value: "x"}}); !errors.As(err, &tc) {
		t.Fatalf("TagResource TEAM beside Team and team: error %v, want a *store.TagKeyCaseError", err)
	}
	tags, err = s.ResourceTags(ctx, legacy.ID)
	must(t, err)
	equal(t, "legacy pair", tags, []store.Tag{{Key: "Team", Value: "prod2"}, {Key: "team", Value: "qa"}})
}

// testTagKeyCaseRace: concurrent TagResource calls, each with another
// spelling of one key, on a resource that has none of them: exactly one
// lands, the others are refused, whatever the interleaving. An instance
// (whose row the engines lock for share) and the endpoint (no row).
func testTagKeyCaseRace(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	spellings := []string{"team", "Team", "TEAM", "tEam", "teAm", "teaM", "TEam", "teAM"}
	for round := range 6 {
		in := newInstance(10 + round)
		in.Tags = nil
		must(t, s.PutInstance(ctx, in))
		for _, id := range []string{in.ID, fmt.Sprintf("eice-%017x", round)} {
			var wg sync.WaitGroup
			errs := make([]error, len(spellings))
			start := make(chan struct{})
			for i, k := range spellings {
				wg.Go(func() {
					<-start
					errs[i] = s.TagResource(ctx, id, []store.Tag{{Key: k, Value: k}})
				})
			}
			close(start)
			wg.Wait()
			landed := 0
			for i, err := range errs {
				var tc *store.TagKeyCaseError
				switch {
				case err == nil:
					landed++
				case !errors.As(err, &tc):
					t.Fatalf("round %d, %s, %s: unexpected error %v", round, id, spellings[i], err)
				}
			}
			tags, err := s.ResourceTags(ctx, id)
			must(t, err)
			if landed != 1 || len(tags) != 1 {
				t.Fatalf("round %d, %s: %d calls succeeded, tags %v; want exactly one of the spellings", round, id, landed, tags)
			}
		}
	}
}
