package hostinfo

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sshRoot makes a root whose /etc/ssh holds the three default key pairs.
// Each private key file holds a valid-looking *public* key line of its own
// (hostile content): if Collect ever read a private key, that key would
// show up in the result.
func sshRoot(t *testing.T) (root string, pubs map[string]string, privs []string) {
	t.Helper()
	root = t.TempDir()
	pubs = map[string]string{}
	for _, typ := range []struct{ name, key string }{
		{"rsa", "ssh-rsa"}, {"ecdsa", "ecdsa-sha2-nistp256"}, {"ed25519", "ssh-ed25519"},
	} {
		p := "/etc/ssh/ssh_host_" + typ.name + "_key"
		priv := fakeKey(t, typ.key, "PRIVATE-KEY-CONTENT")
		privs = append(privs, keyOf(t, priv))
		put(t, root, p, priv+"\n", 0o000)
		pub := fakeKey(t, typ.key, "root@host")
		put(t, root, p+".pub", pub+"\n", 0o644)
		pubs[typ.name] = keyOf(t, pub)
	}
	return root, pubs, privs
}

func noPrivate(t *testing.T, keys, privs []string) {
	t.Helper()
	for _, k := range keys {
		for _, p := range privs {
			if k == p {
				t.Fatalf("a private key file was read: %s", k)
			}
		}
	}
}

