package bootstrap

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/iam"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
)

func TestEnsureTLS(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	names := []string{"localhost", "127.0.0.1", "::1", "kaginashi.example"}
	cert, files, err := EnsureTLS(dir, names, now)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(files.CA)
	block, _ := pem.Decode(caPEM)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.IsCA {
		t.Fatalf("ca.pem: %v", err)
	}
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, n := range []string{"localhost", "127.0.0.1", "::1", "kaginashi.example"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: pool, CurrentTime: now}); err != nil {
			t.Errorf("certificate not valid for %s: %v", n, err)
		}
	}
	for _, f := range []string{files.CAKey, files.Key} {
		if fi, _ := os.Stat(f); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", f, fi.Mode().Perm())
		}
	}
	// Same names: the certificate is kept.
	again, _, err := EnsureTLS(dir, names, now.Add(24*time.Hour))
	if err != nil || !bytes.Equal(again.Certificate[0], cert.Certificate[0]) {
		t.Errorf("certificate reissued without need: %v", err)
	}
	// A new name: reissued by the same CA.
	more, _, err := EnsureTLS(dir, append(names, "other.example"), now)
	if err != nil || bytes.Equal(more.Certificate[0], cert.Certificate[0]) {
		t.Fatalf("certificate not reissued for a new name: %v", err)
	}
	ml, _ := x509.ParseCertificate(more.Certificate[0])
	if _, err := ml.Verify(x509.VerifyOptions{DNSName: "other.example", Roots: pool, CurrentTime: now}); err != nil {
		t.Errorf("reissued certificate: %v", err)
	}
	// Near expiry: renewed.
	late := now.Add(certLifetime - 10*24*time.Hour)
	renewed, _, err := EnsureTLS(dir, append(names, "other.example"), late)
	if err != nil || bytes.Equal(renewed.Certificate[0], more.Certificate[0]) {
		t.Errorf("expiring certificate not renewed: %v", err)
	}
}

func TestIdentityAndRootCredentials(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id, err := EnsureIdentity(ctx, st, "", "")
	if err != nil || iam.ValidAccountID(id.Account) != nil || id.Region != DefaultRegion {
		t.Fatalf("identity %+v: %v", id, err)
	}
	if again, err := EnsureIdentity(ctx, st, id.Account, ""); err != nil || again != id {
		t.Fatalf("restart with the same account: %+v %v", again, err)
	}
	if _, err := EnsureIdentity(ctx, st, "111122223333", ""); err == nil || !strings.Contains(err.Error(), id.Account) {
		t.Errorf("a different --account-id was accepted: %v", err)
	}
	if _, err := EnsureIdentity(ctx, st, "", "eu-west-1"); err == nil {
		t.Error("a different --region was accepted")
	}

	sealer, _ := seal.New(bytes.Repeat([]byte{1}, seal.KeySize))
	svc := iam.NewService(st, sealer, id.Account, id.Region, time.Now)
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	var out bytes.Buffer
	akid, err := EnsureRootCredentials(ctx, svc, st, sealer, dir, getenv, &out)
	if err != nil {
		t.Fatal(err)
	}
	file, _ := os.ReadFile(filepath.Join(dir, RootCredentialsFile))
	if !strings.Contains(string(file), "["+RootProfile+"]\naws_access_key_id = "+akid+"\naws_secret_access_key = ") {
		t.Errorf("credentials file:\n%s", file)
	}
	if fi, _ := os.Stat(filepath.Join(dir, RootCredentialsFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode %v", fi.Mode().Perm())
	}
	if !strings.Contains(out.String(), akid) {
		t.Errorf("credentials not printed: %q", out.String())
	}
	out.Reset()
	again, err := EnsureRootCredentials(ctx, svc, st, sealer, dir, getenv, &out)
	if err != nil || again != akid || out.Len() != 0 {
		t.Errorf("second start: %q %v, printed %q", again, err, out.String())
	}

	env[EnvRootAccessKeyID], env[EnvRootSecretAccessKey] = "AKIAENVROOTKEY000001", "env-secret-0123456789-abcdefghij"
	if got, err := EnsureRootCredentials(ctx, svc, st, sealer, dir, getenv, &out); err != nil || got != "AKIAENVROOTKEY000001" {
		t.Fatalf("env root key: %q %v", got, err)
	}
	if _, err := EnsureRootCredentials(ctx, svc, st, sealer, dir, getenv, &out); err != nil {
		t.Fatalf("env root key on restart: %v", err)
	}
	env[EnvRootSecretAccessKey] = "another-secret-0123456789-abcdefgh"
	if _, err := EnsureRootCredentials(ctx, svc, st, sealer, dir, getenv, &out); err == nil {
		t.Error("a different secret for the same root key ID was accepted")
	}
	delete(env, EnvRootSecretAccessKey)
	if _, err := EnsureRootCredentials(ctx, svc, st, sealer, dir, getenv, &out); err == nil {
		t.Error("half the env credentials were accepted")
	}
}

func TestOpenSealer(t *testing.T) {
	ctx := context.Background()
	t.Setenv(seal.EnvKey, "")
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keyPath := filepath.Join(dir, "master.key")

	// A new deployment creates its key.
	if _, err := OpenSealer(ctx, st, keyPath, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureIdentity(ctx, st, "", ""); err != nil {
		t.Fatal(err)
	}
	// The same key opens it again.
	if _, err := OpenSealer(ctx, st, keyPath, nil); err != nil {
		t.Fatalf("same key: %v", err)
	}
	// A lost key is not silently replaced.
	if err := os.Rename(keyPath, keyPath+".bak"); err != nil {
		t.Fatal(err)
	}
	_, err = OpenSealer(ctx, st, keyPath, nil)
	if err == nil || !strings.Contains(err.Error(), "restore master.key") {
		t.Fatalf("missing key: %v", err)
	}
	if _, serr := os.Stat(keyPath); serr == nil {
		t.Fatal("a new master key was written next to an initialized database")
	}
	// Another key is refused with the fix.
	other, _, err := seal.LoadOrCreate(keyPath)
	if err != nil || len(other) == 0 {
		t.Fatal(err)
	}
	_, err = OpenSealer(ctx, st, keyPath, nil)
	if err == nil || !strings.Contains(err.Error(), "not the one this database") {
		t.Fatalf("wrong key: %v", err)
	}
}
