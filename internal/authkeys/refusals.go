package authkeys

import (
	"errors"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// Refusals: how a login's refused key records reach the agent's metrics.
//
// The command is a short-lived process sshd runs as an unprivileged user;
// it reads files and never talks to the agent (it answers whether or not
// the agent runs). When it refuses a record that sshd asked about — the
// client offered a pushed key whose record fails verification — it sends
// the agent one datagram, "akc1 REASON=N ...", to the unix datagram
// socket DIR/keys/akc-refusals.sock, which the agent binds only when it
// serves metrics (kaginashi-agent run --metrics-listen). The send is
// fire-and-forget: a non-blocking sendto on a fresh socket, no connect, no
// reply; no socket, a full queue or any error drops the count and nothing
// else. It costs a login a few microseconds, and only a login that
// offered a refused key: a served key and an unknown key send nothing.
//
// Why a datagram and not a spool file: the command would need write
// access to a directory (more privilege than reading keys/), and a spool
// needs locking, rotation and a bound on its size; a datagram socket has
// the kernel's queue as its bound and needs none of that. The socket is
// writable by every local user — as /dev/log is — so a local user can
// raise the counters (never lower them, never change what is served);
// the datagram carries only counts from a fixed set of reasons, never a
// user name, fingerprint or anything the client chose.

// RefusalSocketName is the agent's socket under keys/.
const RefusalSocketName = "akc-refusals.sock"

// RefusalSocketPath is the socket of the data directory dir.
func RefusalSocketPath(dir string) string { return filepath.Join(dir, "keys", RefusalSocketName) }

// Reasons a record sshd asked about is refused (the reason label of
// kaginashi_agent_authorized_keys_refusals_total).
const (
	AKCSignature  = "signature"  // not signed by the pinned key nor a retired one still accepted
	AKCInstance   = "instance"   // for another instance
	AKCUser       = "user"       // the offered key was pushed for another OS user
	AKCExpired    = "expired"    // past its expiry, by the server's clock
	AKCMalformed  = "malformed"  // a field fails its shape check
	AKCUnreadable = "unreadable" // the data directory could not be read (identity.json, records.json)
)

// AKCReasons lists every reason, in the order of Refusals' counts.
var AKCReasons = [...]string{AKCSignature, AKCInstance, AKCUser, AKCExpired, AKCMalformed, AKCUnreadable}

// Refusals counts refusals by reason, indexed as AKCReasons.
type Refusals [len(AKCReasons)]uint64

// Total is the number of refusals counted.
func (r *Refusals) Total() uint64 {
	var n uint64
	for _, c := range r {
		n += c
	}
	return n
}

func (r *Refusals) add(reason string) {
	for i, k := range AKCReasons {
		if k == reason {
			r[i]++
			return
		}
	}
}

// refusalReason maps VerifyRecord's error to its reason.
func refusalReason(err error) string {
	switch {
	case errors.Is(err, keyrecord.ErrSignature):
		return AKCSignature
	case errors.Is(err, keyrecord.ErrInstance):
		return AKCInstance
	case errors.Is(err, keyrecord.ErrUser):
		return AKCUser
	case errors.Is(err, keyrecord.ErrExpired):
		return AKCExpired
	}
	// Verify's only other errors are keyrecord.Check's.
	return AKCMalformed
}

// maxRefusalDatagram bounds the datagram both ways.
const maxRefusalDatagram = 256

// maxRefusalCount bounds one reason's count in one datagram (a login
// refuses at most the records the command read, at most 10,000 of them).
const maxRefusalCount = 100000

// refusalMagic starts every datagram: the format's name and version.
const refusalMagic = "akc1"

// AppendRefusals appends the datagram for r: "akc1" then " REASON=N" for
// each reason counted, in AKCReasons' order (N capped at 100,000).
func AppendRefusals(b []byte, r *Refusals) []byte {
	b = append(b, refusalMagic...)
	for i, n := range r {
		if n == 0 {
			continue
		}
		b = append(b, ' ')
		b = append(b, AKCReasons[i]...)
		b = append(b, '=')
		b = strconv.AppendUint(b, min(n, maxRefusalCount), 10)
	}
	return b
}

// ParseRefusals reads a datagram AppendRefusals wrote. Anyone on the host
// can send one, so it is strict: the magic, then at most one "REASON=N"
// per known reason, N from 1 to 100,000, single spaces, nothing else.
func ParseRefusals(b []byte) (Refusals, error) {
	var r Refusals
	if len(b) > maxRefusalDatagram {
		return r, errors.New("refusal datagram: too long")
	}
	s := string(b)
	if len(s) < len(refusalMagic) || s[:len(refusalMagic)] != refusalMagic {
		return r, errors.New("refusal datagram: not akc1")
	}
	s = s[len(refusalMagic):]
	for s != "" {
		if s[0] != ' ' {
			return r, errors.New("refusal datagram: malformed")
		}
		s = s[1:]
		end := 0
		for end < len(s) && s[end] != ' ' {
			end++
		}
		field := s[:end]
		s = s[end:]
		eq := -1
		for i := 0; i < len(field); i++ {
			if field[i] == '=' {
				eq = i
				break
			}
		}
		if eq < 0 {
			return Refusals{}, errors.New("refusal datagram: a field without '='")
		}
		idx := -1
		for i, k := range AKCReasons {
			if k == field[:eq] {
				idx = i
			}
		}
		if idx < 0 {
			return Refusals{}, errors.New("refusal datagram: unknown reason")
		}
		num := field[eq+1:]
		if num == "" || num[0] == '0' || num[0] == '+' {
			return Refusals{}, errors.New("refusal datagram: bad count")
		}
		n, err := strconv.ParseUint(num, 10, 32)
		if err != nil || n > maxRefusalCount {
			return Refusals{}, errors.New("refusal datagram: bad count")
		}
		if r[idx] != 0 {
			return Refusals{}, errors.New("refusal datagram: a reason twice")
		}
		r[idx] = n
	}
	if r.Total() == 0 {
		return r, errors.New("refusal datagram: no counts")
	}
	return r, nil
}

// SendRefusals sends r to the agent's socket of the data directory dir,
// if anything was refused; every error is ignored (see the top of this
// file: the login never waits on it).
func SendRefusals(dir string, r *Refusals) {
	if r.Total() == 0 {
		return
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return
	}
	defer syscall.Close(fd)
	msg := AppendRefusals(make([]byte, 0, 128), r)
	to := &syscall.SockaddrUnix{Name: RefusalSocketPath(dir)}
	err = syscall.Sendto(fd, msg, syscall.MSG_DONTWAIT, to)
	if err == syscall.EINTR {
		_ = syscall.Sendto(fd, msg, syscall.MSG_DONTWAIT, to)
	}
}
