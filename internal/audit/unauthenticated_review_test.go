package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/ratelimit"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
	"github.com/kaginashi/kaginashi/internal/syncbuf"
)

// TestUnauthenticatedIPv6SharesPrefixBudget: one IPv6 host holds a whole
// /64 (SLAAC, privacy addresses: 2^64 of them), so a budget per address
// bounded nothing — every new address brought a new burst, and 10,000 of
// them (the sampler's table) 10,000 budgets. Addresses of one /64 share
// one budget and one summary; IPv4 addresses (and IPv4-mapped ones) keep
// their own.
func TestUnauthenticatedIPv6SharesPrefixBudget(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var sink syncbuf.Buffer
	w := NewWriter(st, &sink, discardLog())
	defer w.Close()
	clock := &fakeClock{t: time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)}
	u := &Unauthenticated{
		Sampler: ratelimit.NewSampler(1, 2, 1000, clock.now), Audit: w,
		Account: "123456789012", Region: "eu-west-1", Log: discardLog(), Now: clock.now,
	}
	admitted := 0
	for i := range 100 {
		if u.Admit(fmt.Sprintf("2001:db8:1:2::%x", i+1), "MissingAuthenticationToken") {
			admitted++
		}
	}
	if admitted != 2 {
		t.Fatalf("%d of 100 calls from 100 addresses of one /64 audited one by one, want the burst of 2", admitted)
	}
	if !u.Admit("2001:db8:1:3::1", "x") {
		t.Error("another /64 had no budget of its own")
	}
	if !u.Admit("192.0.2.1", "x") || !u.Admit("192.0.2.2", "x") || !u.Admit("::ffff:192.0.2.3", "x") {
		t.Error("IPv4 addresses did not keep a budget each")
	}
	if err := u.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	evs, _, err := st.LookupAudit(ctx, store.AuditFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("%d summaries, want 1 (the /64)", len(evs))
	}
	if rec := string(evs[0].Record); !strings.Contains(rec, `"sourceIPAddress":"2001:db8:1:2::/64"`) {
		t.Errorf("the summary's source is not 2001:db8:1:2::/64: %s", rec)
	}
}
