package keyrecord

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"
)

func sample(now time.Time) Record {
	return Record{
		RequestID: "8c9f3a52-0b1e-4a8e-9d1c-2f3e4a5b6c7d", InstanceID: "i-0123456789abcdef0", OSUser: "ec2-user",
		PublicKey:   "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPi/nbEhqwNTAbv7rW387REgLGVetylSgMQMSY7eUggz",
		Fingerprint: "SHA256:" + strings.Repeat("A", 43), CallerARN: "arn:aws:iam::123456789012:user/alice",
		IssuedAt: now.Unix(), ExpiresAt: now.Unix() + 60,
	}
}

func TestSignVerify(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Unix(1_800_000_000, 0)
	r := sample(now)
	if err := r.Sign(priv); err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(pub, "i-0123456789abcdef0", "ec2-user", now.Add(59*time.Second)); err != nil {
		t.Fatalf("valid record refused: %v", err)
	}
	if err := r.Verify(pub, "i-0123456789abcdef0", "", now); err != nil {
		t.Fatalf("any user: %v", err)
	}
	for name, tt := range map[string]struct {
		mut  func(*Record)
		pub  ed25519.PublicKey
		inst string
		user string
		at   time.Time
		want error
	}{
		"other server key":  {pub: otherPub, want: ErrSignature},
		"other instance":    {inst: "i-0000000000000000f", want: ErrInstance},
		"other user":        {user: "root", want: ErrUser},
		"expired":           {at: now.Add(60 * time.Second), want: ErrExpired},
		"tampered user":     {mut: func(r *Record) { r.OSUser = "root" }, user: "root", want: ErrSignature},
		"tampered key":      {mut: func(r *Record) { r.PublicKey = strings.Replace(r.PublicKey, "Pi", "Pj", 1) }, want: ErrSignature},
		"tampered expiry":   {mut: func(r *Record) { r.ExpiresAt += 10; r.IssuedAt += 10 }, want: ErrSignature},
		"tampered caller":   {mut: func(r *Record) { r.CallerARN = "arn:aws:iam::123456789012:user/bob" }, want: ErrSignature},
		"tampered instance": {mut: func(r *Record) { r.InstanceID = "i-0000000000000000f" }, inst: "i-0000000000000000f", want: ErrSignature},
		"signature cut":     {mut: func(r *Record) { r.Signature = r.Signature[:10] }, want: ErrSignature},
		"no signature":      {mut: func(r *Record) { r.Signature = nil }, want: ErrSignature},
	} {
		t.Run(name, func(t *testing.T) {
			c := r
			c.Signature = append([]byte(nil), r.Signature...)
			if tt.mut != nil {
				tt.mut(&c)
			}
			pk, inst, user, at := pub, "i-0123456789abcdef0", "ec2-user", now
			if tt.pub != nil {
				pk = tt.pub
			}
			if tt.inst != "" {
				inst = tt.inst
			}
			if tt.user != "" {
				user = tt.user
			}
			if !tt.at.IsZero() {
				at = tt.at
			}
			if err := c.Verify(pk, inst, user, at); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCheckRefusesInjection(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Unix(1_800_000_000, 0)
	for name, mut := range map[string]func(*Record){
		"newline in user":     func(r *Record) { r.OSUser = "a\nb" },
		"quote in ARN":        func(r *Record) { r.CallerARN = `arn:aws:iam::123456789012:user/a"b` },
		"option before key":   func(r *Record) { r.PublicKey = `command="sh" ` + r.PublicKey },
		"second line in key":  func(r *Record) { r.PublicKey += "\nssh-ed25519 AAAA" },
		"comment in key":      func(r *Record) { r.PublicKey += " comment" },
		"sk key":              func(r *Record) { r.PublicKey = "sk-ssh-ed25519@openssh.com AAAA" },
		"space in request":    func(r *Record) { r.RequestID = "a b" },
		"lifetime over 60s":   func(r *Record) { r.ExpiresAt = r.IssuedAt + 3600 },
		"expiry before issue": func(r *Record) { r.ExpiresAt = r.IssuedAt - 1 },
		"bad fingerprint":     func(r *Record) { r.Fingerprint = "MD5:aa" },
		"bad instance":        func(r *Record) { r.InstanceID = "i-XYZ" },
	} {
		r := sample(now)
		mut(&r)
		if err := r.Sign(priv); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
}

func TestAuthorizedKeysLine(t *testing.T) {
	r := sample(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	got := r.AuthorizedKeysLine(-30*time.Second, true)
	want := `expiry-time="20261128120030Z" ` + r.PublicKey
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if plain := r.AuthorizedKeysLine(0, false); strings.Contains(plain, "expiry-time") || !strings.HasPrefix(plain, "ssh-ed25519 ") {
		t.Errorf("without the option: %s", plain)
	}
}

// FuzzRecord: whatever a record holds, Sign accepts it only when the line
// for sshd is a single line with no option but expiry-time.
func FuzzRecord(f *testing.F) {
	f.Add("req-1", "i-0123456789abcdef0", "ec2-user", "ssh-ed25519 AAAA", "arn:aws:iam::123456789012:user/a", int64(60))
	f.Add("r", "i-01234567", "a\n", "ssh-rsa AAAA=\n", "arn:aws:iam::123456789012:root", int64(61))
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	f.Fuzz(func(t *testing.T, req, inst, user, key, arn string, life int64) {
		r := Record{RequestID: req, InstanceID: inst, OSUser: user, PublicKey: key, Fingerprint: "SHA256:" + strings.Repeat("B", 43),
			CallerARN: arn, IssuedAt: 1_800_000_000, ExpiresAt: 1_800_000_000 + life}
		if r.Sign(priv) != nil {
			return
		}
		line := r.AuthorizedKeysLine(0, true)
		if strings.ContainsAny(line, "\n\r\x00") || strings.Count(line, `"`) != 2 || !strings.HasPrefix(line, `expiry-time="`) {
			t.Fatalf("unsafe line %q", line)
		}
		if life > MaxLifetime || life <= 0 {
			t.Fatalf("lifetime %d signed", life)
		}
	})
}
