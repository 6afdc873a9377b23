package agent

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"time"

	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// AuthorizedKeys is the AuthorizedKeysCommand: it writes to w the active,
// verified keys for user on this instance (only the one with fingerprint,
// when sshd passes %f), each with its expiry-time, and nothing else. It
// reads what the agent persisted, so it answers whether or not the agent
// daemon runs, and verifies every record again against the pinned server
// key (or a retired one, within its window). provided is told about each
// key printed, for the syslog line.
//
// No key is no output and no error: sshd then tries its other methods,
// and nothing is logged as a failure (AWS's agent exits non-zero there and
// fills logs with "status 22").
func AuthorizedKeys(p Paths, user, fingerprint string, now time.Time, w io.Writer, provided func(keyrecord.Record)) error {
	pub, err := p.LoadPublic()
	if errors.Is(err, fs.ErrNotExist) {
		return nil // not enrolled: no keys
	}
	if err != nil {
		return err
	}
	recs, err := p.LoadRecords()
	if err != nil {
		return err
	}
	skew := time.Duration(pub.ClockSkewMillis) * time.Millisecond
	serverNow := now.Add(skew)
	bw := bufio.NewWriter(w)
	for i := range recs {
		r := &recs[i]
		if r.OSUser != user || (fingerprint != "" && r.Fingerprint != fingerprint) {
			continue
		}
		if pub.VerifyRecord(r, pub.InstanceID, user, serverNow) != nil {
			continue
		}
		if _, err := bw.WriteString(r.AuthorizedKeysLine(-skew, pub.ExpiryOption) + "\n"); err != nil {
			return err
		}
		if provided != nil {
			provided(*r)
		}
	}
	return bw.Flush()
}
