package postgres_test

import (
	"testing"

	"github.com/kaginashi/kaginashi/internal/store/storetest"
)

func TestAgentCAs(t *testing.T) { storetest.AgentCAs(t, open) }
