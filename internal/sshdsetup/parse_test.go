package sshdsetup

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSplitKeyword(t *testing.T) {
	for _, c := range []struct{ line, kw, rest string }{
		{"Port 22", "Port", "22"},
		{"  \tport=22", "port", "22"},
		{"Port = 22", "Port", "22"},
		{"Port= 22", "Port", "22"},
		{"Port =22 ", "Port", "22"},
		{"Port\t\t22\r", "Port", "22"},
		{`"Port" 22`, "Port", "22"},
		{"AuthorizedKeysCommand /usr/bin/x %u %f # trailing", "AuthorizedKeysCommand", "/usr/bin/x %u %f # trailing"},
		{"Port", "Port", ""},
		{"=Port 22", "Port", "22"},
	} {
		kw, rest, ok := splitKeyword(c.line)
		if !ok || kw != c.kw || rest != c.rest {
			t.Errorf("splitKeyword(%q) = %q, %q, %v; want %q, %q", c.line, kw, rest, ok, c.kw, c.rest)
		}
	}
	for _, line := range []string{"", "   ", "#Port 22", "   # Port 22", `"#x" y`, `"Port 22`} {
		if kw, _, ok := splitKeyword(line); ok {
			t.Errorf("splitKeyword(%q) = %q, want a comment/blank", line, kw)
		}
	}
}

