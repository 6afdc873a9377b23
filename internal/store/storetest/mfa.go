package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/store"
)

func mfaSerial(path, name string) string {
	return "arn:aws:iam::" + account + ":mfa" + path + name
}

func newMFADevice(n int, path, name string) store.MFADevice {
	return store.MFADevice{
		SerialNumber: mfaSerial(path, name), Name: name, Path: path,
		SeedCiphertext: []byte(fmt.Sprintf("sealed seed %d \x00\xff", n)),
		CreateDate:     at(time.Duration(n) * time.Second),
	}
}

func getMFADevice(t *testing.T, s store.Store, serial string) store.MFADevice {
	t.Helper()
	d, err := s.GetMFADevice(ctxOf(t), serial)
	must(t, err)
	return d
}

func serials(ds []store.MFADevice) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.SerialNumber)
	}
	return out
}

func testMFADevices(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	newUser(t, s, 1, "alice")
	newUser(t, s, 2, "bob")
	d := newMFADevice(1, "/", "alice-phone")
	d.Tags = []store.Tag{{Key: "team", Value: "ops"}, {Key: "Env", Value: ""}}
	must(t, s.CreateMFADevice(ctx, d))
	d2 := newMFADevice(2, "/team/", "spare")
	must(t, s.CreateMFADevice(ctx, d2))

	wantErr(t, s.CreateMFADevice(ctx, d), store.ErrExists, "CreateMFADevice again")
	dup := newMFADevice(3, "/", "ALICE-PHONE")
	wantErr(t, s.CreateMFADevice(ctx, dup), store.ErrExists, "CreateMFADevice differing in case")

	equal(t, "GetMFADevice", getMFADevice(t, s, d.SerialNumber), d)
	equal(t, "GetMFADevice in another case", getMFADevice(t, s, strings.ToUpper(d.SerialNumber)), d)
	_, err := s.GetMFADevice(ctx, mfaSerial("/", "nothing"))
	wantErr(t, err, store.ErrNotFound, "GetMFADevice unknown")

	all, err := s.ListVirtualMFADevices(ctx)
	must(t, err)
	equal(t, "ListVirtualMFADevices", all, []store.MFADevice{d, d2})
	mine, err := s.ListMFADevices(ctx, "alice")
	must(t, err)
	equal(t, "ListMFADevices before enabling", len(mine), 0)
	_, err = s.ListMFADevices(ctx, "nobody")
	wantErr(t, err, store.ErrNotFound, "ListMFADevices of an unknown user")

	// Enable.
	wantErr(t, s.EnableMFADevice(ctx, "nobody", d.SerialNumber, 100, at(time.Hour)), store.ErrNotFound, "EnableMFADevice unknown user")
	wantErr(t, s.EnableMFADevice(ctx, "alice", mfaSerial("/", "nothing"), 100, at(time.Hour)), store.ErrNotFound, "EnableMFADevice unknown device")
	must(t, s.EnableMFADevice(ctx, "ALICE", strings.ToUpper(d.SerialNumber), 100, at(time.Hour)))
	d.UserName, d.EnableDate, d.LastStep = "alice", at(time.Hour), 100
	equal(t, "GetMFADevice after enabling", getMFADevice(t, s, d.SerialNumber), d)
	wantErr(t, s.EnableMFADevice(ctx, "bob", d.SerialNumber, 200, at(time.Hour)), store.ErrExists, "EnableMFADevice for a second user")
	wantErr(t, s.EnableMFADevice(ctx, "alice", d.SerialNumber, 200, at(time.Hour)), store.ErrExists, "EnableMFADevice twice")
	equal(t, "LastStep after refused enables", getMFADevice(t, s, d.SerialNumber).LastStep, int64(100))
	mine, err = s.ListMFADevices(ctx, "Alice")
	must(t, err)
	equal(t, "ListMFADevices", mine, []store.MFADevice{d})
	theirs, err := s.ListMFADevices(ctx, "bob")
	must(t, err)
	equal(t, "ListMFADevices of another user", len(theirs), 0)

	// A user with a device cannot be deleted, nor an enabled device.
	wantErr(t, s.DeleteUser(ctx, "alice"), store.ErrConflict, "DeleteUser with an MFA device")
	wantErr(t, s.DeleteMFADevice(ctx, d.SerialNumber), store.ErrConflict, "DeleteMFADevice while enabled")

	// Deactivate.
	wantErr(t, s.DeactivateMFADevice(ctx, "bob", d.SerialNumber), store.ErrNotFound, "DeactivateMFADevice of another user")
	wantErr(t, s.DeactivateMFADevice(ctx, "alice", d2.SerialNumber), store.ErrNotFound, "DeactivateMFADevice not enabled")
	wantErr(t, s.DeactivateMFADevice(ctx, "nobody", d.SerialNumber), store.ErrNotFound, "DeactivateMFADevice unknown user")
	must(t, s.DeactivateMFADevice(ctx, "alice", d.SerialNumber))
	d.UserName, d.EnableDate = "", time.Time{}
	equal(t, "GetMFADevice after deactivating (LastStep stays)", getMFADevice(t, s, d.SerialNumber), d)

	// Enabling again never lowers LastStep: codes already used stay used.
	must(t, s.EnableMFADevice(ctx, "bob", d.SerialNumber, 50, at(2*time.Hour)))
	equal(t, "LastStep after enabling with an earlier step", getMFADevice(t, s, d.SerialNumber).LastStep, int64(100))
	must(t, s.DeactivateMFADevice(ctx, "bob", d.SerialNumber))

	// Delete.
	must(t, s.DeleteMFADevice(ctx, d.SerialNumber))
	wantErr(t, s.DeleteMFADevice(ctx, d.SerialNumber), store.ErrNotFound, "DeleteMFADevice twice")
	_, err = s.GetMFADevice(ctx, d.SerialNumber)
	wantErr(t, err, store.ErrNotFound, "GetMFADevice after delete")
	must(t, s.DeleteUser(ctx, "alice"))
	all, err = s.ListVirtualMFADevices(ctx)
	must(t, err)
	equal(t, "ListVirtualMFADevices after delete", serials(all), []string{d2.SerialNumber})
}

