package harness

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"
)

// AuditEvents reads the events named name from a server's JSON-lines
// audit log (--audit-log).
func AuditEvents(t testing.TB, path, name string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit log line: %v: %s", err, sc.Bytes())
		}
		if ev["eventName"] == name {
			out = append(out, ev)
		}
	}
	return out
}
