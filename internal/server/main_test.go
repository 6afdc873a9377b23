package server

import (
	"testing"

	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
)

// TestMain stops the PostgreSQL server that the peer listener's tests
// start (pgtest.Start); tests that need none do not start it.
func TestMain(m *testing.M) { pgtest.Main(m) }