func testMFASteps(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	d := newMFADevice(1, "/", "dev")
	must(t, s.CreateMFADevice(ctx, d))
	for _, c := range []struct {
		step int64
		want bool
	}{{10, true}, {10, false}, {9, false}, {11, true}, {1 << 40, true}, {11, false}} {
		got, err := s.AdvanceMFAStep(ctx, d.SerialNumber, c.step)
		must(t, err)
		if got != c.want {
			t.Fatalf("AdvanceMFAStep(%d) = %v, want %v", c.step, got, c.want)
		}
	}
	equal(t, "LastStep", getMFADevice(t, s, d.SerialNumber).LastStep, int64(1<<40))
	_, err := s.AdvanceMFAStep(ctx, mfaSerial("/", "nothing"), 5)
	wantErr(t, err, store.ErrNotFound, "AdvanceMFAStep unknown device")

	// A sign-in is no IAM change: policy caches stay.
	g, err := s.IAMGeneration(ctx)
	must(t, err)
	if _, err := s.AdvanceMFAStep(ctx, d.SerialNumber, 1<<41); err != nil {
		t.Fatal(err)
	}
	g2, err := s.IAMGeneration(ctx)
	must(t, err)
	equal(t, "IAMGeneration after AdvanceMFAStep", g2, g)
	newUser(t, s, 1, "alice")
	g, _ = s.IAMGeneration(ctx)
	must(t, s.EnableMFADevice(ctx, "alice", d.SerialNumber, 1, at(0)))
	if g2, _ = s.IAMGeneration(ctx); g2 <= g {
		t.Fatalf("IAMGeneration after EnableMFADevice: %d, want more than %d", g2, g)
	}
}

// Replicas racing with one code: exactly one accepts it.
func testMFAStepRace(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	d := newMFADevice(1, "/", "dev")
	must(t, s.CreateMFADevice(ctx, d))
	for step := int64(1); step <= 3; step++ {
		const n = 16
		won := make([]bool, n)
		errs := make([]error, n)
		run(n, func(i int) { won[i], errs[i] = s.AdvanceMFAStep(ctx, d.SerialNumber, step) })
		count := 0
		for i := range n {
			must(t, errs[i])
			if won[i] {
				count++
			}
		}
		equal(t, fmt.Sprintf("winners for step %d", step), count, 1)
	}
}

func testMFAQuota(t *testing.T, s store.Store) {
	ctx := ctxOf(t)
	newUser(t, s, 1, "alice")
	for i := range store.MaxMFADevicesPerUser + 1 {
		d := newMFADevice(i, "/", fmt.Sprintf("d%d", i))
		must(t, s.CreateMFADevice(ctx, d))
		err := s.EnableMFADevice(ctx, "alice", d.SerialNumber, 1, at(0))
		if i < store.MaxMFADevicesPerUser {
			must(t, err)
		} else {
			wantErr(t, err, store.ErrLimitExceeded, "EnableMFADevice over the quota")
			if dd := getMFADevice(t, s, d.SerialNumber); dd.UserName != "" {
				t.Fatalf("the refused device is assigned to %q", dd.UserName)
			}
		}
	}
	mine, err := s.ListMFADevices(ctx, "alice")
	must(t, err)
	if len(mine) != store.MaxMFADevicesPerUser {
		t.Fatalf("ListMFADevices: %d devices", len(mine))
	}
	if err := s.DeleteUser(ctx, "alice"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("DeleteUser with devices: %v", err)
	}
}
