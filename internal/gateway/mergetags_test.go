package gateway

import (
	"slices"
	"testing"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/store"
)

// A token's or an agent's tag whose key differs only in case from one the
// host has is not applied (the existing one stays, and the key is
// reported); the same spelling overwrites as before.
func TestMergeTagsKeyCase(t *testing.T) {
	existing := []store.Tag{{Key: "Team", Value: "prod"}, {Key: "env", Value: "a"}}
	token := []store.Tag{{Key: "team", Value: "dev"}, {Key: "env", Value: "b"}, {Key: "Owner", Value: "x"}}
	agent := []agentproto.Tag{{Key: "owner", Value: "y"}, {Key: "TEAM", Value: "z"}, {Key: "rack", Value: "3"}, {Key: "kaginashi:os", Value: "lie"}}
	got, dropped := mergeTags(existing, token, agent)
	want := []store.Tag{{Key: "Team", Value: "prod"}, {Key: "env", Value: "b"}, {Key: "Owner", Value: "x"}, {Key: "rack", Value: "3"}}
	if !slices.Equal(got, want) {
		t.Errorf("mergeTags = %v, want %v", got, want)
	}
	if w := []string{"team", "owner", "TEAM"}; !slices.Equal(dropped, w) {
		t.Errorf("dropped = %v, want %v", dropped, w)
	}
	if !slices.Equal(existing, []store.Tag{{Key: "Team", Value: "prod"}, {Key: "env", Value: "a"}}) {
		t.Errorf("mergeTags changed its input: %v", existing)
	}
}

// The agent's tags add keys but never change a value the host has or its
// token gives: before, a re-enrolled host's Team=prod claim overrode its
// Team=sandbox token.
func TestMergeTagsAgentOnlyAdds(t *testing.T) {
	existing := []store.Tag{{Key: "Team", Value: "prod"}, {Key: "Owner", Value: "ops"}}
	token := []store.Tag{{Key: "Team", Value: "sandbox"}}
	agent := []agentproto.Tag{{Key: "Team", Value: "prod"}, {Key: "Owner", Value: "me"}, {Key: "rack", Value: "3"}}
	got, dropped := mergeTags(existing, token, agent)
	want := []store.Tag{{Key: "Team", Value: "sandbox"}, {Key: "Owner", Value: "ops"}, {Key: "rack", Value: "3"}}
	if !slices.Equal(got, want) || len(dropped) != 0 {
		t.Errorf("mergeTags = %v (dropped %v), want %v", got, dropped, want)
	}
}
