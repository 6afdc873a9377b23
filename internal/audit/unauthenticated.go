package audit

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/kaginashi/kaginashi/internal/ratelimit"
)

// SuppressedEventName is the event that sums up, per source address, the
// unauthenticated calls not audited one by one.
const SuppressedEventName = "UnauthenticatedCallsSuppressed"

// OtherSources is the summary's source for the addresses that had no
// budget of their own (more sources at once than the sampler tracks).
const OtherSources = "other sources"

// Unauthenticated bounds the audit rows of calls refused before a
// principal is known — missing, malformed or badly signed credentials,
// an unknown access key — which anyone can send without credentials. Per
// source address (an IPv6 one's /64: BudgetSource), calls within a token bucket's budget are audited one by
// one, as every call; the others are answered all the same but only
// counted, and every Every (and at Flush on shutdown) one
// UnauthenticatedCallsSuppressed event per source says how many there
// were, when, and with which error codes. Every call is thus still in the
// trail, in aggregate, while an unauthenticated flood costs one row per
// source a minute instead of one per request.
type Unauthenticated struct {
	Sampler *ratelimit.Sampler
	// Audit records the summaries.
	Audit Recorder
	// Every is how often summaries are recorded (default 1 minute).
	Every           time.Duration
	Account, Region string
	Log             *slog.Logger
	Now             func() time.Time
}

// Admit says whether the call from source, refused with code, is
// audited one by one; if not, it is counted for the next summary.
func (u *Unauthenticated) Admit(source, code string) bool {
	if u == nil {
		return true
	}
	return u.Sampler.Allow(BudgetSource(source), code)
}

// BudgetSource is the source whose budget a call from addr takes: the
// address itself, but for IPv6 its /64 — one host (SLAAC, privacy
// addresses) holds all 2^64 of them, so a budget per address would give
// it as many budgets as it likes, up to the sampler's whole table. The
// summaries name the prefix (2001:db8:1:2::/64). Anything that is not an
// address (a test's, a proxy's odd value) is its own source.
func BudgetSource(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	if !a.Is6() {
		return a.String()
	}
	return netip.PrefixFrom(a.WithZone(""), 64).Masked().String()
}

// Suppressed is how many calls have not been audited one by one since
// start (kaginashi_unauthenticated_calls_suppressed_total).
func (u *Unauthenticated) Suppressed() uint64 {
	if u == nil {
		return 0
	}
	return u.Sampler.Refused()
}

// Run records summaries every Every until ctx ends. The last ones are
// the caller's to Flush once nothing is served any more.
func (u *Unauthenticated) Run(ctx context.Context) {
	if u == nil || !u.Sampler.Enabled() {
		return
	}
	every := u.Every
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := u.Flush(ctx); err != nil && ctx.Err() == nil {
				u.log().Error("audit: recording the summary of unauthenticated calls failed; retried at the next one", "err", err)
			}
		}
	}
}

// Flush records one summary event per source with calls not audited
// since the last Flush. Summaries it cannot record go back to the
// sampler, so that the next Flush tries them again; the error says so.
func (u *Unauthenticated) Flush(ctx context.Context) error {
	if u == nil {
		return nil
	}
	ts := u.Sampler.Drain()
	if len(ts) == 0 {
		return nil
	}
	at := u.now()
	var failed []ratelimit.Tally
	var firstErr error
	calls, top := 0, ts[0]
	for _, t := range ts {
		calls += t.Count
		if t.Count > top.Count {
			top = t
		}
		if err := u.Audit.Record(context.WithoutCancel(ctx), u.summary(t, at)); err != nil {
			failed = append(failed, t)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	// A flood is worth a line in the log too (one a flush, however many
	// sources): the trail has the details, but an operator reads the log
	// first.
	u.log().Warn("unauthenticated calls over the audit budget were answered but summarized, not audited one by one",
		"event", SuppressedEventName, "calls", calls, "sources", len(ts), "topSource", sourceOf(top), "topSourceCalls", top.Count)
	if firstErr != nil {
		u.Sampler.Restore(failed)
		n := 0
		for _, t := range failed {
			n += t.Count
		}
		return fmt.Errorf("recording %d of %d summaries (%d calls): %w", len(failed), len(ts), n, firstErr)
	}
	return nil
}

func sourceOf(t ratelimit.Tally) string {
	if t.Key == "" {
		return OtherSources
	}
	return t.Key
}

// summary is a tally's event: a service event (kaginashi's own doing,
// as retention's DeleteAuditEvents) whose sourceIPAddress is the source.
func (u *Unauthenticated) summary(t ratelimit.Tally, at time.Time) *Event {
	ev := serviceEvent(SuppressedEventName, at, u.Region, u.Account)
	ev.SourceIPAddress = sourceOf(t)
	codes := make(map[string]any, len(t.Codes))
	for c, n := range t.Codes {
		codes[c] = n
	}
	perSecond, burst := u.Sampler.Budget()
	ev.RequestParameters = map[string]any{
		"sourceIPAddress": sourceOf(t),
		// The budget in force: within it calls are audited one by one.
		"auditRatePerSecond": perSecond, "auditBurst": burst,
	}
	ev.ResponseElements = map[string]any{
		"suppressedCount": t.Count,
		"firstEventTime":  t.First.UTC().Format(time.RFC3339Nano),
		"lastEventTime":   t.Last.UTC().Format(time.RFC3339Nano),
		"errorCodes":      codes,
	}
	return ev
}

func (u *Unauthenticated) now() time.Time {
	if u.Now != nil {
		return u.Now()
	}
	return time.Now()
}

func (u *Unauthenticated) log() *slog.Logger {
	if u.Log != nil {
		return u.Log
	}
	return slog.New(slog.DiscardHandler)
}
