// Package authkeys is kaginashi's AuthorizedKeysCommand: what sshd runs, as
// an unprivileged user, on every login attempt, with a user name and a key
// fingerprint the client chose. It reads the public part of the agent's
// data directory (keys/identity.json and keys/records.json), verifies every
// record again, and prints the active keys for that user.
//
// It is its own small package, linked into its own small binary
// (cmd/kaginashi-authorized-keys) as well as into kaginashi-agent, for two
// reasons:
//
//   - Start-up time. sshd waits for the command on every login, and a Go
//     program's start-up grows with what it links: the runtime and the
//     package initialisers of net/http, crypto/tls, x509, yamux, slog …
//     cost kaginashi-agent ~1 ms more than an empty Go program, which is
//     half of the 2 ms budget (docs/BENCHMARKS.md, "Host agent").
//   - Attack surface. Code that attacker-chosen input reaches should be
//     only the code that needs it: no network client, no TLS, no HTTP.
//
// So the imports are kept to the standard library's basics (os, bufio,
// flag, syscall, time; not even encoding/json: decode.go says why) and
// internal/keyrecord; authkeys_test
// checks that list with `go list -deps`. Do not import internal/agent or
// anything that pulls in net, crypto/tls or log/slog from here.
package authkeys

import (
	"bufio"
	"crypto/ed25519"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// Version is the build's version, set by the linker (-X) as
// internal/agent.Version is for kaginashi-agent: setup-sshd installs this
// binary only when it reports the same version as the agent next to it.
var Version = "dev"

// DefaultDataDir is where a packaged agent keeps its state (the same as
// internal/agent.DefaultDataDir, which is defined from this).
const DefaultDataDir = "/var/lib/kaginashi-agent"

// Bounds of the files read: both are written by the agent (root), but the
// command must never be made to allocate without limit.
const (
	maxPublic  = 64 << 10
	maxRecords = 8 << 20
)

// Public is keys/identity.json: what the AuthorizedKeysCommand needs, and
// nothing secret.
type Public struct {
	InstanceID string `json:"instanceId"`
	// SigningKey is the server's Ed25519 key, pinned at enrollment (and
	// replaced only by an endorsed rollover).
	SigningKey []byte `json:"signingKey"`
	// RetiredSigningKeys are keys SigningKey replaced, still accepted
	// until their Until (server time, Unix milliseconds): records signed
	// just before the rotation live at most 60 s. The agent daemon writes
	// them (internal/agent, rollover); entries whose Until has passed are
	// ignored. This shape is a contract between the two: do not change it.
	RetiredSigningKeys []RetiredKey `json:"retiredSigningKeys,omitempty"`
	// ClockSkewMillis is server time minus host time, as last measured.
	ClockSkewMillis int64 `json:"clockSkewMillis"`
	// ExpiryOption: sshd understands expiry-time="..." (OpenSSH 7.7+).
	ExpiryOption bool `json:"expiryOption"`
}

// RetiredKey is a signing key accepted until a time on the server's clock.
type RetiredKey struct {
	Key   []byte `json:"key"`   // Ed25519 public key (base64 std in JSON, like signingKey)
	Until int64  `json:"until"` // Unix milliseconds, server clock
}

// Records is keys/records.json: the active signed key records.
type Records struct {
	Records []keyrecord.Record `json:"records"`
}

// PublicPath and RecordsPath are the files under the data directory dir.
func PublicPath(dir string) string  { return filepath.Join(dir, "keys", "identity.json") }
func RecordsPath(dir string) string { return filepath.Join(dir, "keys", "records.json") }

// LoadPublic reads keys/identity.json of the data directory dir.
func LoadPublic(dir string) (Public, error) {
	var pub Public
	p := PublicPath(dir)
	b, err := ReadBounded(p, maxPublic)
	if err != nil {
		return pub, err
	}
	if err := decodePublic(b, &pub); err != nil {
		return pub, &fileError{p, err}
	}
	if len(pub.SigningKey) != ed25519.PublicKeySize {
		return pub, &fileError{p, errors.New("no valid signing key")}
	}
	return pub, nil
}

// LoadRecords reads keys/records.json of dir; a missing file is no records.
func LoadRecords(dir string) ([]keyrecord.Record, error) {
	p := RecordsPath(dir)
	b, err := ReadBounded(p, maxRecords)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rs Records
	if err := decodeRecords(b, &rs); err != nil {
		return nil, &fileError{p, err}
	}
	return rs.Records, nil
}

// fileError names the file a decoding error is about (fmt.Errorf without
// linking fmt's callers' worth of formatting: this is on the login path).
type fileError struct {
	path string
	err  error
}

func (e *fileError) Error() string { return e.path + ": " + e.err.Error() }
func (e *fileError) Unwrap() error { return e.err }

// ReadBounded reads a file of at most max bytes.
//
// It uses the system calls directly rather than os.Open: an *os.File
// registers with the runtime's network poller, whose first use (epoll and
// its wake-up descriptor) is start-up cost this process pays for nothing.
// Errors are *fs.PathError as os.Open's are (errors.Is(err,
// fs.ErrNotExist) holds for a missing file). O_NONBLOCK: a FIFO put in the
// file's place is refused at once instead of hanging the login.
func ReadBounded(path string, max int64) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	for err == syscall.EINTR {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, &fileError{path, errors.New("not a regular file")}
	}
	if st.Size > max {
		return nil, &fileError{path, errors.New("larger than " + strconv.FormatInt(max, 10) + " bytes")}
	}
	// Room for one byte more than the size: a file that grew since Fstat
	// is read whole up to max, or refused, never cut silently.
	b := make([]byte, 0, st.Size+1)
	for {
		if int64(len(b)) > max {
			return nil, &fileError{path, errors.New("larger than " + strconv.FormatInt(max, 10) + " bytes")}
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := syscall.Read(fd, b[len(b):cap(b)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

// VerifyRecord checks r as keyrecord.Record.Verify does — well formed,
// for instanceID and user (any user when user is ""), unexpired at
// serverNow — with the signature made by the current signing key or, if
// that fails, by a retired one whose Until is after serverNow. The error is
// the current key's when no key verifies. (The agent daemon checks pushed
// records with it too.)
func (p Public) VerifyRecord(r *keyrecord.Record, instanceID, user string, serverNow time.Time) error {
	err := r.Verify(p.SigningKey, instanceID, user, serverNow)
	if !errors.Is(err, keyrecord.ErrSignature) {
		return err
	}
	for _, k := range p.RetiredSigningKeys {
		if k.Until > serverNow.UnixMilli() && len(k.Key) == ed25519.PublicKeySize {
			if r.Verify(k.Key, instanceID, user, serverNow) == nil {
				return nil
			}
		}
	}
	return err
}

// AuthorizedKeys writes to w the active, verified keys for user in the
// agent data directory dir (only the one with fingerprint, when sshd
// passes %f), each with its expiry-time, and nothing else. It reads what
// the agent persisted, so it answers whether or not the agent daemon runs,
// and verifies every record again against the pinned server key. provided
// is told about each key printed, for the syslog line.
//
// No key is no output and no error: sshd then tries its other methods,
// and nothing is logged as a failure (AWS's agent exits non-zero there and
// fills logs with "status 22").
func AuthorizedKeys(dir, user, fingerprint string, now time.Time, w io.Writer, provided func(keyrecord.Record)) error {
	return Serve(dir, user, fingerprint, now, w, provided, nil)
}

// Serve is AuthorizedKeys that also counts, in refused (when not nil),
// the records sshd asked about that it refused, by reason (refusals.go):
//
//   - with a fingerprint (sshd's %f, what setup-sshd configures): each
//     record of that key — pushed for another user ("user"), or failing
//     verification (signature, instance, expired, malformed);
//   - without one (sshd asks for all of the user's keys, whichever the
//     client offered): the user's records failing verification, except
//     the expired ones, which stay in records.json until the agent's next
//     write and say nothing about this login;
//   - a data directory that cannot be read counts once as "unreadable".
func Serve(dir, user, fingerprint string, now time.Time, w io.Writer, provided func(keyrecord.Record), refused *Refusals) error {
	if refused == nil {
		refused = new(Refusals)
	}
	pub, err := LoadPublic(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // not enrolled: no keys
	}
	if err != nil {
		refused.add(AKCUnreadable)
		return err
	}
	recs, err := LoadRecords(dir)
	if err != nil {
		refused.add(AKCUnreadable)
		return err
	}
	skew := time.Duration(pub.ClockSkewMillis) * time.Millisecond
	serverNow := now.Add(skew)
	bw := bufio.NewWriter(w)
	for i := range recs {
		r := &recs[i]
		// user and fingerprint come from the client (through sshd): they
		// are only ever compared, never printed or logged.
		if fingerprint != "" && r.Fingerprint != fingerprint {
			continue
		}
		if r.OSUser != user {
			if fingerprint != "" {
				refused.add(AKCUser)
			}
			continue
		}
		if err := pub.VerifyRecord(r, pub.InstanceID, user, serverNow); err != nil {
			if reason := refusalReason(err); fingerprint != "" || reason != AKCExpired {
				refused.add(reason)
			}
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
