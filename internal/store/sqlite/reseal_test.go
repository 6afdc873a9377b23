package sqlite_test

import (
	"testing"

	"github.com/kaginashi/kaginashi/internal/store/storetest"
)

func TestMaintenance(t *testing.T) { storetest.Maintenance(t, open) }
