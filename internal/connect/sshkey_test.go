package connect

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func authorizedKey(t testing.TB, pub any) string {
	t.Helper()
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func TestParsePublicKey(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	ed := authorizedKey(t, edPub)

	good := map[string]string{
		"ed25519":                           ed,
		"ed25519 with comment":              ed + " alice@laptop",
		"trailing newline (file://)":        ed + " c\n",
		"trailing CRLF (a Windows file://)": ed + " c\r\n",
		"ecdsa p256":                        authorizedKey(t, &ec256.PublicKey),
		"ecdsa p521":                        authorizedKey(t, &ec521.PublicKey),
		"rsa 2048":                          authorizedKey(t, &rsa2048.PublicKey),
	}
	for name, s := range good {
		t.Run(name, func(t *testing.T) {
			k, err := ParsePublicKey(s)
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !strings.HasPrefix(k.Fingerprint, "SHA256:") || strings.Contains(k.Line, "\n") || strings.Contains(k.Line, "alice") {
				t.Errorf("got %+v", k)
			}
		})
	}
	bad := map[string]string{
		"too short":       "ssh-ed25519 AAAA",
		"rsa 1024":        authorizedKey(t, &rsa1024.PublicKey),
		"fido":            "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIBN3V9eUOWg8/tnfANMn6Ikup5d+tZwYsqsFi1CPoYsdAAAABHNzaDo= x",
		"options":         `command="/bin/sh" ` + ed,
		"from option":     `from="10.0.0.1" ` + ed,
		"second line":     ed + "\n" + ed,
		"carriage return": ed + "\rssh-rsa AAAA",
		// A lone CR is a control character, not a line end.
		"trailing carriage return": ed + "\r",
		"two trailing newlines":    ed + "\n\n",
		"nul byte":                 ed + "\x00",
		"type mismatch":            strings.Replace(ed, "ssh-ed25519", "ssh-rsa", 1),
		"not base64":               "ssh-ed25519 !!!!notbase64!!!!notbase64!!!!notbase64!!!!notbase64!!!!notbase64!!!! x",
		"dsa":                      "ssh-dss " + strings.Repeat("A", 100),
		"certificate":              "ssh-ed25519-cert-v01@openssh.com " + strings.Repeat("A", 100),
		"too long":                 ed + " " + strings.Repeat("x", 4096),
		"only type":                "ssh-ed25519" + strings.Repeat(" ", 80),
		// Beyond ASCII: a C1 control, Unicode's line and paragraph
		// separators, a bidirectional override (the comment would read
		// otherwise in the audit trail), and bytes that are not UTF-8.
		"C1 control (NEL)":    ed + " c\u0085x",
		"line separator":      ed + " c\u2028x",
		"paragraph separator": ed + " c\u2029x",
		"bidi override":       ed + " c\u202ex",
		"not UTF-8":           ed + " c\xffx",
	}
	for name, s := range bad {
		t.Run(name, func(t *testing.T) {
			if k, err := ParsePublicKey(s); err == nil {
				t.Fatalf("accepted %q as %+v", s, k)
			} else if !strings.Contains(err.Error(), "SSH") {
				t.Errorf("message %q should say what is wrong with the SSH key", err)
			}
		})
	}
}

// An unsupported key type is told as such; the words about options are
// for a line that starts with something else.
func TestParsePublicKeyTypeMessages(t *testing.T) {
	_, err := ParsePublicKey("ssh-dss " + strings.Repeat("A", 100))
	if err == nil || !strings.Contains(err.Error(), `"ssh-dss" is not a supported key type`) || strings.Contains(err.Error(), "option") {
		t.Errorf("ssh-dss: %v", err)
	}
	_, err = ParsePublicKey(`command="/bin/sh" ssh-ed25519 ` + strings.Repeat("A", 100))
	if err == nil || !strings.Contains(err.Error(), "options are not allowed") {
		t.Errorf("options: %v", err)
	}
}

func TestValidInstanceIDAndAZ(t *testing.T) {
	for _, id := range []string{"i-0123456789abcdef0", "i-01234567"} {
		if err := ValidInstanceID(id); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	for _, id := range []string{"", "i-", "i-0123", "i-0123456789ABCDEF0", "x-0123456789abcdef0", "i-0123456789abcdef0123456789abcdef0", "i-012345678;"} {
		if ValidInstanceID(id) == nil {
			t.Errorf("%q accepted", id)
		}
	}
	if ValidAvailabilityZone("us-east-1a") != nil || ValidAvailabilityZone("ap-northeast-1c") != nil || ValidAvailabilityZone("nowhere") == nil {
		t.Error("availability zone validation is wrong")
	}
}

// FuzzParsePublicKey: any input is accepted or refused, never a panic, and
// an accepted key's canonical line parses back to the same key.
func FuzzParsePublicKey(f *testing.F) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	f.Add(authorizedKey(f, edPub) + " comment\n")
	f.Add(`command="x" ` + authorizedKey(f, edPub))
	f.Add("sk-ssh-ed25519@openssh.com AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublicKey(s)
		if err != nil {
			return
		}
		again, err := ParsePublicKey(k.Line + strings.Repeat(" ", max(0, 80-len(k.Line))))
		if err != nil || again.Fingerprint != k.Fingerprint {
			t.Fatalf("canonical line %q does not parse back: %v", k.Line, err)
		}
		if strings.ContainsAny(k.Line, "\n\r\x00\"") {
			t.Fatalf("canonical line %q carries something sshd would read as more than a key", k.Line)
		}
	})
}
