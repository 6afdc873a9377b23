package postgres_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/postgres"
	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
)

// TestTagKeyCaseRaceRepeatableRead (S6-H13): TagResource's check of a
// key's other spellings reads the resource's keys after taking the
// per-resource advisory lock, which serializes two calls only if that
// read sees what the first committed: READ COMMITTED's per-statement
// snapshot. writeTx took the database's default isolation, so a database
// (or role) set to default_transaction_isolation = 'repeatable read' —
// which some operators use — took the snapshot before the wait, and the
// losers of the race (the conformance case TagKeyCaseRace, at the
// default) failed with serialization errors (40001: an internal error on
// the wire) rather than a TagKeyCaseError. The storm below is that case
// under repeatable read.
func TestTagKeyCaseRaceRepeatableRead(t *testing.T) {
	dsn := pgtest.Start(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	db, err := postgres.Open(t.Context(), dsn+sep+"default_transaction_isolation=repeatable%20read")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := t.Context()
	spellings := []string{"team", "Team", "TEAM", "tEam", "teAm", "teaM", "TEam", "teAM"}
	now := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	for round := range 6 {
		in := store.Instance{ID: fmt.Sprintf("i-0ee%014x", round), State: store.StateRunning, LaunchTime: now, LastSeen: now}
		if err := db.PutInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{in.ID, fmt.Sprintf("eice-%017x", round)} {
			var wg sync.WaitGroup
			errs := make([]error, len(spellings))
			start := make(chan struct{})
			for i, k := range spellings {
				wg.Go(func() {
					<-start
					errs[i] = db.TagResource(ctx, id, []store.Tag{{Key: k, Value: k}})
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
			tags, err := db.ResourceTags(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if landed != 1 || len(tags) != 1 {
				t.Fatalf("round %d, %s: %d calls succeeded, tags %v; want exactly one of the spellings", round, id, landed, tags)
			}
		}
	}
}
