package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

// Maintenance runs the conformance tests of store.Maintenance (the
// server lock and the master-key rotation's re-seal), a separate entry
// point from Run, as AgentSessions. open is Run's.
func Maintenance(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, m store.Maintenance)
	}{
		{"Reseal", testReseal},
		{"ResealRollsBack", testResealRollsBack},
		{"ServerLock", testServerLock},
		{"UpdateMeta", testUpdateMeta},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			m, ok := st.(store.Maintenance)
			if !ok {
				t.Fatalf("%T does not implement store.Maintenance", st)
			}
			tc.fn(t, st, m)
		})
	}
}

// resealFixture fills s with a root key, a user's key, two MFA devices
// (one enabled) and meta values, and returns what each sealed value holds
// by kind and owner.
func resealFixture(t *testing.T, s store.Store) map[string][]byte {
	ctx := ctxOf(t)
	want := map[string][]byte{}
	newUser(t, s, 1, "alice")
	for i, user := range []string{"", "alice"} {
		k := store.AccessKey{ID: keyID(i + 1), UserName: user, SecretCiphertext: []byte(fmt.Sprintf("sealed secret %d \x00\xff", i)),
			Status: store.StatusActive, CreateDate: at(time.Duration(i) * time.Second)}
		must(t, s.CreateAccessKey(ctx, k))
		want[sealedID(store.SealedAccessKeySecret, k.ID)] = k.SecretCiphertext
	}
	for i, name := range []string{"alice-phone", "spare"} {
		d := newMFADevice(i+1, "/", name)
		must(t, s.CreateMFADevice(ctx, d))
		want[sealedID(store.SealedMFASeed, d.SerialNumber)] = d.SeedCiphertext
	}
	must(t, s.EnableMFADevice(ctx, "alice", mfaSerial("/", "alice-phone"), 7, at(time.Minute)))
	for _, k := range []string{"sealed_a", "sealed_b"} {
		v := `{"key":"` + k + `"}`
		_, err := s.InitMeta(ctx, k, v)
		must(t, err)
		want[sealedID(store.SealedMeta, k)] = []byte(v)
	}
	_, err := s.InitMeta(ctx, "plain", "not sealed")
	must(t, err)
	return want
}

// readSealed reads back what resealFixture wrote.
func readSealed(t *testing.T, s store.Store) map[string][]byte {
	ctx := ctxOf(t)
	got := map[string][]byte{}
	for _, user := range []string{"", "alice"} {
		keys, err := s.ListAccessKeys(ctx, user)
		must(t, err)
		for _, k := range keys {
			got[sealedID(store.SealedAccessKeySecret, k.ID)] = k.SecretCiphertext
		}
	}
	ds, err := s.ListVirtualMFADevices(ctx)
	must(t, err)
	for _, d := range ds {
		got[sealedID(store.SealedMFASeed, d.SerialNumber)] = d.SeedCiphertext
	}
	for _, k := range []string{"sealed_a", "sealed_b"} {
		v, ok, err := s.GetMeta(ctx, k)
		must(t, err)
		if ok {
			got[sealedID(store.SealedMeta, k)] = []byte(v)
		}
	}
	return got
}

