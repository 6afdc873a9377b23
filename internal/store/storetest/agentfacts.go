package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

// testUpdateAgentFacts: an agent session's write changes only what the
// agent reports (and state, last seen), only while the instance is there
// with that agent key; it never creates one. SetAgentState likewise.
func testUpdateAgentFacts(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	in := newInstance(60)
	in.AgentKey = "SHA256:current"
	in.State = store.StatePending
	must(t, s.PutInstance(ctx, in))

	rep := in
	rep.State, rep.LastSeen = store.StateRunning, at(5*time.Hour)
	rep.Hostname, rep.PrivateIP, rep.IPv6 = "renamed", "10.9.9.9", "fd00::9"
	rep.OSID, rep.OSVersion, rep.OSPrettyName = "ubuntu", "24.04", "Ubuntu 24.04 LTS"
	rep.Platform, rep.Architecture, rep.Kernel, rep.DefaultUser = "Ubuntu", "arm64", "6.8.0", "ubuntu"
	rep.AgentVersion, rep.SSHDVersion = "0.2.0", "OpenSSH_9.6p1"
	rep.HostKeys = []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB new"}
	rep.DefaultUserExists, rep.SSHDConfigured, rep.ClockSkewMillis = true, true, 4321
	// What the session does not own: whatever it carries is not written.
	rep.LaunchTime, rep.AvailabilityZ = at(9*time.Hour), "elsewhere-1a"
	rep.Tags = []store.Tag{{Key: "stale", Value: "copy"}}
	must(t, s.UpdateAgentFacts(ctx, rep))
	got, err := s.GetInstance(ctx, in.ID)
	must(t, err)
	want := rep
	want.LaunchTime, want.AvailabilityZ, want.Tags = in.LaunchTime, in.AvailabilityZ, in.Tags
	equal(t, "instance after UpdateAgentFacts", got, want)

	// No host keys reported: none stored (not a null).
	rep.HostKeys = nil
	must(t, s.UpdateAgentFacts(ctx, rep))
	got, err = s.GetInstance(ctx, in.ID)
	must(t, err)
	equal(t, "host keys after UpdateAgentFacts without any", len(got.HostKeys), 0)

	// Another key (a re-enrollment replaced it) or no instance: nothing
	// written, ErrNotFound.
	stale := rep
	stale.AgentKey, stale.Hostname = "SHA256:replaced", "stale"
	wantErr(t, s.UpdateAgentFacts(ctx, stale), store.ErrNotFound, "UpdateAgentFacts with a replaced key")
	wantErr(t, s.SetAgentState(ctx, in.ID, "SHA256:replaced", store.StateStopped, at(6*time.Hour)), store.ErrNotFound, "SetAgentState with a replaced key")
	got, err = s.GetInstance(ctx, in.ID)
	must(t, err)
	equal(t, "hostname and state after writes with a replaced key", []any{got.Hostname, got.State}, []any{"renamed", store.StateRunning})

	must(t, s.SetAgentState(ctx, in.ID, in.AgentKey, store.StateStopped, at(6*time.Hour)))
	got, err = s.GetInstance(ctx, in.ID)
	must(t, err)
	equal(t, "state and last seen after SetAgentState", []any{got.State, got.LastSeen, got.Hostname}, []any{store.StateStopped, at(6 * time.Hour), "renamed"})

	must(t, s.DeleteInstance(ctx, in.ID))
	wantErr(t, s.UpdateAgentFacts(ctx, rep), store.ErrNotFound, "UpdateAgentFacts of a deleted instance")
	wantErr(t, s.SetAgentState(ctx, in.ID, in.AgentKey, store.StateStopped, at(7*time.Hour)), store.ErrNotFound, "SetAgentState of a deleted instance")
	_, err = s.GetInstance(ctx, in.ID)
	wantErr(t, err, store.ErrNotFound, "GetInstance after UpdateAgentFacts of a deleted instance")
}

