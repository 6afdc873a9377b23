package inventory

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store"
)

// TestCreateTagsCaseRace: CreateTags calls racing with other spellings of
// one key: exactly one lands on each resource, and every other is refused
// as InvalidParameterValue naming the key that won — whether CreateTags'
// own read saw it or only the store's check in its write transaction did
// (store.TagKeyCaseError, mapped here), never as an internal error.
func TestCreateTagsCaseRace(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	e, err := s.Endpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	spellings := []string{"owner", "Owner", "OWNER", "oWner", "owNer", "ownEr", "ownER", "OWner"}
	for round := range 5 {
		for _, id := range []string{"i-0000000000000000a", e.ID} {
			key := func(k string) string { return k + strings.Repeat("x", round) }
			var wg sync.WaitGroup
			errs := make([]error, len(spellings))
			start := make(chan struct{})
			for i, k := range spellings {
				wg.Go(func() {
					<-start
					errs[i] = s.CreateTags(ctx, []string{id}, []store.Tag{{Key: key(k), Value: k}})
				})
			}
			close(start)
			wg.Wait()
			tags, err := s.ResourceTags(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			var won []string
			for _, tg := range tags {
				if strings.EqualFold(tg.Key, key("owner")) {
					won = append(won, tg.Key)
				}
			}
			if len(won) != 1 {
				t.Fatalf("round %d, %s: tags %v; want exactly one spelling of %s", round, id, tags, key("owner"))
			}
			landed := 0
			for i, err := range errs {
				if err == nil {
					landed++
					continue
				}
				ae := apierr.As(err)
				if ae.Code != "InvalidParameterValue" || !strings.Contains(ae.Message, `"`+won[0]+`"`) {
					t.Fatalf("round %d, %s, %s: %v (code %q); want InvalidParameterValue naming %q", round, id, key(spellings[i]), err, ae.Code, won[0])
				}
			}
			if landed != 1 {
				t.Fatalf("round %d, %s: %d calls succeeded", round, id, landed)
			}
		}
	}
}
