package storetest

import (
	"errors"
	"maps"
	"testing"

	"github.com/kaginashi/kaginashi/internal/store"
)

// testUpdateMeta: UpdateMeta reads the named keys, writes and deletes what
// its callback returns, all in one transaction, and refuses keys it did
// not read.
func testUpdateMeta(t *testing.T, s store.Store, m store.Maintenance) {
	ctx := ctxOf(t)
	_, err := s.InitMeta(ctx, "um_a", "a0")
	must(t, err)
	_, err = s.InitMeta(ctx, "um_b", "b0")
	must(t, err)
	get := func(k string) (string, bool) {
		v, ok, err := s.GetMeta(ctx, k)
		must(t, err)
		return v, ok
	}

	var seen map[string]string
	must(t, m.UpdateMeta(ctx, []string{"um_a", "um_b", "um_new"}, func(cur map[string]string) (map[string]string, []string, error) {
		seen = maps.Clone(cur)
		return map[string]string{"um_a": "a1", "um_new": "n1"}, []string{"um_b"}, nil
	}))
	equal(t, "values read", seen, map[string]string{"um_a": "a0", "um_b": "b0"})
	v, ok := get("um_a")
	equal(t, "replaced", [2]any{v, ok}, [2]any{"a1", true})
	v, ok = get("um_new")
	equal(t, "created", [2]any{v, ok}, [2]any{"n1", true})
	_, ok = get("um_b")
	equal(t, "deleted", ok, false)

	// A failing callback changes nothing.
	boom := errors.New("injected failure")
	err = m.UpdateMeta(ctx, []string{"um_a"}, func(map[string]string) (map[string]string, []string, error) {
		return map[string]string{"um_a": "half done"}, nil, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failing update: err %v, want the injected failure", err)
	}
	v, _ = get("um_a")
	equal(t, "after a failing update", v, "a1")

	// A key that was not read is refused, and nothing is written.
	err = m.UpdateMeta(ctx, []string{"um_a"}, func(map[string]string) (map[string]string, []string, error) {
		return map[string]string{"um_a": "a2", "um_other": "x"}, nil, nil
	})
	if err == nil {
		t.Fatal("an update of a key it did not read succeeded")
	}
	v, _ = get("um_a")
	equal(t, "after a refused update", v, "a1")
	_, ok = get("um_other")
	equal(t, "the unread key", ok, false)
	err = m.UpdateMeta(ctx, []string{"um_a"}, func(map[string]string) (map[string]string, []string, error) {
		return nil, []string{"um_new"}, nil
	})
	if err == nil {
		t.Fatal("a deletion of a key it did not read succeeded")
	}
	_, ok = get("um_new")
	equal(t, "the key it tried to delete", ok, true)
}