// testUpdateAgentFactsRace: a session writing its agent's reports as fast
// as it can, while the instance is re-enrolled (its key replaced) or
// deregistered (deleted): once that write has returned, no report of the
// old key lands — the enrollment's facts and key stay, the deleted
// instance stays deleted. A read-then-write (GetInstance, check the key,
// PutInstance) fails this: a write that read before the enrollment lands
// after it.
func testUpdateAgentFactsRace(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	for round := range 20 {
		in := newInstance(70 + round)
		in.AgentKey = "SHA256:old"
		must(t, s.PutInstance(ctx, in))
		deregister := round%2 == 1

		done := make(chan struct{})
		var (
			mu       sync.Mutex
			returned bool    // the re-enrollment or deletion has returned
			after    []error // results of writes that began after it returned
		)
		var writers sync.WaitGroup
		for w := range 4 {
			writers.Add(1)
			go func() {
				defer writers.Done()
				for i := 0; ; i++ {
					select {
					case <-done:
						return
					default:
					}
					mu.Lock()
					began := returned
					mu.Unlock()
					rep := in
					rep.Hostname = fmt.Sprintf("old-%d-%d", w, i)
					err := s.UpdateAgentFacts(ctx, rep)
					if err != nil && !errors.Is(err, store.ErrNotFound) {
						t.Errorf("UpdateAgentFacts: %v", err)
						return
					}
					if began {
						mu.Lock()
						after = append(after, err)
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(5 * time.Millisecond)
		if deregister {
			must(t, s.DeleteInstance(ctx, in.ID))
		} else {
			re := in
			re.AgentKey, re.Hostname, re.Tags = "SHA256:new", "enrolled", []store.Tag{{Key: "env", Value: "sandbox"}}
			must(t, s.PutInstance(ctx, re))
		}
		mu.Lock()
		returned = true
		mu.Unlock()
		time.Sleep(10 * time.Millisecond)
		close(done)
		writers.Wait()

		for _, err := range after {
			if err == nil {
				t.Fatalf("round %d (deregister %v): a write with the old key that began after the re-enrollment or deletion returned succeeded", round, deregister)
			}
		}
		got, err := s.GetInstance(ctx, in.ID)
		if deregister {
			wantErr(t, err, store.ErrNotFound, fmt.Sprintf("round %d: the instance after its deregistration raced with its agent's writes", round))
			continue
		}
		must(t, err)
		equal(t, fmt.Sprintf("round %d: key, hostname, tags after a re-enrollment raced with the old agent's writes", round),
			[]any{got.AgentKey, got.Hostname, got.Tags}, []any{"SHA256:new", "enrolled", []store.Tag{{Key: "env", Value: "sandbox"}}})
		must(t, s.DeleteInstance(ctx, in.ID))
	}
}

// testReplaceInstance: a re-enrollment's write replaces the instance and
// its tags only while it has the agent key the enrollment read; it never
// re-creates a deleted instance; of two racing with one old key, one wins.
func testReplaceInstance(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	in := newInstance(90)
	in.AgentKey = "SHA256:old"
	must(t, s.PutInstance(ctx, in))

	re := in
	re.AgentKey, re.Hostname, re.LastSeen = "SHA256:new", "enrolled", at(8*time.Hour)
	re.Tags = []store.Tag{{Key: "env", Value: "sandbox"}}
	wantErr(t, s.ReplaceInstance(ctx, re, "SHA256:other"), store.ErrNotFound, "ReplaceInstance with another key")
	got, err := s.GetInstance(ctx, in.ID)
	must(t, err)
	equal(t, "instance after ReplaceInstance with another key", got, in)
	must(t, s.ReplaceInstance(ctx, re, "SHA256:old"))
	got, err = s.GetInstance(ctx, in.ID)
	must(t, err)
	equal(t, "instance after ReplaceInstance", got, re)

	// Two enrollments with the old certificate at once: one lands.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := re
			r.AgentKey = fmt.Sprintf("SHA256:racer%d", i)
			errs[i] = s.ReplaceInstance(ctx, r, "SHA256:new")
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrNotFound):
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d re-enrollments with one old key landed, want 1", won, len(errs))
	}

	must(t, s.DeleteInstance(ctx, in.ID))
	wantErr(t, s.ReplaceInstance(ctx, re, "SHA256:new"), store.ErrNotFound, "ReplaceInstance of a deleted instance")
	_, err = s.GetInstance(ctx, in.ID)
	wantErr(t, err, store.ErrNotFound, "GetInstance after ReplaceInstance of a deleted instance")
	tags, err := s.ResourceTags(ctx, in.ID)
	must(t, err)
	equal(t, "tags after ReplaceInstance of a deleted instance", len(tags), 0)
}
