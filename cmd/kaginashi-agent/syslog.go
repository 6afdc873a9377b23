package main

import (
	"fmt"
	"log/syslog"
	"os"
	"time"

	"github.com/kaginashi/kaginashi/internal/keyrecord"
)

// logProvided writes one authpriv line per key served to sshd, as AWS's
// agent does ("Providing ssh key from EC2 Instance Connect with
// fingerprint: ..."), so the host's own auth log tells who logged in with
// which pushed key. Syslog being down never delays a login: the write is
// given a short time and abandoned.
func logProvided(recs []keyrecord.Record) {
	if len(recs) == 0 {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var w *syslog.Writer
		var err error
		if addr := os.Getenv("KAGINASHI_SYSLOG_SOCKET"); addr != "" {
			// A test's own syslog socket; the host's /dev/log otherwise.
			w, err = syslog.Dial("unixgram", addr, syslog.LOG_AUTHPRIV|syslog.LOG_INFO, "kaginashi-agent")
		} else {
			w, err = syslog.New(syslog.LOG_AUTHPRIV|syslog.LOG_INFO, "kaginashi-agent")
		}
		if err != nil {
			return
		}
		defer w.Close()
		for _, r := range recs {
			_ = w.Info(fmt.Sprintf("Providing ssh key from kaginashi with fingerprint: %s, request-id: %s, for IAM principal: %s, user: %s",
				r.Fingerprint, r.RequestID, r.CallerARN, r.OSUser))
		}
	}()
	select {
	case <-done:
	case <-time.After(300 * time.Millisecond):
	}
}
