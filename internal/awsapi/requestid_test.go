package awsapi

import (
	"regexp"
	"testing"
	"time"
)

// TestRequestIDsTimeOrdered: request IDs look like AWS's (a UUID's
// shape), are unique, and sort in the order they were made to the
// millisecond, so the store's index of key records by request ID grows at
// its end.
func TestRequestIDsTimeOrdered(t *testing.T) {
	shape := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	prev := ""
	for i := range 200 {
		if i%50 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		id := newRequestID()
		if !shape.MatchString(id) || seen[id] {
			t.Fatalf("request ID %q: wrong shape or repeated", id)
		}
		seen[id] = true
		if i%50 == 0 && id[:13] <= prev[:min(len(prev), 13)] {
			t.Fatalf("request ID %s made 2 ms after %s does not sort after it", id, prev)
		}
		prev = id
	}
}
