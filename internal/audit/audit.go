// Package audit records every API decision as a CloudTrail-shaped event.
// An event is durable before the answer leaves: Record returns only once
// the event's batch is committed to the store (group commit: concurrent
// requests share one transaction, so one fsync serves many). An optional
// JSON-lines sink receives a copy of each committed event.
package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store"
)

// Event is one CloudTrail record (eventVersion 1.08 fields kaginashi fills).
type Event struct {
	EventVersion        string         `json:"eventVersion"`
	UserIdentity        Identity       `json:"userIdentity"`
	EventTime           time.Time      `json:"eventTime"`
	EventSource         string         `json:"eventSource"`
	EventName           string         `json:"eventName"`
	AWSRegion           string         `json:"awsRegion"`
	SourceIPAddress     string         `json:"sourceIPAddress"`
	UserAgent           string         `json:"userAgent"`
	ErrorCode           string         `json:"errorCode,omitempty"`
	ErrorMessage        string         `json:"errorMessage,omitempty"`
	RequestParameters   map[string]any `json:"requestParameters"`
	ResponseElements    map[string]any `json:"responseElements"`
	AdditionalEventData map[string]any `json:"additionalEventData,omitempty"`
	RequestID           string         `json:"requestID"`
	EventID             string         `json:"eventID"`
	ReadOnly            bool           `json:"readOnly"`
	EventType           string         `json:"eventType"`
	ManagementEvent     bool           `json:"managementEvent"`
	RecipientAccountID  string         `json:"recipientAccountId"`

	// WriteAhead marks the pending version of a mutating call's event,
	// committed after the call is authorized and before it changes
	// anything: additionalEventData gets "outcome": "pending", and the
	// JSON-lines sink does not get it (it gets the final version, or
	// this one if the final version cannot be committed).
	WriteAhead bool `json:"-"`
	// Completes is the committed write-ahead event this event is the
	// final version of: it takes that event's ID and replaces it in the
	// store, so that the call has one event.
	Completes *Event `json:"-"`

	// committed is the encoded record of a write-ahead event once it is
	// durable: the sink's fallback if its final version fails.
	committed []byte
}

// outcomePending is additionalEventData's mark on a write-ahead event
// (the call's outcome is not known yet). Its final version has none.
const outcomePending = "pending"

// Identity is CloudTrail's userIdentity.
type Identity struct {
	Type        string `json:"type,omitempty"` // Root, IAMUser, Unknown
	PrincipalID string `json:"principalId,omitempty"`
	ARN         string `json:"arn,omitempty"`
	AccountID   string `json:"accountId,omitempty"`
	AccessKeyID string `json:"accessKeyId,omitempty"`
	UserName    string `json:"userName,omitempty"`
	// SessionContext marks a console session, as CloudTrail does for
	// calls made from the AWS console.
	SessionContext *SessionContext `json:"sessionContext,omitempty"`
}

// SessionContext is CloudTrail's userIdentity.sessionContext.
type SessionContext struct {
	Attributes SessionAttributes `json:"attributes"`
}

// SessionAttributes are CloudTrail's sessionContext.attributes: when the
// session began and whether it was signed in with MFA ("true"/"false").
type SessionAttributes struct {
	CreationDate     string `json:"creationDate"`
	MFAAuthenticated string `json:"mfaAuthenticated"`
}

// Hidden replaces secrets in request parameters and response elements,
// with CloudTrail's own wording.
const Hidden = "HIDDEN_DUE_TO_SECURITY_REASONS"

// secretFields are parameter names whose values never reach the log.
var secretFields = []string{"secretaccesskey", "password", "newpassword", "oldpassword", "authenticationcode1", "authenticationcode2", "totp", "base32stringseed", "qrcodepng", "privatekey", "jointoken", "token"}

// Redact replaces secret values in a parameter map, recursively.
func Redact(m map[string]any) map[string]any {
	for k, v := range m {
		secret := false
		for _, f := range secretFields {
			if strings.EqualFold(k, f) {
				secret = true
				break
			}
		}
		switch {
		case secret:
			m[k] = Hidden
		default:
			switch x := v.(type) {
			case map[string]any:
				Redact(x)
			case []any:
				for _, e := range x {
					if em, ok := e.(map[string]any); ok {
						Redact(em)
					}
				}
			}
		}
	}
	return m
}

// Recorder is what the API edge needs: record an event durably.
type Recorder interface {
	Record(ctx context.Context, ev *Event) error
}

// Expecter is a Recorder that commits in bigger batches when told which
// calls will record an event soon (Writer does).
type Expecter interface {
	Expect() (arrived func())
}

