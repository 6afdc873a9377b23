package migrate

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	for _, c := range []struct {
		name  string
		files []string
		err   string // "" for success
	}{
		{"ordered", []string{"0002_b.sql", "0001_a.sql", "README.md"}, ""},
		{"gap", []string{"0001_a.sql", "0003_c.sql"}, "want 2"},
		{"duplicate", []string{"0001_a.sql", "0001_b.sql"}, "want 2"},
		{"bad name", []string{"init.sql"}, "NNNN_name.sql"},
		{"zero", []string{"0000_a.sql"}, "NNNN_name.sql"},
		{"empty", nil, "no migrations"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fsys := fstest.MapFS{"m/.keep": {}}
			for _, f := range c.files {
				fsys["m/"+f] = &fstest.MapFile{Data: []byte("-- " + f)}
			}
			ms, err := Load(fsys, "m")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 2 || ms[0].Version != 1 || ms[1].Name != "0002_b.sql" || ms[1].SQL != "-- 0002_b.sql" {
				t.Fatalf("loaded %+v", ms)
			}
		})
	}
}
