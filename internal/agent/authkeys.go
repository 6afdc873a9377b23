package agent

import (
	"io"
	"time"

	"github.com/kaginashi/kaginashi/internal/authkeys"
	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// AuthorizedKeys is the AuthorizedKeysCommand (authkeys.AuthorizedKeys) on
// the data directory p: the active, verified keys for user on this
// instance, each with its expiry-time, and nothing else. The code lives in
// internal/authkeys so that the small kaginashi-authorized-keys binary and
// `kaginashi-agent authorized-keys` are one implementation.
func AuthorizedKeys(p Paths, user, fingerprint string, now time.Time, w io.Writer, provided func(keyrecord.Record)) error {
	return authkeys.AuthorizedKeys(p.Dir, user, fingerprint, now, w, provided)
}
