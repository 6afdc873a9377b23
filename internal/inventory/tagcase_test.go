package inventory

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store"
)

func TestCheckTagKeyCase(t *testing.T) {
	tag := func(kv ...string) []store.Tag {
		var out []store.Tag
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, store.Tag{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	for _, tc := range []struct {
		name          string
		existing, add []store.Tag
		want          string // part of the error; "" for none
	}{
		{"new keys", tag("Team", "a"), tag("env", "b", "owner", "c"), ""},
		{"same spelling overwrites", tag("Team", "a"), tag("Team", "b"), ""},
		{"same key twice in the request", nil, tag("Team", "a", "Team", "b"), ""},
		{"other case than an existing tag", tag("Team", "prod"), tag("team", "dev"), `existing tag "Team"`},
		{"upper case than an existing tag", tag("team", "prod"), tag("TEAM", "dev"), `use "team"`},
		{"two spellings in one request", nil, tag("Team", "prod", "team", "dev"), `"Team" and "team" differ only in case`},
		{"two spellings, one existing", tag("Team", "x"), tag("Team", "prod", "tEAM", "dev"), "differ only in case"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckTagKeyCase(tc.existing, tc.add)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckTagKeyCase: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckTagKeyCase: %v, want an error with %q", err, tc.want)
			}
			if ae := apierr.As(err); ae.Kind != apierr.InvalidInput || ae.Code != "InvalidParameterValue" {
				t.Errorf("error kind %v code %q, want InvalidInput InvalidParameterValue", ae.Kind, ae.Code)
			}
		})
	}
}

func TestAmbiguousTagKeys(t *testing.T) {
	tags := []store.Tag{{Key: "team", Value: "dev"}, {Key: "env", Value: "x"}, {Key: "Team", Value: "prod"}, {Key: "TEAM", Value: "q"}, {Key: "Name", Value: "n"}, {Key: "name", Value: "n"}}
	want := []string{"name", "team"}
	if got := AmbiguousTagKeys(tags); !slices.Equal(got, want) {
		t.Errorf("AmbiguousTagKeys = %v, want %v", got, want)
	}
	slices.Reverse(tags)
	if got := AmbiguousTagKeys(tags); !slices.Equal(got, want) {
		t.Errorf("AmbiguousTagKeys (reversed) = %v, want %v", got, want)
	}
	if got := AmbiguousTagKeys([]store.Tag{{Key: "a"}, {Key: "b"}}); got != nil {
		t.Errorf("AmbiguousTagKeys of distinct keys = %v", got)
	}
}

// CreateTags refuses a key that another spelling of is on the resource
// (the instance has "team"), and tags none of the resources then.
func TestCreateTagsKeyCase(t *testing.T) {
	s, st := newService(t)
	ctx := context.Background()
	a, c := "i-0000000000000000a", "i-0000000000000000c"
	err := s.CreateTags(ctx, []string{c, a}, []store.Tag{{Key: "Team", Value: "prod"}})
	if err == nil || !strings.Contains(err.Error(), `existing tag "team"`) {
		t.Fatalf("CreateTags Team on an instance with team: %v", err)
	}
	for _, id := range []string{a, c} {
		tags, err := st.ResourceTags(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range tags {
			if tg.Key == "Team" {
				t.Errorf("%s got Team=%s though the call was refused", id, tg.Value)
			}
		}
	}
	if err := s.CreateTags(ctx, []string{c, a}, []store.Tag{{Key: "team", Value: "db"}}); err != nil {
		t.Fatalf("CreateTags with the existing spelling: %v", err)
	}
	ep, err := s.Endpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTags(ctx, []string{ep.ID}, []store.Tag{{Key: "Owner", Value: "a"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTags(ctx, []string{ep.ID}, []store.Tag{{Key: "owner", Value: "b"}}); err == nil {
		t.Error("CreateTags owner on the endpoint tagged Owner: allowed")
	}
	got, err := s.ResourceTags(ctx, ep.ID)
	if err != nil || len(got) != 1 || got[0] != (store.Tag{Key: "Owner", Value: "a"}) {
		t.Errorf("endpoint tags %v, %v; want Owner=a", got, err)
	}
}
