package authkeys

import (
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// priAuthprivInfo is <86>: facility authpriv (10) × 8 + severity info (6),
// where sshd's own lines go (the auth log).
const priAuthprivInfo = 10<<3 | 6

// syslogBudget bounds what the syslog lines may add to a login: a syslog
// daemon that is down or stalled never delays sshd more than this.
const syslogBudget = 300 * time.Millisecond

// syslogSockets are log/syslog's local sockets, in its order.
var syslogSockets = [...]string{"/dev/log", "/var/run/syslog", "/var/run/log"}

// ProvidedLine is the message of the syslog line for a served key, as AWS's
// agent logs it ("Providing ssh key from EC2 Instance Connect with
// fingerprint: ..."), so the host's own auth log tells who logged in with
// which pushed key. Every field is a validated record field.
func ProvidedLine(r *keyrecord.Record) string {
	return "Providing ssh key from kaginashi with fingerprint: " + r.Fingerprint + ", request-id: " + r.RequestID +
		", for IAM principal: " + r.CallerARN + ", user: " + r.OSUser
}

// formatLocal is the datagram log/syslog sends to a local socket (RFC 3164
// as syslog(3) writes it: "<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG\n", no
// host name), byte for byte.
func formatLocal(pri int, t time.Time, tag string, pid int, msg string) []byte {
	b := make([]byte, 0, 64+len(tag)+len(msg))
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(pri), 10)
	b = append(b, '>')
	b = t.AppendFormat(b, time.Stamp)
	b = append(b, ' ')
	b = append(b, tag...)
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(pid), 10)
	b = append(b, "]: "...)
	b = append(b, msg...)
	if len(msg) == 0 || msg[len(msg)-1] != '\n' {
		b = append(b, '\n')
	}
	return b
}

// LogProvided writes one authpriv.info line per key served to sshd, to
// socket ("" is the host's /dev/log, or log/syslog's other local sockets).
//
// It writes the datagrams itself rather than through log/syslog: that
// package links net and fmt and costs this command ~0.2 ms of start-up on
// every login (the AKC's budget is 2 ms), for what is one socket, one
// connect and a write per line. The bytes are log/syslog's for a local
// socket (formatLocal). A datagram socket is tried first, then a stream
// one, as log/syslog does. The whole thing gets syslogBudget: each write
// blocks at most the time left (SO_SNDTIMEO), and on any error the rest is
// dropped — a login never waits on syslog.
func LogProvided(socket, tag string, now func() time.Time, recs []keyrecord.Record) {
	if len(recs) == 0 {
		return
	}
	deadline := time.Now().Add(syslogBudget)
	fd := -1
	if socket != "" {
		fd = dialLocal(socket)
	} else {
		for _, s := range syslogSockets {
			if fd = dialLocal(s); fd >= 0 {
				break
			}
		}
	}
	if fd < 0 {
		return
	}
	defer syscall.Close(fd)
	pid := os.Getpid()
	for i := range recs {
		if !time.Now().Before(deadline) {
			return
		}
		msg := formatLocal(priAuthprivInfo, now(), tag, pid, ProvidedLine(&recs[i]))
		if !writeAll(fd, msg, deadline) {
			return
		}
	}
}

// dialLocal connects a unix socket to path, datagram first, then stream;
// -1 when neither connects.
func dialLocal(path string) int {
	for _, typ := range [...]int{syscall.SOCK_DGRAM, syscall.SOCK_STREAM} {
		fd, err := syscall.Socket(syscall.AF_UNIX, typ|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1
		}
		err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: path})
		for err == syscall.EINTR {
			err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: path})
		}
		if err == nil {
			return fd
		}
		syscall.Close(fd)
		if err != syscall.EPROTOTYPE {
			return -1 // no such socket, refused, denied: not worth a second try
		}
	}
	return -1
}

// writeAll writes b (one datagram, or the bytes of a stream) before the
// deadline. Each write may block for the time left (SO_SNDTIMEO), set
// again before every try: a signal fails a blocked write with EINTR (a
// socket with a send timeout is never restarted), and a retry under the
// timeout set before it would start the whole wait over, holding the
// login up to twice the budget.
func writeAll(fd int, b []byte, deadline time.Time) bool {
	for len(b) > 0 {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		tv := syscall.NsecToTimeval(left.Nanoseconds()) // rounded up: never 0, which would mean no timeout
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv); err != nil {
			return false
		}
		n, err := syscall.Write(fd, b)
		if err == syscall.EINTR {
			continue // the Go runtime's preemption signal, say
		}
		if err != nil || n <= 0 {
			return false
		}
		b = b[n:]
	}
	return true
}