// Writer commits events to the store in batches.
type Writer struct {
	st   store.Store
	sink io.Writer // may be nil
	log  *slog.Logger
	ch   chan *pending
	done chan struct{}

	// enqueue is held (read) while a Record queues an event and taken
	// (write) by Close, so that nothing is queued after the loop drains.
	enqueue sync.RWMutex
	closed  bool
	mu      sync.Mutex // guards sink

	now func() time.Time
	// failing is set while the latest commit failed and none succeeded
	// since (nil: healthy), read by Health without a lock: /healthz
	// asks on every probe and must not contend with the commit loop.
	failing atomic.Pointer[Failure]
	// probe, when set, is how often the loop tries a commit of its own
	// while commits fail: a replica that Health took out of a load
	// balancer gets no calls, so without it nothing would ever commit
	// and it would stay out for good.
	probe           time.Duration
	account, region string

	// linger is how long a commit may wait for the events of calls
	// already being served (expected) before it starts, so that a busy
	// server commits many events per transaction; see Expect.
	linger   time.Duration
	expected atomic.Int64
}

// Failure is why the writer cannot commit: since when (the first failed
// commit of the current streak) and the latest error.
type Failure struct {
	Since time.Time
	Err   error
}

// WithRecoveryProbe makes the writer, while its commits fail, try every
// interval to commit an event of its own (AuditStoreRecovered, naming
// the failure it ends), so that Health recovers without traffic. Failed
// tries leave nothing; the one that succeeds marks the gap in the trail.
func WithRecoveryProbe(every time.Duration, account, region string) Option {
	return func(w *Writer) {
		w.probe, w.account, w.region = every, account, region
	}
}

// WithLinger lets a commit wait up to d for the events of calls that
// are being served (Expect) before it starts.
func WithLinger(d time.Duration) Option {
	return func(w *Writer) { w.linger = d }
}

// Expect says that a call being served will record an event soon; the
// returned function says that it has (or never will), and may be called
// more than once. While calls are expected, a commit lingers for them.
func (w *Writer) Expect() (arrived func()) {
	if w.linger <= 0 {
		return func() {}
	}
	w.expected.Add(1)
	done := false
	return func() {
		if !done {
			done = true
			w.expected.Add(-1)
		}
	}
}

// Option adjusts a Writer.
type Option func(*Writer)

// WithClock sets the clock Health's Since is read from (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(w *Writer) {
		if now != nil {
			w.now = now
		}
	}
}

type pending struct {
	ev  store.AuditEvent
	err chan error
	// toSink is what the JSON-lines sink gets once ev is committed (nil:
	// nothing, for a write-ahead event), fallback what it gets if the
	// commit fails (the committed write-ahead version of a final event).
	toSink, fallback []byte
}

// maxBatch bounds one transaction.
const maxBatch = 512

