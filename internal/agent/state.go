// Package agent is kaginashi's host agent: it enrolls once with a join
// token, keeps one outbound connection to the server, and persists the
// signed key records the server pushes, for the AuthorizedKeysCommand to
// serve to sshd.
//
// Data directory layout (default /var/lib/kaginashi-agent):
//
//	agent.json        server URL and instance ID            0600
//	identity.key      the agent's Ed25519 private key       0600
//	identity.crt      its client certificate                0600
//	server-ca.pem     the server's TLS CA, pinned           0600
//	keys/             what the AuthorizedKeysCommand reads (sshd runs it as
//	                  an unprivileged user, so this part is readable):
//	  identity.json   instance ID, the pinned record-signing key, clock skew
//	  records.json    active signed key records
//
// The private parts never leave mode 0600; everything under keys/ is
// public material (public keys, signatures, IDs).
package agent

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kaginashi/kaginashi/internal/authkeys"
	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// DefaultDataDir is where a packaged agent keeps its state.
const DefaultDataDir = authkeys.DefaultDataDir

// Config is the agent's private state.
type Config struct {
	Server     string `json:"server"`
	InstanceID string `json:"instanceId"`
}

// Public is keys/identity.json, what the AuthorizedKeysCommand needs (and
// nothing secret); RetiredKey one of its retired signing keys; Records is
// keys/records.json. They are defined in internal/authkeys, the small
// package the AuthorizedKeysCommand binary links, so the two always agree.
type (
	Public     = authkeys.Public
	RetiredKey = authkeys.RetiredKey
	Records    = authkeys.Records
)

// RetiredFor is how long a replaced signing key is still accepted: the
// records it signed live at most keyrecord.MaxLifetime; the rest is margin
// for clock error.
const RetiredFor = 5 * time.Minute

// Paths of a data directory.
type Paths struct{ Dir string }

func (p Paths) config() string                    { return filepath.Join(p.Dir, "agent.json") }
func (p Paths) key() string                       { return filepath.Join(p.Dir, "identity.key") }
func (p Paths) cert() string                      { return filepath.Join(p.Dir, "identity.crt") }
func (p Paths) serverCA() string                  { return filepath.Join(p.Dir, "server-ca.pem") }
func (p Paths) keysDir() string                   { return filepath.Join(p.Dir, "keys") }
func (p Paths) public() string                    { return filepath.Join(p.Dir, "keys", "identity.json") }
func (p Paths) records() string                   { return filepath.Join(p.Dir, "keys", "records.json") }
func (p Paths) enrolled() bool                    { _, err := os.Stat(p.cert()); return err == nil }
func (p Paths) readFile(f string) ([]byte, error) { return readBounded(f, 1<<20) }

// readBounded reads a file of at most max bytes.
func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	b := make([]byte, fi.Size())
	_, err = io.ReadFull(f, b)
	return b, err
}

// writeAtomic writes through a temporary file, fsync and rename: a reader
// sees the old file or the new one, never half of either, and a crash
// keeps what was acknowledged.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	return writeReplace(path, data, mode, true)
}

// writeReplace writes through a temporary file and a rename, with fsync
// of the file and its directory when durable. Without fsync the new file
// is in the page cache: every process sees it at once, and it outlives
// the writer being killed; only a crash of the whole host (power, kernel)
// may lose it or leave an older or empty file.
func writeReplace(path string, data []byte, mode os.FileMode, durable bool) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if durable {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if durable {
		if d, err := os.Open(dir); err == nil {
			_ = d.Sync() // the rename itself survives a crash
			d.Close()
		}
	}
	return nil
}

func writeJSON(path string, v any, mode os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, append(b, '\n'), mode)
}

// saveAccepted persists the key records after a record was added: as
// writeJSON, but without fsync, because nothing an fsync protects needs
// it, and it is a millisecond or more of every push's round trip.
//
//   - The record must be readable by the AuthorizedKeysCommand before the
//     agent acknowledges it (the API answers Success on the ack, and the
//     login follows). A rename without fsync is: the command is another
//     process reading the same page cache, and killing the agent right
//     after the ack loses nothing the kernel holds.
//   - Only a crash of the whole host can lose the write, and then it
//     loses nothing of value: a record lives 60 seconds, and a host that
//     lost power is rebooting — sshd is not taking logins — while its
//     records expire. The user pushes the key again, as after any failed
//     login.
//   - A crash cannot bring back a withdrawn record: the file written here
//     is built from the records held, which exclude withdrawn ones, and a
//     withdrawal (revoke) is written with fsync, so what the disk holds
//     after a crash is that file or a later one. A torn or empty file is
//     unreadable: the command prints no keys and the daemon starts with
//     none (fail closed).
func (p Paths) saveAccepted(rs Records) error {
	b, err := json.MarshalIndent(rs, "", "  ")
	if err != nil {
		return err
	}
	return writeReplace(p.records(), append(b, '\n'), 0o644, false)
}

// ensureDirs creates the data directory (0711: others may only pass
// through, to keys/) and keys/ (0755).
func (p Paths) ensureDirs() error {
	if err := os.MkdirAll(p.Dir, 0o711); err != nil {
		return err
	}
	if err := os.Chmod(p.Dir, 0o711); err != nil {
		return err
	}
	return os.MkdirAll(p.keysDir(), 0o755)
}

func (p Paths) loadConfig() (Config, error) {
	var c Config
	b, err := p.readFile(p.config())
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(b, &c)
}

func (p Paths) loadKey() (ed25519.PrivateKey, error) {
	b, err := p.readFile(p.key())
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("identity.key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity.key: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("identity.key: not an Ed25519 key")
	}
	return ek, nil
}

// LoadPublic reads keys/identity.json (authkeys.LoadPublic).
func (p Paths) LoadPublic() (Public, error) { return authkeys.LoadPublic(p.Dir) }

// LoadRecords reads keys/records.json; a missing file is no records
// (authkeys.LoadRecords).
func (p Paths) LoadRecords() ([]keyrecord.Record, error) { return authkeys.LoadRecords(p.Dir) }
