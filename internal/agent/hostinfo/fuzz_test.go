package hostinfo

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseOSRelease: any input parses without panicking into valid keys
// and one-line values, and writing the result back out double-quoted (with
// os-release's escapes) parses to the same map.
func FuzzParseOSRelease(f *testing.F) {
	files, _ := filepath.Glob("testdata/os-release/*")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("A='x'\"y\"z\\ w\nB=\"\\$\\`\\\\\\\"\"\n#c\n C=\"open\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := ParseOSRelease(data)
		var out strings.Builder
		for k, v := range m {
			if !validKey(k) {
				t.Fatalf("key %q", k)
			}
			if strings.ContainsRune(v, '\n') {
				t.Fatalf("value %q spans lines", v)
			}
			out.WriteString(k + "=\"")
			for i := 0; i < len(v); i++ {
				if strings.IndexByte("$\"\\`", v[i]) >= 0 {
					out.WriteByte('\\')
				}
				out.WriteByte(v[i])
			}
			out.WriteString("\"\n")
		}
		if again := ParseOSRelease([]byte(out.String())); !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip:\n%q\n%q", m, again)
		}
		// What Collect reports is clean.
		for _, v := range m {
			c := clean(v, 256)
			if !utf8.ValidString(c) || len(c) > 256 || strings.ContainsFunc(c, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("clean(%q) = %q", v, c)
			}
		}
	})
}

// FuzzParseSSHVersion: a found release is clean, starts with OpenSSH_, has
// no comma, and parses again to itself with the same version numbers.
func FuzzParseSSHVersion(f *testing.F) {
	for _, s := range []string{
		"OpenSSH_7.4p1, OpenSSL 1.0.2k-fips  26 Jan 2017",
		"OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024",
		"OpenSSH_8.0p1, OpenSSL 1.1.1c FIPS  28 May 2019",
		"OpenSSH_9.6p1 Ubuntu-3ubuntu13.5",
		"unknown option -- ?\nOpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 27 Jan 2026\nusage: sshd [-46DdeiqTtV]\n",
		"OpenSSH_for_Windows_8.1p1, LibreSSL 3.0.2",
		"OpenSSH_OpenSSH_1.2 OpenSSH_10.0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rel, maj, min, ok := ParseSSHVersion(s)
		if !ok {
			if rel != "" || maj != 0 || min != 0 {
				t.Fatalf("not ok but %q %d.%d", rel, maj, min)
			}
			return
		}
		if !strings.HasPrefix(rel, "OpenSSH_") || strings.ContainsRune(rel, ',') || len(rel) > 128 || !utf8.ValidString(rel) ||
			strings.ContainsFunc(rel, func(r rune) bool { return r < 0x20 || r == 0x7f }) || strings.TrimSpace(rel) != rel {
			t.Fatalf("release %q from %q", rel, s)
		}
		if maj < 0 || maj > 9999 || min < 0 || min > 9999 {
			t.Fatalf("version %d.%d", maj, min)
		}
		rel2, maj2, min2, ok2 := ParseSSHVersion(rel)
		if !ok2 || rel2 != rel || maj2 != maj || min2 != min {
			t.Fatalf("%q parses again to %q %d.%d %v, was %d.%d", rel, rel2, maj2, min2, ok2, maj, min)
		}
	})
}

// FuzzHostKeyParsers: sshd_config lines and public key lines never panic;
// an accepted key is canonical (parses to itself).
func FuzzHostKeyParsers(f *testing.F) {
	for _, s := range []string{
		"HostKey /etc/ssh/ssh_host_ed25519_key",
		`HostKey = "/a b/k" # c`,
		"Include /etc/ssh/sshd_config.d/*.conf",
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFxPqE3zf6ujkvxahI3LaueMC4LvgCTqZo4biaac8iTM root@vm",
		"ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBH1fowfsYgDxgOhp2qNmO+g6p38/XG1QjX4IrKbuyzvPignKUulvT+AI+mSq/N8RWerMZrl1PSmzuYEvpieLNY0=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		kw, args := configLine(line)
		if kw == "" && args != nil {
			t.Fatalf("arguments without keyword: %q", args)
		}
		if len(args) > 64 {
			t.Fatalf("%d arguments", len(args))
		}
		if k, ok := ParsePublicKey(line); ok {
			k2, ok2 := ParsePublicKey(k)
			if !ok2 || k2 != k || strings.Count(k, " ") != 1 {
				t.Fatalf("%q → %q → %q %v", line, k, k2, ok2)
			}
		}
	})
}