// NewWriter starts a writer. sink, when not nil, receives each committed
// event as one JSON line.
func NewWriter(st store.Store, sink io.Writer, log *slog.Logger, opts ...Option) *Writer {
	w := &Writer{st: st, sink: sink, log: log, ch: make(chan *pending, maxBatch), done: make(chan struct{}), now: time.Now}
	for _, o := range opts {
		o(w)
	}
	go w.loop()
	return w
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("audit: writer closed")

// Record fills the event's IDs and version, and returns once it is
// committed. An error means the event is not durable: the caller must not
// answer as if the request succeeded unseen.
//
// A write-ahead event (WriteAhead) is committed the same way, and an
// error means the call must not run. Its final version (Completes set)
// replaces it; if that fails, the write-ahead version stays in the store,
// and goes to the sink instead.
func (w *Writer) Record(ctx context.Context, ev *Event) (err error) {
	var fallback []byte
	if ev.Completes != nil {
		ev.EventID = ev.Completes.EventID
		fallback = ev.Completes.committed
		defer func() {
			if err != nil && fallback != nil {
				// Not queued (closed, cancelled, unencodable): the
				// committed write-ahead version is the call's record.
				w.writeSink(fallback)
			}
		}()
	}
	p, raw, err := prepare(ev, fallback)
	if err != nil {
		return err
	}
	w.enqueue.RLock()
	if w.closed {
		w.enqueue.RUnlock()
		return ErrClosed
	}
	select {
	case w.ch <- p:
		w.enqueue.RUnlock()
	case <-ctx.Done():
		w.enqueue.RUnlock()
		return fmt.Errorf("audit: %w", ctx.Err())
	}
	fallback = nil // the commit's fate decides, in commit
	// Wait for the commit even if the request's context ends: the event
	// is in a batch already, and the answer depends on its fate.
	if err := <-p.err; err != nil {
		return err
	}
	if ev.WriteAhead {
		ev.committed = raw
	}
	return nil
}

// prepare fills the event's IDs and version, redacts and encodes it, and
// makes its batch entry; fallback is what the sink gets if its commit
// fails.
func prepare(ev *Event, fallback []byte) (*pending, []byte, error) {
	if ev.WriteAhead {
		if ev.AdditionalEventData == nil {
			ev.AdditionalEventData = map[string]any{}
		}
		ev.AdditionalEventData["outcome"] = outcomePending
	}
	if ev.EventID == "" {
		// Version 7: time-ordered, so that the store's unique index on
		// event IDs grows at its end — a batch of events dirties one
		// index page, not one random page per event.
		id, err := uuid.NewV7()
		if err != nil {
			return nil, nil, fmt.Errorf("audit: event ID: %w", err)
		}
		ev.EventID = id.String()
	}
	if ev.EventVersion == "" {
		ev.EventVersion = "1.08"
	}
	if ev.EventType == "" {
		ev.EventType = "AwsApiCall"
	}
	ev.ManagementEvent = true
	ev.RequestParameters = Redact(ev.RequestParameters)
	ev.ResponseElements = Redact(ev.ResponseElements)
	precise := ev.EventTime.UTC()
	ev.EventTime = precise.Truncate(time.Second) // CloudTrail's eventTime has whole seconds
	// Sized for a typical event (about 1 KiB), so it is encoded into one
	// allocation.
	raw, err := appendEvent(make([]byte, 0, 1536), ev)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: encode event: %w", err)
	}
	// The user name LookupEvents shows and filters by: the IAM user's,
	// and "root" for the account root, as CloudTrail does (userIdentity
	// itself has no userName for root).
	user := ev.UserIdentity.UserName
	if user == "" && ev.UserIdentity.Type == "Root" {
		user = "root"
	}
	p := &pending{
		ev: store.AuditEvent{
			ID: ev.EventID, Time: precise, Name: ev.EventName, Source: ev.EventSource,
			UserName: user, AccessKeyID: ev.UserIdentity.AccessKeyID, ErrorCode: ev.ErrorCode, Record: raw,
			RequestID: ev.RequestID, Replace: ev.Completes != nil,
		},
		err:      make(chan error, 1),
		fallback: fallback,
	}
	if !ev.WriteAhead {
		p.toSink = raw
	}
	return p, raw, nil
}

func (w *Writer) loop() {
	var probe *time.Timer // running while commits fail and probing is on
	var lingerT *time.Timer
	defer func() {
		if probe != nil {
			probe.Stop()
		}
	}()
	for {
		var probeC <-chan time.Time
		switch f := w.failing.Load(); {
		case f == nil || w.probe <= 0:
			if probe != nil {
				probe.Stop()
				probe = nil
			}
		case probe == nil:
			probe = time.NewTimer(w.probe)
			probeC = probe.C
		default:
			probeC = probe.C
		}
		var p *pending
		select {
		case p = <-w.ch:
		case <-probeC:
			probe = nil
			if f := w.failing.Load(); f != nil {
				w.commitProbe(f)
			}
			continue
		case <-w.done:
			// Drain what is queued, then stop.
			for {
				select {
				case p := <-w.ch:
					w.commit([]*pending{p})
				default:
					return
				}
			}
		}
		batch := []*pending{p}
	fill:
		for len(batch) < maxBatch {
			select {
			case q := <-w.ch:
				batch = append(batch, q)
			default:
				break fill
			}
		}
		batch = w.lingerFor(batch, &lingerT)
		w.commit(batch)
	}
}

// lingerFor adds to batch the events of the calls expected when it
// starts, waiting for them at most the linger time.
func (w *Writer) lingerFor(batch []*pending, t **time.Timer) []*pending {
	want := len(batch) + int(w.expected.Load())
	if w.linger <= 0 || len(batch) >= want {
		return batch
	}
	want = min(want, maxBatch)
	if *t == nil {
		*t = time.NewTimer(w.linger)
	} else {
		(*t).Reset(w.linger)
	}
	for len(batch) < want {
		select {
		case q := <-w.ch:
			batch = append(batch, q)
		case <-(*t).C:
			return batch
		}
	}
	(*t).Stop()
	return batch
}

