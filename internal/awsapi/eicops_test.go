package awsapi

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store"
)

type instancesFunc func(ctx context.Context, id string) (store.Instance, error)

func (f instancesFunc) CachedInstance(ctx context.Context, id string) (store.Instance, error) {
	return f(ctx, id)
}

// A store that fails is an internal error, not a missing instance: the
// caller must not be told EC2InstanceNotFoundException for a database
// outage.
func TestInstanceContextStoreErrors(t *testing.T) {
	for _, c := range []struct {
		name      string
		err       error
		found     bool
		wantError bool
	}{
		{"found", nil, true, false},
		{"not found", fmt.Errorf("get instance: %w", store.ErrNotFound), false, false},
		{"store down", errors.New("database is locked"), false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := &call{ctx: context.Background(), h: &Handler{deps: Deps{Instances: instancesFunc(func(context.Context, string) (store.Instance, error) {
				return store.Instance{ID: "i-0123456789abcdef0", Tags: []store.Tag{{Key: "team", Value: "a"}}}, c.err
			})}}}
			_, found, tags, err := cl.instanceContext("i-0123456789abcdef0")
			if found != c.found || (err != nil) != c.wantError {
				t.Fatalf("found %v, err %v; want found %v, error %v", found, err, c.found, c.wantError)
			}
			if err != nil {
				if k := apierr.KindOf(err); k != apierr.Internal {
					t.Errorf("error kind %v, want Internal", k)
				}
				return
			}
			if tags == nil {
				t.Fatal("no tag setter")
			}
		})
	}
}
