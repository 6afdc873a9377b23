package sshdsetup

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds random text to the parser as the main file, a drop-in and
// a file both may include (so Include loops happen): no panic, a bounded
// parse, and the block edit always undoes itself byte for byte.
func FuzzParse(f *testing.F) {
	for _, d := range distros {
		b, err := os.ReadFile(filepath.Join(fixtures, d.dir, "sshd_config"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, []byte("PubkeyAuthentication no\n"))
	}
	f.Add([]byte("Include /etc/ssh/sshd_config\n"), []byte(""))
	f.Add([]byte("Include loop.conf\nMatch User x\nInclude sshd_config.d/*.conf\n"), []byte("Include /etc/ssh/loop.conf\nMatch all\n"))
	f.Add([]byte(beginMarker+"\nAuthorizedKeysCommand /x\n"+endMarker+"\n\n"+beginMarker+"\n"), []byte("\"Port 22"))
	f.Add([]byte("Port=\"22\nInclude [\n\x00Include /etc/ssh/*\n"), []byte("Include ../*/*\n"))
	f.Fuzz(func(t *testing.T, main, other []byte) {
		fs := mapFS{
			"/etc/ssh/sshd_config":             main,
			"/etc/ssh/sshd_config.d/50.conf":   other,
			"/etc/ssh/loop.conf":               other,
			"/etc/ssh/sshd_config.d/.x.conf":   main,
			"/etc/ssh/sshd_config.d/60-k.conf": dropInText([]string{"AuthorizedKeysCommand /k %u %f"}),
		}
		cfg, err := parseConfig(fs, "/etc/ssh/sshd_config")
		if cfg == nil {
			t.Fatalf("nil config (err %v)", err)
		}
		if len(cfg.Files) > maxFiles {
			t.Fatalf("%d files read", len(cfg.Files))
		}
		for _, d := range cfg.Directives {
			if d.depth > maxIncludeDepth {
				t.Fatalf("depth %d", d.depth)
			}
		}
		_ = includeDir(cfg)
		conflicts, _ := configConflicts(cfg, nil)
		_ = conflicts

		clean, _ := removeBlocks(main)
		with := insertBlock(clean, blockText([]string{"AuthorizedKeysCommand /k %u %f", "AuthorizedKeysCommandUser k"}))
		back, n := removeBlocks(with)
		if n != 1 || !bytes.Equal(back, clean) {
			t.Fatalf("insert/remove is not exact (%d blocks):\n%q\n%q", n, clean, back)
		}
		_ = unifiedDiff("/x", main, with)
	})
}
