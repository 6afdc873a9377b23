package iam

import (
	"bytes"
	"context"
	"encoding/base32"
	"image/png"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
	"github.com/kaginashi/kaginashi/policy"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const mfaAccount = "123456789012"

type mfaFixture struct {
	ctx   context.Context
	svc   *Service
	st    store.Store
	clock *fakeClock
}

func newMFAFixture(t testing.TB) *mfaFixture {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sealer, _ := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	// The middle of a time step, so that a few seconds either way stay in it.
	clock := &fakeClock{t: time.Unix(1_800_000_015, 0)}
	svc := NewService(st, sealer, mfaAccount, "us-east-1", clock.now)
	if _, err := svc.CreateUser(ctx, "alice", "", "", nil); err != nil {
		t.Fatal(err)
	}
	return &mfaFixture{ctx: ctx, svc: svc, st: st, clock: clock}
}

// code is the device's code at the step offset steps from now, computed
// from the base32 seed as an authenticator app would.
func (f *mfaFixture) code(t testing.TB, b32 string, offset int64) string {
	t.Helper()
	seed, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(b32)
	if err != nil {
		t.Fatal(err)
	}
	c, err := totpCode(seed, f.clock.now().Unix()/30+offset)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enabled creates a device and enables it for alice with the codes of the
// previous and the current step.
func (f *mfaFixture) enabled(t testing.TB, name string) NewVirtualMFADevice {
	t.Helper()
	d, err := f.svc.CreateVirtualMFADevice(f.ctx, name, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.EnableMFADevice(f.ctx, "alice", d.SerialNumber, f.code(t, d.Base32Seed, -1), f.code(t, d.Base32Seed, 0)); err != nil {
		t.Fatal(err)
	}
	return d
}

func wantKind(t *testing.T, err error, k apierr.Kind, what string) {
	t.Helper()
	if apierr.KindOf(err) != k || err == nil {
		t.Fatalf("%s: %v (kind %v), want kind %v", what, err, apierr.KindOf(err), k)
	}
}

// RFC 6238 appendix B, SHA-1, truncated to 6 digits: the library is used
// the way the RFC means.
func TestTOTPVectors(t *testing.T) {
	seed := []byte("12345678901234567890")
	for _, c := range []struct {
		unix int64
		want string
	}{{59, "287082"}, {1111111109, "081804"}, {1234567890, "005924"}, {2000000000, "279037"}} {
		got, err := totpCode(seed, c.unix/30)
		if err != nil || got != c.want {
			t.Errorf("code at %d = %q %v, want %s", c.unix, got, err, c.want)
		}
	}
}

func TestCreateVirtualMFADevice(t *testing.T) {
	f := newMFAFixture(t)
	d, err := f.svc.CreateVirtualMFADevice(f.ctx, "alice-phone", "/team/", []store.Tag{{Key: "k", Value: "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.SerialNumber != "arn:aws:iam::123456789012:mfa/team/alice-phone" {
		t.Errorf("serial %q", d.SerialNumber)
	}
	if !regexp.MustCompile(`^[A-Z2-7]{64}$`).MatchString(d.Base32Seed) {
		t.Errorf("seed %q: want 64 base32 characters, as AWS's", d.Base32Seed)
	}
	img, err := png.Decode(bytes.NewReader(d.QRCodePNG))
	if err != nil {
		t.Fatalf("QRCodePNG is no PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != mfaQRSize || b.Dy() != mfaQRSize {
		t.Errorf("QR code is %v", b)
	}
	// At rest the seed is sealed: neither its bytes nor its base32 appear.
	stored, err := f.st.GetMFADevice(f.ctx, d.SerialNumber)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(d.Base32Seed)
	if bytes.Contains(stored.SeedCiphertext, raw) || bytes.Contains(stored.SeedCiphertext, []byte(d.Base32Seed)) || len(stored.SeedCiphertext) <= len(raw) {
		t.Error("the seed is stored in the clear")
	}
	if stored.UserName != "" || len(stored.Tags) != 1 {
		t.Errorf("stored %+v", stored)
	}
	other, err := f.svc.CreateVirtualMFADevice(f.ctx, "other", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if other.Base32Seed == d.Base32Seed {
		t.Error("seeds repeat")
	}

	_, err = f.svc.CreateVirtualMFADevice(f.ctx, "ALICE-PHONE", "/team/", nil)
	wantKind(t, err, apierr.AlreadyExists, "CreateVirtualMFADevice duplicate")
	for _, bad := range []struct{ name, path string }{{"", "/"}, {"a b", "/"}, {"x", "nopath"}, {strings.Repeat("a", 227), "/"}} {
		_, err = f.svc.CreateVirtualMFADevice(f.ctx, bad.name, bad.path, nil)
		wantKind(t, err, apierr.InvalidInput, "CreateVirtualMFADevice "+bad.name+" "+bad.path)
	}
}

func TestEnableMFADevice(t *testing.T) {
	f := newMFAFixture(t)
	if _, err := f.svc.CreateUser(f.ctx, "bob", "", "", nil); err != nil {
		t.Fatal(err)
	}
	d, err := f.svc.CreateVirtualMFADevice(f.ctx, "dev", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := func(off int64) string { return f.code(t, d.Base32Seed, off) }
	enable := func(user, serial, c1, c2 string) error {
		return f.svc.EnableMFADevice(f.ctx, user, serial, c1, c2)
	}
	if has, err := f.svc.UserHasMFA(f.ctx, "alice"); err != nil || has {
		t.Fatalf("UserHasMFA before enabling: %v %v", has, err)
	}
	wantCode := func(err error, what string) {
		t.Helper()
		if apierr.As(err).Code != "InvalidAuthenticationCode" {
			t.Fatalf("%s: %v, want InvalidAuthenticationCode", what, err)
		}
	}
	wantCode(enable("alice", d.SerialNumber, c(0), c(0)), "the same code twice")
	wantCode(enable("alice", d.SerialNumber, c(0), c(-1)), "codes in the wrong order")
	wantCode(enable("alice", d.SerialNumber, c(-1), c(1)), "codes not consecutive")
	wantCode(enable("alice", d.SerialNumber, c(-3), c(-2)), "codes too old")
	wantCode(enable("alice", d.SerialNumber, c(1), c(2)), "codes too new")
	wrong := "000000"
	if c(0) == wrong {
		wrong = "111111"
	}
	wantCode(enable("alice", d.SerialNumber, c(-1), wrong), "a wrong code")
	wantKind(t, enable("alice", d.SerialNumber, "12345", c(0)), apierr.InvalidInput, "a short code")
	wantKind(t, enable("alice", d.SerialNumber, "12345a", c(0)), apierr.InvalidInput, "a code with a letter")
	wantKind(t, enable("nobody", d.SerialNumber, c(-1), c(0)), apierr.NotFound, "an unknown user")
	wantKind(t, enable("alice", MFASerial(mfaAccount, "/", "nothing"), c(-1), c(0)), apierr.NotFound, "an unknown device")
	wantKind(t, enable("alice", MFASerial("999999999999", "/", "dev"), c(-1), c(0)), apierr.NotFound, "another account's device")
	wantKind(t, enable("alice", "not a serial", c(-1), c(0)), apierr.InvalidInput, "a malformed serial")

	// The codes of the current and next step work too (the clock is a
	// step behind the phone's).
	if err := enable("alice", d.SerialNumber, c(0), c(1)); err != nil {
		t.Fatalf("EnableMFADevice: %v", err)
	}
	if has, err := f.svc.UserHasMFA(f.ctx, "alice"); err != nil || !has {
		t.Fatalf("UserHasMFA after enabling: %v %v", has, err)
	}
	wantKind(t, enable("bob", d.SerialNumber, c(0), c(1)), apierr.AlreadyExists, "enabling a device in use")
	ds, err := f.svc.ListMFADevices(f.ctx, "alice")
	if err != nil || len(ds) != 1 || ds[0].SerialNumber != d.SerialNumber || !ds[0].EnableDate.Equal(f.clock.now()) {
		t.Fatalf("ListMFADevices: %+v %v", ds, err)
	}
	// The enabling codes are spent: the later one does not sign in.
	if ok, err := f.svc.VerifyMFACode(f.ctx, "alice", c(1)); err != nil || ok {
		t.Fatalf("VerifyMFACode with an enabling code: %v %v", ok, err)
	}
}

func TestVerifyMFACode(t *testing.T) {
	f := newMFAFixture(t)
	d := f.enabled(t, "dev")
	verify := func(code string) bool {
		t.Helper()
		ok, err := f.svc.VerifyMFACode(f.ctx, "alice", code)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	c := func(off int64) string { return f.code(t, d.Base32Seed, off) }

	// The current step's code was used to enable: wait for the next.
	f.clock.add(30 * time.Second)
	if !verify(c(0)) {
		t.Fatal("the current code is refused")
	}
	if verify(c(0)) {
		t.Fatal("a replayed code is accepted")
	}
	if verify(c(-1)) {
		t.Fatal("an earlier step's code is accepted after a later one")
	}
	// One step ahead is within the window; then the current step is spent.
	if !verify(c(1)) {
		t.Fatal("the next step's code is refused")
	}
	f.clock.add(30 * time.Second)
	if verify(c(0)) {
		t.Fatal("a code replayed in its own step is accepted")
	}
	// One step behind is within the window, two are not.
	f.clock.add(60 * time.Second)
	if verify(c(-2)) {
		t.Fatal("a code two steps old is accepted")
	}
	if verify(c(2)) {
		t.Fatal("a code two steps ahead is accepted")
	}
	if !verify(c(-1)) {
		t.Fatal("the previous step's code is refused")
	}
	f.clock.add(30 * time.Second)
	wrong := "123456"
	if c(0) == wrong || c(-1) == wrong || c(1) == wrong {
		wrong = "654321"
	}
	for _, bad := range []string{wrong, "", "12345", "1234567", "12345a", " " + c(0), c(0) + "\n", "１２３４５６"} {
		if verify(bad) {
			t.Fatalf("code %q is accepted", bad)
		}
	}
	if !verify(c(0)) {
		t.Fatal("the right code is refused after wrong ones")
	}

	// Unknown users and users without a device have no code that works.
	if ok, err := f.svc.VerifyMFACode(f.ctx, "nobody", c(0)); ok || err != nil {
		t.Fatalf("VerifyMFACode for an unknown user: %v %v", ok, err)
	}
	if has, err := f.svc.UserHasMFA(f.ctx, "nobody"); has || err != nil {
		t.Fatalf("UserHasMFA for an unknown user: %v %v", has, err)
	}
}

// Several sign-ins racing with one code (several replicas): one wins.
func TestVerifyMFACodeRace(t *testing.T) {
	f := newMFAFixture(t)
	d := f.enabled(t, "dev")
	f.clock.add(30 * time.Second)
	code := f.code(t, d.Base32Seed, 0)
	const n = 12
	var wg sync.WaitGroup
	oks := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { oks[i], errs[i] = f.svc.VerifyMFACode(f.ctx, "alice", code) })
	}
	wg.Wait()
	won := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if oks[i] {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("%d sign-ins accepted one code", won)
	}
}

// A user may hold several devices; a code from any of them works, and the
// replay protection is per device.
func TestVerifyMFACodeSeveralDevices(t *testing.T) {
	f := newMFAFixture(t)
	a := f.enabled(t, "a")
	b := f.enabled(t, "b")
	f.clock.add(30 * time.Second)
	for _, d := range []NewVirtualMFADevice{a, b} {
		if ok, err := f.svc.VerifyMFACode(f.ctx, "alice", f.code(t, d.Base32Seed, 0)); !ok || err != nil {
			t.Fatalf("device %s: %v %v", d.Name, ok, err)
		}
	}
}

func TestDeactivateAndDeleteMFADevice(t *testing.T) {
	f := newMFAFixture(t)
	d := f.enabled(t, "dev")
	f.clock.add(30 * time.Second)

	wantKind(t, f.svc.DeleteVirtualMFADevice(f.ctx, d.SerialNumber), apierr.Conflict, "deleting a device in use")
	wantKind(t, f.svc.DeleteUser(f.ctx, "alice"), apierr.Conflict, "deleting a user with a device")
	if err := f.svc.DeleteUser(f.ctx, "alice"); !strings.Contains(err.Error(), "MFA") {
		t.Errorf("DeleteUser's message does not name MFA devices: %v", err)
	}
	if _, err := f.svc.CreateUser(f.ctx, "bob", "", "", nil); err != nil {
		t.Fatal(err)
	}
	wantKind(t, f.svc.DeactivateMFADevice(f.ctx, "bob", d.SerialNumber), apierr.NotFound, "deactivating another user's device")

	if err := f.svc.DeactivateMFADevice(f.ctx, "alice", d.SerialNumber); err != nil {
		t.Fatal(err)
	}
	// A deactivated device signs no one in.
	if has, err := f.svc.UserHasMFA(f.ctx, "alice"); has || err != nil {
		t.Fatalf("UserHasMFA after deactivating: %v %v", has, err)
	}
	if ok, err := f.svc.VerifyMFACode(f.ctx, "alice", f.code(t, d.Base32Seed, 0)); ok || err != nil {
		t.Fatalf("VerifyMFACode with a deactivated device: %v %v", ok, err)
	}
	wantKind(t, f.svc.DeactivateMFADevice(f.ctx, "alice", d.SerialNumber), apierr.NotFound, "deactivating twice")

	vs, err := f.svc.ListVirtualMFADevices(f.ctx, "Unassigned")
	if err != nil || len(vs) != 1 {
		t.Fatalf("ListVirtualMFADevices Unassigned: %+v %v", vs, err)
	}
	if vs, err = f.svc.ListVirtualMFADevices(f.ctx, "Assigned"); err != nil || len(vs) != 0 {
		t.Fatalf("ListVirtualMFADevices Assigned: %+v %v", vs, err)
	}
	_, err = f.svc.ListVirtualMFADevices(f.ctx, "Some")
	wantKind(t, err, apierr.InvalidInput, "ListVirtualMFADevices with a bad status")

	if err := f.svc.DeleteVirtualMFADevice(f.ctx, d.SerialNumber); err != nil {
		t.Fatal(err)
	}
	wantKind(t, f.svc.DeleteVirtualMFADevice(f.ctx, d.SerialNumber), apierr.NotFound, "deleting twice")
	if err := f.svc.DeleteUser(f.ctx, "alice"); err != nil {
		t.Fatalf("DeleteUser after removing the device: %v", err)
	}
}

// aws:MultiFactorAuthPresent is present for console sessions only: true
// after an MFA sign-in, false after one without, absent for access keys
// (as on AWS for long-term keys), so that "Bool ... true" denies keys.
func TestMultiFactorAuthPresent(t *testing.T) {
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*",
		"Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}]}`
	c, err := policy.ParseAndCompile("mfa-only", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	set := policy.NewSet(c)
	ri := RequestInfo{Time: time.Unix(1_800_000_000, 0)}
	for _, tc := range []struct {
		name string
		p    Principal
		want policy.Decision
	}{
		{"console with MFA", Principal{UserName: "alice", Console: true, MFA: true}, policy.Allowed},
		{"console without MFA", Principal{UserName: "alice", Console: true}, policy.ImplicitDeny},
		{"access key", Principal{UserName: "alice", AccessKeyID: "AKIAEXAMPLEEXAMPLE12"}, policy.ImplicitDeny},
		// MFA without Console is no state the server makes; the key
		// still follows Console alone.
		{"access key claiming MFA", Principal{UserName: "alice", AccessKeyID: "AKIAEXAMPLEEXAMPLE12", MFA: true}, policy.ImplicitDeny},
	} {
		got := set.Decide(&policy.Request{Action: "ec2:DescribeInstances", Resource: "*", Context: BaseContext(&tc.p, ri)})
		if got.Decision != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got.Decision, tc.want)
		}
	}
	p := Principal{UserName: "alice", AccessKeyID: "AKIAEXAMPLEEXAMPLE12"}
	if v := BaseContext(&p, ri).Get("aws:MultiFactorAuthPresent"); v != nil {
		t.Errorf("access-key context has aws:MultiFactorAuthPresent = %v", v)
	}
}

// FuzzVerifyMFACode: whatever a sign-in form sends, VerifyMFACode neither
// fails nor accepts anything but one of the three current codes, each once.
func FuzzVerifyMFACode(f *testing.F) {
	fx := newMFAFixture(f)
	d := fx.enabled(f, "dev")
	fx.clock.add(30 * time.Second)
	valid := map[string]bool{}
	for off := int64(-1); off <= 1; off++ {
		valid[fx.code(f, d.Base32Seed, off)] = true
	}
	for _, seed := range []string{"", "000000", "12345", "1234567", "abcdef", "\x00\x00\x00\x00\x00\x00", "１２３４５６", " 12345", "-12345", "+12345"} {
		f.Add(seed)
	}
	f.Add(fx.code(f, d.Base32Seed, 0))
	accepted := map[string]bool{}
	f.Fuzz(func(t *testing.T, code string) {
		ok, err := fx.svc.VerifyMFACode(fx.ctx, "alice", code)
		if err != nil {
			t.Fatalf("VerifyMFACode(%q): %v", code, err)
		}
		if ok && (!valid[code] || accepted[code]) {
			t.Fatalf("VerifyMFACode(%q) accepted a code that is not current, or twice", code)
		}
		if ok {
			accepted[code] = true
		}
	})
}
