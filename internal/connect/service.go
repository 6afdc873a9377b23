package connect

import (
	"context"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store"
)

// Deliverer hands a key record to the instance's agent and returns once the
// agent has acknowledged it (so a login right after Success never races).
// Until agents exist (or for an instance without one), it is nil.
type Deliverer interface {
	Deliver(ctx context.Context, rec store.KeyRecord) error
}

// Service stores and delivers pushed keys.
type Service struct {
	store   store.Store
	deliver Deliverer
	now     func() time.Time
	// lifetime of a pushed key: 60 s, shorter only for tests; nothing can
	// make it longer (agents refuse records living over 60 s).
	lifetime time.Duration
}

// NewService makes the service; deliver may be nil.
func NewService(st store.Store, deliver Deliverer, now func() time.Time) *Service {
	return &Service{store: st, deliver: deliver, now: now, lifetime: KeyLifetimeSeconds * time.Second}
}

// ShortenLifetime makes pushed keys live d (between 1 s and 60 s), for
// tests of expiry.
func (s *Service) ShortenLifetime(d time.Duration) {
	if d >= time.Second && d < KeyLifetimeSeconds*time.Second {
		s.lifetime = d.Truncate(time.Second)
	}
}

// PushInput is a validated SendSSHPublicKey request.
type PushInput struct {
	RequestID string
	Instance  store.Instance
	OSUser    string
	Key       *PublicKey
	CallerARN string
}

// Push records a key for 60 seconds and delivers it. The caller has
// authorized the request and looked the instance up.
func (s *Service) Push(ctx context.Context, in PushInput) (store.KeyRecord, error) {
	rec, wait, err := s.PushQueued(ctx, in)
	if err != nil {
		return rec, err
	}
	return rec, wait()
}

// KeyQueuer is a store that can queue a key record to commit with the
// next write instead of in a commit of its own (both engines do).
type KeyQueuer interface {
	QueueKeyRecord(ctx context.Context, r store.KeyRecord) func() error
}

// PushQueued is Push with the key record's write queued, not waited for:
// it returns once the agent has acknowledged the key, with the function
// that waits for the record's commit. SendSSHPublicKey calls it after
// recording its audit event, so that the record commits in the event's
// transaction (one commit per call instead of two). wait must be called
// whenever err is nil.
func (s *Service) PushQueued(ctx context.Context, in PushInput) (rec store.KeyRecord, wait func() error, err error) {
	switch in.Instance.State {
	case store.StateRunning, store.StatePending:
	case store.StateStopped:
		// "stopped" is how a host whose agent is not connected shows
		// (the gateway sets it when the agent goes away): the host may
		// come back at any time, so this is EC2InstanceUnavailableException,
		// as for any agent that cannot take the key, and not a state error.
		return store.KeyRecord{}, nil, apierr.New(apierr.Unavailable, "The agent of instance %s is not connected; the host may be down or unable to reach the server. Try again later.", in.Instance.ID)
	default:
		return store.KeyRecord{}, nil, apierr.WithCode(apierr.InvalidState, "", "Instance %s is %s; keys can be pushed only to running instances.", in.Instance.ID, in.Instance.State)
	}
	now := s.now().UTC()
	rec = store.KeyRecord{
		RequestID: in.RequestID, InstanceID: in.Instance.ID, OSUser: in.OSUser,
		PublicKey: in.Key.Line, Fingerprint: in.Key.Fingerprint, CallerARN: in.CallerARN,
		CreatedAt: now, ExpiresAt: now.Add(s.lifetime),
	}
	// Deliver first, then record: the store's active records are keys a
	// host really holds, not attempts that never arrived.
	if s.deliver != nil {
		if err := s.deliver.Deliver(ctx, rec); err != nil {
			return rec, nil, err
		}
	}
	if q, ok := s.store.(KeyQueuer); ok {
		w := q.QueueKeyRecord(ctx, rec)
		return rec, func() error {
			if err := w(); err != nil {
				return apierr.Wrap(err, "recording the key")
			}
			return nil
		}, nil
	}
	if err := s.store.PutKeyRecord(ctx, rec); err != nil {
		return rec, nil, apierr.Wrap(err, "recording the key")
	}
	return rec, func() error { return nil }, nil
}
