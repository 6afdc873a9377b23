package sqlite_test

import (
	"testing"

	"github.com/kaginashi/kaginashi/internal/store/storetest"
)

func TestAgentSessions(t *testing.T) { storetest.AgentSessions(t, open) }