func testReseal(t *testing.T, s store.Store, m store.Maintenance) {
	ctx := ctxOf(t)
	before := resealFixture(t, s)
	gen0, err := s.IAMGeneration(ctx)
	must(t, err)
	seen := map[string]bool{}
	n, err := m.ResealSecrets(ctx, []string{"sealed_a", "sealed_b", "never_set"}, func(v store.SealedValue) ([]byte, error) {
		id := sealedID(v.Kind, v.Owner)
		if seen[id] {
			t.Errorf("%s %s offered twice", v.Kind, v.Owner)
		}
		seen[id] = true
		if old, ok := before[id]; !ok || !bytes.Equal(old, v.Value) {
			t.Errorf("%s %s offered as %q, want %q", v.Kind, v.Owner, v.Value, old)
		}
		return append([]byte("resealed:"), v.Value...), nil
	})
	must(t, err)
	equal(t, "values rewritten", n, len(before))
	equal(t, "values offered", len(seen), len(before))
	after := readSealed(t, s)
	equal(t, "values after", len(after), len(before))
	for id, old := range before {
		if want := append([]byte("resealed:"), old...); !bytes.Equal(after[id], want) {
			t.Errorf("%s after the re-seal: %q, want %q", id, after[id], want)
		}
	}
	// What was not named stays, and the rest of each row is unchanged.
	v, _, err := s.GetMeta(ctx, "plain")
	must(t, err)
	equal(t, "unsealed meta", v, "not sealed")
	_, ok, err := s.GetMeta(ctx, "never_set")
	must(t, err)
	equal(t, "a missing meta key stays missing", ok, false)
	k, err := s.GetAccessKey(ctx, keyID(2))
	must(t, err)
	equal(t, "key's owner and status", [2]string{k.UserName, k.Status}, [2]string{"alice", store.StatusActive})
	mine, err := s.ListMFADevices(ctx, "alice")
	must(t, err)
	equal(t, "alice's enabled device", len(mine), 1)
	equal(t, "its last step", mine[0].LastStep, int64(7))
	// Cached access keys would only matter to a running server, which the
	// lock keeps away; the generation need not move, but must not go back.
	gen1, err := s.IAMGeneration(ctx)
	must(t, err)
	if gen1 < gen0 {
		t.Fatalf("IAM generation went back: %d → %d", gen0, gen1)
	}
	// A callback's error is the re-seal's.
	n, err = m.ResealSecrets(ctx, nil, func(store.SealedValue) ([]byte, error) { return nil, errors.New("refused") })
	if err == nil || n != 0 {
		t.Fatalf("re-seal whose callback fails: n=%d err=%v, want an error", n, err)
	}
}

func testResealRollsBack(t *testing.T, s store.Store, m store.Maintenance) {
	ctx := ctxOf(t)
	before := resealFixture(t, s)
	boom := errors.New("injected failure")
	// Fail at each position in turn: whatever was rewritten before the
	// failure is rolled back.
	for failAt := 1; failAt <= len(before); failAt++ {
		calls := 0
		n, err := m.ResealSecrets(ctx, []string{"sealed_a", "sealed_b"}, func(v store.SealedValue) ([]byte, error) {
			calls++
			if calls == failAt {
				return nil, boom
			}
			return []byte("half done"), nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("failing at value %d: err %v, want the injected failure", failAt, err)
		}
		equal(t, "count after a failure", n, 0)
		after := readSealed(t, s)
		for id, old := range before {
			if !bytes.Equal(after[id], old) {
				t.Fatalf("failing at value %d: %s is %q, want %q untouched", failAt, id, after[id], old)
			}
		}
	}
}

func testServerLock(t *testing.T, _ store.Store, m store.Maintenance) {
	ctx := ctxOf(t)
	if s, ok := m.(store.SingleServer); ok && s.SingleServer() {
		testSingleServerLock(t, m)
		return
	}
	// Replicas: any number of servers at once.
	r1, err := m.LockServer(ctx)
	must(t, err)
	r2, err := m.LockServer(ctx)
	must(t, err)
	_, err = m.LockMaintenance(ctx)
	wantErr(t, err, store.ErrLocked, "LockMaintenance while two servers run")
	must(t, r1())
	_, err = m.LockMaintenance(ctx)
	wantErr(t, err, store.ErrLocked, "LockMaintenance while one server runs")
	must(t, r2())

	mr, err := m.LockMaintenance(ctx)
	must(t, err)
	_, err = m.LockServer(ctx)
	wantErr(t, err, store.ErrLocked, "LockServer during maintenance")
	_, err = m.LockMaintenance(ctx)
	wantErr(t, err, store.ErrLocked, "LockMaintenance during maintenance")
	must(t, mr())

	r3, err := m.LockServer(ctx)
	must(t, err)
	must(t, r3())
}

// testSingleServerLock: one server at a time, and maintenance excluded
// while it runs, as on any engine.
func testSingleServerLock(t *testing.T, m store.Maintenance) {
	ctx := ctxOf(t)
	r1, err := m.LockServer(ctx)
	must(t, err)
	_, err = m.LockServer(ctx)
	wantErr(t, err, store.ErrLocked, "LockServer while a server runs (single-server engine)")
	_, err = m.LockMaintenance(ctx)
	wantErr(t, err, store.ErrLocked, "LockMaintenance while a server runs")
	must(t, r1())

	mr, err := m.LockMaintenance(ctx)
	must(t, err)
	_, err = m.LockServer(ctx)
	wantErr(t, err, store.ErrLocked, "LockServer during maintenance")
	must(t, mr())

	r2, err := m.LockServer(ctx)
	must(t, err)
	must(t, r2())
}

func sealedID(k store.SealedKind, owner string) string { return k.String() + " " + owner }
