package webui

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The embedded bundle is what index.html references, and nothing in it
// needs what the server's CSP forbids.
func TestBundle(t *testing.T) {
	f := FS()
	html, err := fs.ReadFile(f, "index.html")
	if err != nil {
		t.Fatalf("index.html: %v", err)
	}
	refs := regexp.MustCompile(`(?:src|href)="/(assets/[^"]+)"`).FindAllStringSubmatch(string(html), -1)
	if len(refs) != 2 {
		t.Fatalf("index.html references %d assets, want the script and the stylesheet:\n%s", len(refs), html)
	}
	for _, r := range refs {
		b, err := fs.ReadFile(f, r[1])
		if err != nil {
			t.Errorf("index.html references %s: %v", r[1], err)
			continue
		}
		if len(b) == 0 {
			t.Errorf("%s is empty", r[1])
		}
		if !regexp.MustCompile(`^assets/app-[A-Z0-9]{8}\.(js|css)$`).MatchString(r[1]) {
			t.Errorf("%s: want a content-hashed name (assets/app-HASH.js|css)", r[1])
		}
	}
	// CSP: script-src 'self', style-src 'self': no inline script, no inline style.
	lower := strings.ToLower(string(html))
	if strings.Contains(lower, "<style") || strings.Contains(lower, " style=") || regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]+</script>`).MatchString(lower) {
		t.Errorf("index.html has inline style or script:\n%s", html)
	}
	for _, host := range []string{"http://", "https://"} {
		if strings.Contains(lower, host) {
			t.Errorf("index.html loads something from outside (%s):\n%s", host, html)
		}
	}
	entries, err := fs.ReadDir(f, "assets")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(refs) {
		t.Errorf("assets/ has %d files, index.html references %d: stale files in dist?", len(entries), len(refs))
	}
}

// The committed bundle is what web/src builds to (scripts/webui-check.sh).
// It needs Node.js and web/node_modules (scripts/deps.sh test installs
// them); without them it is skipped, except in CI where it must run.
func TestBundleMatchesSources(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not rebuilding the bundle")
	}
	root := filepath.Join("..", "..")
	_, nodeErr := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(root, "web", "node_modules", ".bin", "esbuild"))
	if nodeErr != nil || modErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI: Node.js or web/node_modules is missing (scripts/deps.sh test installs them): %v %v", nodeErr, modErr)
		}
		t.Skip("Node.js or web/node_modules is missing: run scripts/deps.sh browser")
	}
	cmd := exec.Command("bash", filepath.Join("scripts", "webui-check.sh"))
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/webui-check.sh: %v\n%s", err, out)
	}
}