func TestArgvSplit(t *testing.T) {
	got, err := argvSplit(`a "b c" 'd e' f\ g "h\"i" j#k # comment`)
	want := []string{"a", "b c", "d e", "f g", `h"i`, "j#k"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	if _, err := argvSplit(`"unterminated`); err == nil {
		t.Fatal("unterminated quote accepted")
	}
}

func parseMap(t *testing.T, files map[string]string) (*config, error) {
	t.Helper()
	m := mapFS{}
	for k, v := range files {
		m[k] = []byte(v)
	}
	return parseConfig(m, "/etc/ssh/sshd_config")
}

func TestFirstValueWinsCaseInsensitive(t *testing.T) {
	cfg, err := parseMap(t, map[string]string{"/etc/ssh/sshd_config": "authorizedKEYScommand /a %u\nAuthorizedKeysCommand /b %u\nPubkeyAuthentication=no\n"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.effective("authorizedkeyscommand"); d == nil || d.Value != "/a %u" || d.Line != 1 {
		t.Fatalf("effective %+v", d)
	}
	if d := cfg.effective("pubkeyauthentication"); firstArg(d) != "no" {
		t.Fatalf("pubkey %+v", d)
	}
}

func TestIncludeExpansion(t *testing.T) {
	cfg, err := parseMap(t, map[string]string{
		"/etc/ssh/sshd_config": "Include sshd_config.d/*.conf /etc/ssh/extra\nAuthorizedKeysFile main\n",
		// glob order, and glob(3) does not match dot files with '*'
		"/etc/ssh/sshd_config.d/20-b.conf":  "AuthorizedKeysCommandUser b\n",
		"/etc/ssh/sshd_config.d/10-a.conf":  "AuthorizedKeysCommandUser a\n",
		"/etc/ssh/sshd_config.d/.hid.conf":  "AuthorizedKeysCommandUser hidden\n",
		"/etc/ssh/sshd_config.d/05-a.conf~": "AuthorizedKeysCommandUser backup\n",
		"/etc/ssh/extra":                    "AuthorizedKeysFile extra\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/10-a.conf", "/etc/ssh/sshd_config.d/20-b.conf", "/etc/ssh/extra"}
	if !reflect.DeepEqual(cfg.Files, want) {
		t.Fatalf("files %q", cfg.Files)
	}
	if d := effectiveUser(cfg); firstArg(d) != "a" {
		t.Fatalf("user %+v", d)
	}
	if d := cfg.effective("authorizedkeysfile"); firstArg(d) != "extra" {
		t.Fatalf("included file after the main line should win: %+v", d)
	}
	if includeDir(cfg) != "/etc/ssh/sshd_config.d" {
		t.Fatalf("includeDir %q", includeDir(cfg))
	}
}

func TestMatchScoping(t *testing.T) {
	cfg, err := parseMap(t, map[string]string{
		"/etc/ssh/sshd_config": "Include /etc/ssh/a.conf\n" +
			"AuthorizedKeysFile global\n" + // a.conf's Match must not leak here
			"Match User bob\n" +
			"  Include /etc/ssh/b.conf\n" + // b.conf is inside Match User bob
			"  PubkeyAuthentication no\n" +
			"Match all\n" +
			"  AuthorizedKeysCommandUser everyone\n",
		"/etc/ssh/a.conf": "Match Group x\nAuthorizedKeysFile inmatch\n",
		"/etc/ssh/b.conf": "AuthorizedKeysCommand /bob %u\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.effective("authorizedkeysfile"); firstArg(d) != "global" || d.Match != "" {
		t.Fatalf("AuthorizedKeysFile %+v", d)
	}
	akc := cfg.all("authorizedkeyscommand")
	if len(akc) != 1 || akc[0].Match != "User bob" || akc[0].Global() || cfg.effective("authorizedkeyscommand") != nil {
		t.Fatalf("AuthorizedKeysCommand %+v", akc)
	}
	if d := cfg.effective("pubkeyauthentication"); d != nil {
		t.Fatalf("PubkeyAuthentication inside Match counted as global: %+v", d)
	}
	if d := effectiveUser(cfg); firstArg(d) != "everyone" || !d.Global() {
		t.Fatalf("Match all: %+v", d)
	}
	if includeDir(cfg) != "" {
		t.Fatal("includeDir found one")
	}
}

func TestIncludeLoop(t *testing.T) {
	_, err := parseMap(t, map[string]string{
		"/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config\nInclude /etc/ssh/sshd_config\n",
	})
	var pe *ParseError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "recursive") {
		t.Fatalf("err %v", err)
	}
	// 16 nested levels are fine, 17 are not (sshd's limit).
	files := map[string]string{}
	for i := 0; i <= 17; i++ {
		name := "/etc/ssh/sshd_config"
		if i > 0 {
			name = "/etc/ssh/l" + string(rune('a'+i))
		}
		files[name] = "Include /etc/ssh/l" + string(rune('a'+i+1)) + "\n"
	}
	if _, err := parseMap(t, files); err == nil {
		t.Fatal("17 levels accepted")
	}
	delete(files, "/etc/ssh/l"+string(rune('a'+17)))
	files["/etc/ssh/l"+string(rune('a'+16))] = "Port 22\n"
	if _, err := parseMap(t, files); err != nil {
		t.Fatalf("16 levels: %v", err)
	}
}

func TestManagedMarkers(t *testing.T) {
	cfg, err := parseMap(t, map[string]string{"/etc/ssh/sshd_config": "" +
		beginMarker + " x\nAuthorizedKeysCommand /k %u %f\n" + endMarker + "\n" +
		"AuthorizedKeysCommandUser admin\n" +
		beginMarker + "\nAuthorizedKeysFile none\n"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.effective("authorizedkeyscommand"); d == nil || !d.Managed {
		t.Fatalf("%+v", d)
	}
	if d := effectiveUser(cfg); d == nil || d.Managed {
		t.Fatalf("%+v", d)
	}
	if d := cfg.effective("authorizedkeysfile"); d == nil || d.Managed {
		t.Fatalf("unterminated block counted as managed: %+v", d)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "without END") {
		t.Fatalf("warnings %q", cfg.Warnings)
	}
}

func TestInsertAndRemoveBlock(t *testing.T) {
	block := blockText([]string{"AuthorizedKeysCommand /x %u %f"})
	for _, c := range []struct{ in, before string }{
		{"", ""},
		{"Port 22\n", ""},
		{"\n\nPort 22\n", ""},
		{"# header\n\nPort 22\n", "# header\n\n"},
		{"# header\n# more\n\n\n# section\nPort 22\n", "# header\n# more\n\n"},
		{"# header\nPort 22\n", "# header\n"},
		{"# only a comment\n", "# only a comment\n"},
		{"# no newline", ""},
		{"# header\n\nPort 22", "# header\n\n"},
		{"# header\r\n\r\nPort 22\r\n", "# header\r\n\r\n"},
	} {
		out := insertBlock([]byte(c.in), block)
		if !strings.HasPrefix(string(out), c.before+string(block)) {
			t.Errorf("insert into %q:\n%q", c.in, out)
		}
		back, n := removeBlocks(out)
		if n != 1 || string(back) != c.in {
			t.Errorf("remove from %q: %q (%d blocks)", out, back, n)
		}
	}
}

func TestUnifiedDiff(t *testing.T) {
	old := "a\nb\nc\nd\ne\nf\ng\nh\n"
	new := "a\nb\nc\nd\nX\ne\nf\ng\nh\n"
	want := "--- a/f\n+++ b/f\n@@ -2,6 +2,7 @@\n b\n c\n d\n+X\n e\n f\n g\n"
	if got := unifiedDiff("/f", []byte(old), []byte(new)); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := unifiedDiff("/f", nil, []byte("x\n")); got != "--- /dev/null\n+++ b/f\n@@ -0,0 +1 @@\n+x\n" {
		t.Fatalf("new file:\n%s", got)
	}
	if got := unifiedDiff("/f", []byte(old), []byte(old)); got != "" {
		t.Fatalf("equal: %q", got)
	}
}

func TestSystemdUnitParsing(t *testing.T) {
	kv := unitServiceLines("u", []byte("[Unit]\nExecStart=/not/service\n[Service]\n# c\nExecStart=/usr/sbin/sshd \\\n  -o \"AuthorizedKeysCommand /x %%u\"\nEnvironmentFile=-/etc/default/ssh\n"))
	if len(kv) != 2 || kv[0].key != "ExecStart" || kv[0].line != 5 || !strings.Contains(kv[0].value, "-o \"AuthorizedKeysCommand") || kv[1].value != "-/etc/default/ssh" {
		t.Fatalf("%+v", kv)
	}
}
