package policy

import (
	"fmt"
	"testing"
)

func TestContextTable(t *testing.T) {
	var c Context // the zero value is usable
	want := map[string][]string{}
	for i := 0; i < 200; i++ {
		k := fmt.Sprintf("svc:Key%d", i)
		c.Set(k, fmt.Sprint(i))
		want[k] = []string{fmt.Sprint(i)}
	}
	c.Add("SVC:key7", "seven") // case-insensitive: appends to svc:Key7
	want["svc:Key7"] = append(want["svc:Key7"], "seven")
	for i := 0; i < 200; i += 3 {
		k := fmt.Sprintf("svc:key%d", i)
		c.Set(k) // no values: removes the key
		delete(want, fmt.Sprintf("svc:Key%d", i))
	}
	c.Set("svc:KEY9", "nine") // replaces
	want["svc:Key9"] = []string{"nine"}
	if c.Len() != len(want) {
		t.Fatalf("Len = %d, want %d", c.Len(), len(want))
	}
	for i := 0; i < 200; i++ {
		k := fmt.Sprintf("svc:Key%d", i)
		got := c.Get(k)
		if fmt.Sprint(got) != fmt.Sprint(want[k]) {
			t.Errorf("Get(%q) = %v, want %v", k, got, want[k])
		}
	}
	if got := c.Get("absent:key"); got != nil {
		t.Errorf("absent key: %v", got)
	}
	var nilCtx *Context
	if nilCtx.Get("a:b") != nil || nilCtx.Len() != 0 {
		t.Error("a nil Context is empty")
	}
}

func BenchmarkContextLookup(b *testing.B) {
	c := NewContext()
	m := map[string][]string{}
	keys := []string{"aws:username", "aws:userid", "aws:principaltype", "aws:principaltag/team", "aws:principaltag/role", "aws:sourceip",
		"aws:multifactorauthpresent", "aws:securetransport", "aws:currenttime", "aws:requestedregion", "ec2:osuser", "aws:resourcetag/team", "aws:resourcetag/env"}
	for _, k := range keys {
		c.Set(k, "v")
		m[k] = []string{"v"}
	}
	hashes := make([]uint64, len(keys))
	for i, k := range keys {
		hashes[i] = keyHash(k)
	}
	b.Run("context", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			j := i % len(keys)
			if c.lookup(keys[j], hashes[j]) == nil {
				b.Fatal("missing")
			}
		}
	})
	b.Run("go_map_baseline", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if m[keys[i%len(keys)]] == nil {
				b.Fatal("missing")
			}
		}
	})
}
