package hostinfo

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// put writes content to the host path p under root, making directories.
func put(t testing.TB, root, p, content string, mode os.FileMode) string {
	t.Helper()
	full := hostPath(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(full, mode); err != nil {
		t.Fatal(err)
	}
	return full
}

// sshString is the SSH wire encoding of a string.
func sshString(s []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(s)))
	return append(b, s...)
}

// fakeKey returns a random public key line of type typ ("type base64
// comment"), shaped as OpenSSH writes them.
func fakeKey(t testing.TB, typ, comment string) string {
	t.Helper()
	body := make([]byte, 32)
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	blob := append(sshString([]byte(typ)), sshString(body)...)
	line := typ + " " + base64.StdEncoding.EncodeToString(blob)
	if comment != "" {
		line += " " + comment
	}
	return line
}

// keyOf is a key line without its comment, as Info.HostKeys holds it.
func keyOf(t testing.TB, line string) string {
	t.Helper()
	k, ok := ParsePublicKey(line)
	if !ok {
		t.Fatalf("not a public key: %q", line)
	}
	return k
}

func noInterfaces() ([]iface, error) { return nil, nil }
