package bootstrap

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/gateway"
	"github.com/kaginashi/kaginashi/internal/iam"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/postgres"
	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// engines opens an empty store of each engine.
var engines = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"sqlite", func(t *testing.T) store.Store {
		st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "kaginashi.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
	{"postgres", func(t *testing.T) store.Store {
		st, err := postgres.Open(t.Context(), pgtest.Start(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
}

// deployment is a store set up as a server's first start leaves it, plus
// a user's access key and an MFA device, and the plaintexts to expect.
type deployment struct {
	st       store.Store
	dir      string
	secret   string // the user's secret access key
	keyID    string
	serial   string
	seed     string // base32
	signer   []byte // the record-signing key's public half
	caSerial string
}

func newDeployment(t *testing.T, st store.Store) *deployment {
	t.Helper()
	ctx := t.Context()
	d := &deployment{st: st, dir: t.TempDir()}
	sealer, err := OpenSealer(ctx, st, filepath.Join(d.dir, MasterKeyFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := EnsureIdentity(ctx, st, "", "")
	if err != nil {
		t.Fatal(err)
	}
	svc := iam.NewService(st, sealer, id.Account, id.Region, time.Now)
	if _, err := svc.CreateUser(ctx, "alice", "/", "", nil); err != nil {
		t.Fatal(err)
	}
	k, err := svc.CreateAccessKey(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	d.keyID, d.secret = k.ID, k.Secret
	mfa, err := svc.CreateVirtualMFADevice(ctx, "alice-phone", "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	d.serial, d.seed = mfa.SerialNumber, mfa.Base32Seed
	keys, err := gateway.LoadKeys(ctx, st, sealer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d.signer = []byte(keys.Signer.Public().(ed25519.PublicKey))
	d.caSerial = keys.CA.SerialNumber.String()
	return d
}

// check opens every secret with sealer and compares it with what was
// sealed; it returns the first failure.
func (d *deployment) check(ctx context.Context, sealer *seal.Sealer) error {
	k, err := d.st.GetAccessKey(ctx, d.keyID)
	if err != nil {
		return err
	}
	secret, err := sealer.Open(k.SecretCiphertext, k.ID)
	if err != nil {
		return errors.New("access key secret: " + err.Error())
	}
	if string(secret) != d.secret {
		return errors.New("access key secret changed")
	}
	dev, err := d.st.GetMFADevice(ctx, d.serial)
	if err != nil {
		return err
	}
	seed, err := sealer.Open(dev.SeedCiphertext, dev.SerialNumber)
	if err != nil {
		return errors.New("MFA seed: " + err.Error())
	}
	if got := strings.TrimRight(b32(seed), "="); got != d.seed {
		return errors.New("MFA seed changed")
	}
	keys, err := gateway.LoadKeys(ctx, d.st, sealer, time.Now())
	if err != nil {
		return err
	}
	if !bytes.Equal([]byte(keys.Signer.Public().(ed25519.PublicKey)), d.signer) || keys.CA.SerialNumber.String() != d.caSerial {
		return errors.New("gateway keys changed")
	}
	return openCanary(ctx, d.st, sealer)
}

func sealerFromFile(t *testing.T, path string) *seal.Sealer {
	t.Helper()
	k, err := ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := seal.New(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRotateMasterKey(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := t.Context()
			d := newDeployment(t, e.open(t))
			keyPath := filepath.Join(d.dir, MasterKeyFile)
			oldSealer := sealerFromFile(t, keyPath)
			oldBytes, _ := os.ReadFile(keyPath)
			now := time.Date(2026, 11, 28, 10, 15, 0, 0, time.UTC)

			res, err := RotateMasterKey(ctx, d.st, RotateOptions{DataDir: d.dir, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			// canary, access key, MFA seed, agent CA, signing key
			if res.Resealed != 5 || res.KeyFile != keyPath || res.FromEnv || res.Completed {
				t.Fatalf("result %+v", res)
			}
			if want := keyPath + ".old-20261128T101500Z"; res.OldKeyFile != want {
				t.Fatalf("old key kept as %q, want %q", res.OldKeyFile, want)
			}
			kept, err := os.ReadFile(res.OldKeyFile)
			if err != nil || !bytes.Equal(kept, oldBytes) {
				t.Fatalf("old key file: %v, same bytes %v", err, bytes.Equal(kept, oldBytes))
			}
			for _, p := range []string{keyPath, res.OldKeyFile} {
				if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("%s: %v %v, want mode 0600", p, err, fi)
				}
			}
			if _, err := os.Stat(keyPath + ".new"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("master.key.new left behind: %v", err)
			}
			if err := d.check(ctx, sealerFromFile(t, keyPath)); err != nil {
				t.Fatalf("new key: %v", err)
			}
			if err := d.check(ctx, oldSealer); err == nil {
				t.Fatal("the old key still opens the database")
			}
			// The server starts with the new key, and would not with the old.
			if _, err := OpenSealer(ctx, d.st, keyPath, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := OpenSealer(ctx, d.st, res.OldKeyFile, nil); err == nil {
				t.Fatal("OpenSealer accepts the old key")
			}

			// Again, to a key of the admin's choosing; the old name is
			// taken, so the second old key gets another.
			want := make([]byte, seal.KeySize)
			rand.Read(want)
			res2, err := RotateMasterKey(ctx, d.st, RotateOptions{DataDir: d.dir, NewKey: want, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			if res2.OldKeyFile == res.OldKeyFile || res2.OldKeyFile == "" {
				t.Fatalf("second old key %q overwrote or lost the first %q", res2.OldKeyFile, res.OldKeyFile)
			}
			if got, _ := ReadKeyFile(keyPath); !bytes.Equal(got, want) {
				t.Fatal("master.key is not the key given")
			}
			if err := d.check(ctx, sealerFromFile(t, keyPath)); err != nil {
				t.Fatal(err)
			}
			// The same key again: nothing to do.
			if _, err := RotateMasterKey(ctx, d.st, RotateOptions{DataDir: d.dir, NewKey: want}); err == nil || !strings.Contains(err.Error(), "is the current one") {
				t.Fatalf("rotating to the current key: %v", err)
			}
		})
	}
}

// A wrong current key is refused before anything is written.
func TestRotateWrongKey(t *testing.T) {
	ctx := t.Context()
	d := newDeployment(t, engines[0].open(t))
	keyPath := filepath.Join(d.dir, MasterKeyFile)
	good := sealerFromFile(t, keyPath)
	os.Rename(keyPath, keyPath+".good")
	wrong := make([]byte, seal.KeySize)
	rand.Read(wrong)
	if err := writeKeyFile(keyPath, wrong); err != nil {
		t.Fatal(err)
	}
	_, err := RotateMasterKey(ctx, d.st, RotateOptions{DataDir: d.dir})
	if err == nil || !strings.Contains(err.Error(), "does not open") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := os.Stat(keyPath + ".new"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a new key was written: %v", err)
	}
	if err := d.check(ctx, good); err != nil {
		t.Fatal(err)
	}
	// No key at all.
	os.Remove(keyPath)
	if _, err := RotateMasterKey(ctx, d.st, RotateOptions{DataDir: d.dir}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing key: %v", err)
	}
	// A store that never held secrets.
	empty := engines[0].open(t)
	if _, err := RotateMasterKey(ctx, empty, RotateOptions{DataDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "nothing to rotate") {
		t.Fatalf("empty store: %v", err)
	}
}

// An interrupted re-seal (an injected failure after some values) loses
// nothing: the old key opens everything, and a rerun succeeds.
func TestRotateInterrupted(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := t.Context()
			d := newDeployment(t, e.open(t))
			keyPath := filepath.Join(d.dir, MasterKeyFile)
			old := sealerFromFile(t, keyPath)
			for _, step := range []string{"new-key-written", "reseal:1", "reseal:3", "reseal:5"} {
				boom := errors.New("injected at " + step)
				_, err := RotateMasterKey(ctx, d.st, RotateOptions{DataDir: d.dir, failAfter: func(s string) error {
					if s == step {
						return boom
					}
					return nil
				}})
				if !errors.Is(err, boom) {
					t.Fatalf("%s: %v", step, err)
				}
				if err := d.check(ctx, old); err != nil {
					t.Fatalf("after a failure at %s the old key does not open everything: %v", step, err)
				}
				if _, err := OpenSealer(ctx, d.st, keyPath, nil); err != nil {
					t.Fatalf("after a failure at %s: %v", step, err)
				}
			}
			if _, err := RotateMasterKey(ctx, d.st, RotateOptions{DataDir: d.dir}); err != nil {
				t.Fatal(err)
			}
			if err := d.check(ctx, sealerFromFile(t, keyPath)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Stopped after the commit, before the rename: the server's start
// finishes the rotation; so does a rerun of the command.
func TestRotateStoppedAfterCommit(t *testing.T) {
	ctx := t.Context()
	stop := func(s string) error {
		if s == "committed" {
			return errors.New("killed")
		}
		return nil
	}
	for _, finish := range []string{"server start", "rerun"} {
		t.Run(finish, func(t *testing.T) {
			d := newDeployment(t, engines[0].open(t))
			keyPath := filepath.Join(d.dir, MasterKeyFile)
			if _, err := RotateMasterKey(ctx, d.st, RotateOptions{DataDir: d.dir, failAfter: stop}); err == nil {
				t.Fatal("no failure")
			}
			newKey := sealerFromFile(t, keyPath+".new")
			if err := d.check(ctx, newKey); err != nil {
				t.Fatalf("committed, yet master.key.new does not open: %v", err)
			}
			switch finish {
			case "server start":
				s, err := OpenSealer(ctx, d.st, keyPath, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := d.check(ctx, s); err != nil {
					t.Fatal(err)
				}
			case "rerun":
				res, err := RotateMasterKey(ctx, d.st, RotateOptions{DataDir: d.dir})
				if err != nil || !res.Completed || res.OldKeyFile == "" {
					t.Fatalf("rerun: %+v %v", res, err)
				}
			}
			if err := d.check(ctx, sealerFromFile(t, keyPath)); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(keyPath + ".new"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("master.key.new left: %v", err)
			}
			olds, _ := filepath.Glob(keyPath + ".old-*")
			if len(olds) != 1 {
				t.Fatalf("old keys kept: %v", olds)
			}
		})
	}
}

// With the key in the environment, the new key stays in master.key.new
// and the admin updates the environment; a server started with the old
// one says so.
func TestRotateEnvKey(t *testing.T) {
	ctx := t.Context()
	st := engines[0].open(t)
	key := make([]byte, seal.KeySize)
	rand.Read(key)
	t.Setenv(seal.EnvKey, b64(key))
	d := newDeployment(t, st)
	keyPath := filepath.Join(d.dir, MasterKeyFile)
	res, err := RotateMasterKey(ctx, st, RotateOptions{DataDir: d.dir})
	if err != nil {
		t.Fatal(err)
	}
	if !res.FromEnv || res.KeyFile != keyPath+".new" || res.OldKeyFile != "" {
		t.Fatalf("result %+v", res)
	}
	if _, err := os.Stat(keyPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("master.key written with the key in the environment: %v", err)
	}
	_, err = OpenSealer(ctx, st, keyPath, nil)
	if err == nil || !strings.Contains(err.Error(), "set "+seal.EnvKey+" to the contents of "+keyPath+".new") {
		t.Fatalf("start with the old environment: %v", err)
	}
	newKey, _ := os.ReadFile(res.KeyFile)
	t.Setenv(seal.EnvKey, strings.TrimSpace(string(newKey)))
	s, err := OpenSealer(ctx, st, keyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.check(ctx, s); err != nil {
		t.Fatal(err)
	}
}

// The server lock keeps rotation and servers apart.
func TestRotateServerRunning(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := t.Context()
			d := newDeployment(t, e.open(t))
			release, err := HoldServerLock(ctx, d.st)
			if err != nil {
				t.Fatal(err)
			}
			_, err = RotateMasterKey(ctx, d.st, RotateOptions{DataDir: d.dir})
			if !errors.Is(err, ErrServerRunning) {
				t.Fatalf("rotation beside a server: %v", err)
			}
			if _, err := os.Stat(filepath.Join(d.dir, "master.key.new")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused rotation wrote a key: %v", err)
			}
			release()
			m := d.st.(store.Maintenance)
			mr, err := m.LockMaintenance(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer mr()
			if _, err := HoldServerLock(ctx, d.st); err == nil || !strings.Contains(err.Error(), "maintenance command (kaginashi server rotate-*)") {
				t.Fatalf("a server starting during maintenance: %v", err)
			}
		})
	}
}

// A second server on one SQLite database is refused with a message that
// says why (it would hold none of the first one's agents); PostgreSQL
// takes replicas.
func TestSecondServerOnSQLite(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := t.Context()
			d := newDeployment(t, e.open(t))
			release, err := HoldServerLock(ctx, d.st)
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			r2, err := HoldServerLock(ctx, d.st)
			if e.name != "sqlite" {
				if err != nil {
					t.Fatalf("a replica on %s: %v", e.name, err)
				}
				r2()
				return
			}
			if err == nil {
				r2()
				t.Fatal("a second server on one SQLite database started")
			}
			if !strings.Contains(err.Error(), "SQLite serves one server at a time") {
				t.Fatalf("second server on SQLite: %v", err)
			}
		})
	}
}

// The gateway's sealed meta values are the ones the rotation re-seals.
func TestSealedMetaKeys(t *testing.T) {
	d := newDeployment(t, engines[0].open(t))
	for _, k := range sealedMeta {
		if _, ok, err := d.st.GetMeta(t.Context(), k); err != nil || !ok {
			t.Errorf("meta %s not set after the server's first start (%v): has the gateway renamed it?", k, err)
		}
	}
}

func b32(b []byte) string { return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b) }
func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// FuzzDecodeKey: a key file's text is either refused or a 32-byte key
// that the server (seal) reads the same way. Base64 padding bits are not
// checked, by either: the key is what the text decodes to.
func FuzzDecodeKey(f *testing.F) {
	f.Add(b64(make([]byte, seal.KeySize)) + "\n")
	f.Add(" " + b64(bytes.Repeat([]byte{0xff}, seal.KeySize)) + "\r\n")
	f.Add(b64(make([]byte, 31)))
	f.Add("not base64!")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := decodeKey(s)
		if err != nil {
			return
		}
		if len(k) != seal.KeySize {
			t.Fatalf("decodeKey(%q) = %x", s, k)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "k"), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv(seal.EnvKey, "")
		if sk, err := seal.Load(filepath.Join(dir, "k")); err != nil || !bytes.Equal(sk, k) {
			t.Fatalf("decodeKey(%q) = %x, the server reads %x, %v", s, k, sk, err)
		}
	})
}

// FuzzResealValue: whatever a meta value holds, re-sealing either fails
// or yields a value the new key opens to what the old key did.
func FuzzResealValue(f *testing.F) {
	oldS, _ := seal.New(bytes.Repeat([]byte{1}, seal.KeySize))
	newS, _ := seal.New(bytes.Repeat([]byte{2}, seal.KeySize))
	ct, _ := oldS.Seal([]byte("secret"), "agent_ca")
	f.Add("agent_ca", `{"cert":"PEM","key":"`+b64(ct)+`"}`)
	f.Add("agent_ca", `{"key":1}`)
	f.Add("record_signing_key", b64(ct))
	f.Add(MetaMasterKeyCheck, "%%%")
	f.Add("other", "x")
	f.Fuzz(func(t *testing.T, owner, value string) {
		out, err := resealValue(oldS, newS, store.SealedValue{Kind: store.SealedMeta, Owner: owner, Value: []byte(value)})
		if err != nil {
			return
		}
		if bytes.Equal(out, []byte(value)) {
			t.Fatalf("re-sealed %s %q unchanged", owner, value)
		}
	})
}