func (w *Writer) commit(batch []*pending) {
	evs := make([]store.AuditEvent, len(batch))
	for i, p := range batch {
		evs[i] = p.ev
	}
	// The commit must not be abandoned half-way by a request's deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := w.st.AppendAudit(ctx, evs)
	cancel()
	// The store may leave some success events out (their key record
	// failed): the others are committed; those callers record the
	// failure instead.
	var skipped *store.SkippedEventsError
	if errors.As(err, &skipped) {
		err = nil
	}
	// Each call reaches the sink once: its event, or its final version,
	// or — when the final version fails — its committed write-ahead
	// version (the change is audited, its outcome unknown).
	w.noteCommit(err)
	var lines [][]byte
	if err != nil {
		w.log.Error("audit: committing events failed", "events", len(evs), "err", err)
		err = fmt.Errorf("audit: commit: %w", err)
		for _, p := range batch {
			if p.fallback != nil {
				lines = append(lines, p.fallback)
			}
		}
	} else {
		for _, p := range batch {
			if p.toSink != nil && (skipped == nil || skipped.Skipped[p.ev.ID] == nil) {
				lines = append(lines, p.toSink)
			}
		}
	}
	w.writeSink(lines...)
	for _, p := range batch {
		if skipped != nil && skipped.Skipped[p.ev.ID] != nil {
			p.err <- fmt.Errorf("audit: event left out: %w", skipped.Skipped[p.ev.ID])
			continue
		}
		p.err <- err
	}
}

// serviceEvent is an event of kaginashi's own doing (not an API call),
// shown as CloudTrail shows AWS service events.
func serviceEvent(name string, at time.Time, region, account string) *Event {
	return &Event{
		EventTime: at, EventSource: "kaginashi", EventName: name, EventType: "AwsServiceEvent",
		AWSRegion: region, RecipientAccountID: account,
		UserIdentity: Identity{Type: "AWSService", PrincipalID: "kaginashi"},
	}
}

// commitProbe commits the writer's own event, which says since when
// commits failed and why: if it commits, Health recovers.
func (w *Writer) commitProbe(f *Failure) {
	ev := serviceEvent("AuditStoreRecovered", w.now(), w.region, w.account)
	ev.RequestParameters = map[string]any{
		"failingSince": f.Since.UTC().Format(time.RFC3339), "lastError": f.Err.Error(),
	}
	p, _, err := prepare(ev, nil)
	if err != nil {
		w.log.Error("audit: preparing the recovery probe failed", "err", err)
		return
	}
	w.commit([]*pending{p})
	if w.failing.Load() == nil {
		w.log.Info("audit: commits work again", "failing_since", f.Since)
	}
}

// noteCommit records a commit's fate for Health: a failure keeps the
// streak's start and takes the latest error; a success ends the streak.
func (w *Writer) noteCommit(err error) {
	if err == nil {
		w.failing.Store(nil)
		return
	}
	since := w.now()
	if prev := w.failing.Load(); prev != nil {
		since = prev.Since
	}
	// Only the loop goroutine stores, so load-then-store does not race.
	w.failing.Store(&Failure{Since: since, Err: err})
}

// Health reports whether events can be committed now: nil while the
// latest commit succeeded (or none was tried yet), else since when
// commits fail and the latest error. It reads memory only, so a health
// probe can ask as often as it likes; every API call commits an event,
// so the answer is as fresh as the traffic.
func (w *Writer) Health() *Failure { return w.failing.Load() }

// writeSink appends records to the JSON-lines sink, if any.
func (w *Writer) writeSink(records ...[]byte) {
	if w.sink == nil || len(records) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range records {
		if _, serr := w.sink.Write(append(r, '\n')); serr != nil {
			w.log.Error("audit: writing the JSON-lines sink failed", "err", serr)
			return
		}
	}
}

// Close stops the writer after committing what is queued.
func (w *Writer) Close() error {
	w.enqueue.Lock()
	if !w.closed {
		w.closed = true
		close(w.done)
	}
	w.enqueue.Unlock()
	return nil
}

// Lookup returns events newest first, as LookupAudit; a cursor the store
// cannot read is the caller's mistake (InvalidInput).
func (w *Writer) Lookup(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, string, error) {
	evs, next, err := w.st.LookupAudit(ctx, f)
	if err != nil && f.Cursor != "" && errors.Is(err, store.ErrInvalidCursor) {
		return nil, "", apierr.New(apierr.InvalidInput, "invalid NextToken")
	}
	if err != nil {
		return nil, "", apierr.Wrap(err, "looking up audit events")
	}
	return evs, next, nil
}
