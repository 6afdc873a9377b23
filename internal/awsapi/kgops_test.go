package awsapi

import (
	"context"
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/gateway"
)

// TestCreateJoinTokenTagRules: a join token's tags become the enrolled
// instance's tags, so they follow CreateTags' rules — checked before the
// token exists, not found out at enrolment.
func TestCreateJoinTokenTagRules(t *testing.T) {
	create := kgOps()["CreateJoinToken"]
	for _, tc := range []struct{ tags, want string }{
		{`[{"Key":"k","Value":"` + strings.Repeat("v", 257) + `"}]`, "at most 256"},
		{`[{"Key":"` + strings.Repeat("k", 129) + `","Value":"v"}]`, "1 to 128"},
		{`[{"Key":"","Value":"v"}]`, "1 to 128"},
		{`[{"Key":"aws:x","Value":"1"}]`, "'aws:' are reserved"},
		{`[{"Key":"kaginashi:default-user","Value":"root"}]`, "'kaginashi:' are reserved"},
		{`[{"Key":"Team","Value":"prod"},{"Key":"team","Value":"dev"}]`, "differ only in case"},
	} {
		c := &call{ctx: context.Background(), h: &Handler{deps: Deps{Tokens: &gateway.Tokens{}}},
			body: []byte(`{"TtlSeconds":60,"MaxUses":1,"Tags":` + tc.tags + `}`)}
		_, err := create.run(c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("tags %.60s: %v; want an error saying %q", tc.tags, err, tc.want)
			continue
		}
		if ae := apierr.As(err); ae.Kind != apierr.InvalidInput || ae.Code != "InvalidParameterValue" {
			t.Errorf("tags %.60s: %v; want InvalidParameterValue", tc.tags, err)
		}
	}
}