func TestHostKeysDefaults(t *testing.T) {
	root, pubs, privs := sshRoot(t)
	// No sshd_config at all, then one without HostKey: OpenSSH's defaults.
	for _, cfg := range []string{"", "Port 22\n#HostKey /etc/ssh/other\nPermitRootLogin no\n"} {
		if cfg != "" {
			put(t, root, "/etc/ssh/sshd_config", cfg, 0o644)
		}
		keys, err := hostKeys(Options{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{pubs["rsa"], pubs["ecdsa"], pubs["ed25519"]}
		if !reflect.DeepEqual(keys, want) {
			t.Fatalf("config %q:\ngot  %q\nwant %q", cfg, keys, want)
		}
		noPrivate(t, keys, privs)
	}
}

func TestHostKeysDirectives(t *testing.T) {
	root, pubs, privs := sshRoot(t)
	custom := fakeKey(t, "ssh-ed25519", "custom")
	put(t, root, "/srv/keys/host_ed25519.pub", custom+"\n", 0o644)
	put(t, root, "/srv/keys/host_ed25519", "not read\n", 0o000)
	spaced := fakeKey(t, "ecdsa-sha2-nistp384", "")
	put(t, root, "/srv/my keys/k.pub", spaced+"\n", 0o644)
	agentOnly := fakeKey(t, "ssh-ed25519", "agent")
	put(t, root, "/srv/agent/host.pub", agentOnly+"\n", 0o644) // no private file: HostKeyAgent setup
	put(t, root, "/etc/ssh/sshd_config", strings.Join([]string{
		"# sshd_config with explicit host keys",
		"  hostkey /srv/keys/host_ed25519 # trailing comment",
		"HostKey=/etc/ssh/ssh_host_ecdsa_key",
		`HOSTKEY "/srv/my keys/k"`,
		"HostKey = /srv/agent/host.pub",
		"HostKey /srv/keys/host_ed25519", // duplicate
		"HostKey /srv/missing/key",       // missing .pub: skipped
		"HostKeyAlgorithms ssh-ed25519",  // another keyword
		"HostKeyAgent /run/agent.sock",
		"Match User backup",
		"  HostKey /etc/ssh/ssh_host_rsa_key", // not allowed in Match: ignored
	}, "\n"), 0o644)
	keys, err := hostKeys(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{keyOf(t, custom), pubs["ecdsa"], keyOf(t, spaced), keyOf(t, agentOnly)}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("\ngot  %q\nwant %q", keys, want)
	}
	noPrivate(t, keys, privs)
}

func TestHostKeysInclude(t *testing.T) {
	root, pubs, privs := sshRoot(t)
	extra := fakeKey(t, "ssh-ed25519", "from-include")
	put(t, root, "/etc/ssh/extra_key.pub", extra+"\n", 0o644)
	put(t, root, "/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\nHostKey /etc/ssh/ssh_host_rsa_key\nInclude loop.conf\n", 0o644)
	put(t, root, "/etc/ssh/sshd_config.d/10-keys.conf", "HostKey /etc/ssh/ssh_host_ed25519_key\nMatch Address 10.0.0.0/8\nHostKey /etc/ssh/ssh_host_ecdsa_key\n", 0o644)
	put(t, root, "/etc/ssh/sshd_config.d/20-more.conf", "hostKey extra_key\n", 0o644) // relative: from /
	put(t, root, "/etc/ssh/sshd_config.d/30-not-conf.txt", "HostKey /etc/ssh/ssh_host_ecdsa_key\n", 0o644)
	put(t, root, "/etc/ssh/loop.conf", "Include loop.conf\nHostKey /etc/ssh/extra_key\n", 0o644) // relative: /etc/ssh
	keys, err := hostKeys(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	// 10-keys.conf's Match ends that file only; 20-more.conf's relative
	// "extra_key" is /extra_key (missing); loop.conf includes itself until
	// the depth bound and names extra_key absolutely.
	want := []string{pubs["ed25519"], pubs["rsa"], keyOf(t, extra)}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("\ngot  %q\nwant %q", keys, want)
	}
	noPrivate(t, keys, privs)
}

func TestHostKeysCustomConfigPath(t *testing.T) {
	root, pubs, _ := sshRoot(t)
	put(t, root, "/etc/ssh/sshd_config", "HostKey /etc/ssh/ssh_host_rsa_key\n", 0o644)
	put(t, root, "/opt/sshd/alt_config", "HostKey /etc/ssh/ssh_host_ed25519_key\n", 0o644)
	keys, err := hostKeys(Options{Root: root, SSHDConfig: "/opt/sshd/alt_config"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(keys, []string{pubs["ed25519"]}) {
		t.Fatalf("%q", keys)
	}
}

// TestHostKeysNeverPrivate: the .pub "file" is the private key under
// another name, or a FIFO, or garbage; a private key is a FIFO itself.
// Nothing private is read and nothing blocks.
func TestHostKeysNeverPrivate(t *testing.T) {
	root, pubs, privs := sshRoot(t)
	dir := filepath.Join(root, "etc/ssh")

	// .pub is a symlink to the private key, and a hard link to it.
	if err := os.Remove(filepath.Join(dir, "ssh_host_rsa_key.pub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("ssh_host_rsa_key", filepath.Join(dir, "ssh_host_rsa_key.pub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "ssh_host_ecdsa_key.pub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "ssh_host_ecdsa_key"), filepath.Join(dir, "ssh_host_ecdsa_key.pub")); err != nil {
		t.Fatal(err)
	}
	// A FIFO as .pub and a FIFO as a private key: opening either for
	// reading would block forever.
	fifoPub := filepath.Join(root, "srv/fifo_key.pub")
	fifoPriv := filepath.Join(root, "srv/fifo_priv_key")
	os.MkdirAll(filepath.Dir(fifoPub), 0o755)
	if err := syscall.Mkfifo(fifoPub, 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	if err := syscall.Mkfifo(fifoPriv, 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	good := fakeKey(t, "ssh-ed25519", "")
	put(t, root, "/srv/fifo_priv_key.pub", good+"\n", 0o644)
	put(t, root, "/srv/garbage_key.pub", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n", 0o644)
	mismatch := strings.Replace(fakeKey(t, "ssh-ed25519", ""), "ssh-ed25519", "ssh-rsa", 1)
	put(t, root, "/srv/mismatch_key.pub", mismatch+"\n", 0o644)
	put(t, root, "/etc/ssh/sshd_config", strings.Join([]string{
		"HostKey /etc/ssh/ssh_host_rsa_key",
		"HostKey /etc/ssh/ssh_host_ecdsa_key",
		"HostKey /etc/ssh/ssh_host_ed25519_key",
		"HostKey /srv/fifo_key",
		"HostKey /srv/fifo_priv_key",
		"HostKey /srv/garbage_key",
		"HostKey /srv/mismatch_key",
	}, "\n"), 0o644)

	type result struct {
		keys []string
		err  error
	}
	done := make(chan result, 1)
	go func() { k, err := hostKeys(Options{Root: root}); done <- result{k, err} }()
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("blocked opening a FIFO")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := []string{pubs["ed25519"], keyOf(t, good)}
	if !reflect.DeepEqual(r.keys, want) {
		t.Fatalf("\ngot  %q\nwant %q", r.keys, want)
	}
	noPrivate(t, r.keys, privs)
}

func TestHostKeysBounded(t *testing.T) {
	root := t.TempDir()
	var cfg strings.Builder
	for i := 0; i < 3*maxHostKeys; i++ {
		p := fmt.Sprintf("/keys/k%02d", i)
		put(t, root, p+".pub", fakeKey(t, "ssh-ed25519", "")+"\n", 0o644)
		fmt.Fprintf(&cfg, "HostKey %s\n", p)
	}
	put(t, root, "/etc/ssh/sshd_config", cfg.String(), 0o644)
	keys, err := hostKeys(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != maxHostKeys {
		t.Fatalf("%d keys, want %d", len(keys), maxHostKeys)
	}
}

func TestParsePublicKey(t *testing.T) {
	ed := fakeKey(t, "ssh-ed25519", "root@host")
	fields := strings.Fields(ed)
	good := map[string]string{
		ed:                                  fields[0] + " " + fields[1],
		"  " + fields[0] + "\t" + fields[1]: fields[0] + " " + fields[1],
	}
	for in, want := range good {
		if got, ok := ParsePublicKey(in); !ok || got != want {
			t.Errorf("ParsePublicKey(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	typeOnly := "ssh-ed25519 " + strings.TrimRight(fields[1][:20], "=") // truncated
	bad := []string{
		"",
		"ssh-ed25519",
		"ssh-ed25519 !!!notbase64",
		typeOnly,
		"ssh-rsa " + fields[1],             // blob says ssh-ed25519
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", // type and nothing else
		`command="rm -rf /" ` + ed,         // authorized_keys options are not a .pub line
		"ssh-ed25519\x00 " + fields[1],
		"# ssh-ed25519 " + fields[1],
	}
	for _, in := range bad {
		if got, ok := ParsePublicKey(in); ok {
			t.Errorf("ParsePublicKey(%q) accepted: %q", in, got)
		}
	}
}

func TestConfigLine(t *testing.T) {
	cases := []struct {
		in   string
		kw   string
		args []string
	}{
		{"HostKey /etc/ssh/k", "HostKey", []string{"/etc/ssh/k"}},
		{"HostKey=/etc/ssh/k", "HostKey", []string{"/etc/ssh/k"}},
		{"HostKey = /etc/ssh/k", "HostKey", []string{"/etc/ssh/k"}},
		{"\tHostKey\t/etc/ssh/k\r", "HostKey", []string{"/etc/ssh/k"}},
		{`HostKey "/a b/k" # comment`, "HostKey", []string{"/a b/k"}},
		{`HostKey '/a "b"/k'`, "HostKey", []string{`/a "b"/k`}},
		{`HostKey "/a \"b\"/k"`, "HostKey", []string{`/a "b"/k`}},
		{"Include a.conf b/*.conf", "Include", []string{"a.conf", "b/*.conf"}},
		{"# HostKey /x", "", nil},
		{"", "", nil},
		{"Match", "Match", nil},
	}
	for _, c := range cases {
		kw, args := configLine(c.in)
		if kw != c.kw || !reflect.DeepEqual(args, c.args) {
			t.Errorf("configLine(%q) = %q %q, want %q %q", c.in, kw, args, c.kw, c.args)
		}
	}
}

func TestSSHDPort(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		want         int
	}{
		{"no config file: OpenSSH's default", "", 22},
		{"none named", "PermitRootLogin no\n", 22},
		{"first Port wins", "Port 2222\nPort 22\n", 2222},
		{"case and equals", "port=2200\n", 2200},
		{"ListenAddress with a port", "ListenAddress 127.0.0.1:2022\n", 2022},
		{"IPv6 ListenAddress with a port", "ListenAddress [::1]:2023\n", 2023},
		{"IPv6 ListenAddress without one", "ListenAddress ::1\n", 22},
		{"Port beats ListenAddress", "ListenAddress 127.0.0.1:2022\nPort 2100\n", 2100},
		{"garbage is ignored", "Port 99999\nPort x\n", 22},
		{"from an Include", "Include /etc/ssh/sshd_config.d/*.conf\n", 2400},
		{"a Match block does not count", "Match User git\nPort 2500\n", 22},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			put(t, root, "/etc/ssh/sshd_config.d/10-port.conf", "Port 2400\n", 0o644)
			if tc.config != "" {
				put(t, root, "/etc/ssh/sshd_config", tc.config, 0o644)
			}
			if got := sshdPort(Options{Root: root}); got != tc.want {
				t.Errorf("sshdPort = %d, want %d", got, tc.want)
			}
		})
	}
}
