package console

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/awsapi"
	"github.com/kaginashi/kaginashi/internal/connect"
	"github.com/kaginashi/kaginashi/internal/gateway"
	"github.com/kaginashi/kaginashi/internal/iam"
	"github.com/kaginashi/kaginashi/internal/inventory"
	"github.com/kaginashi/kaginashi/internal/recording"
)

// The browser terminal: the server is the SSH client. It makes a one-time
// Ed25519 key, has it authorized and pushed exactly as SendSSHPublicKey
// (awsapi.Invoke: the same policy and audit event), opens a stream through
// the instance's agent to its sshd, verifies the host key against the
// inventory (the keys the agent reported; nothing else is trusted), and
// bridges a PTY to the browser's WebSocket. The private key never leaves
// this function's memory.

// WebSocket close codes of the terminal (docs/CONSOLE-API.md).
const (
	closeDenied      websocket.StatusCode = 4403
	closeUnavailable websocket.StatusCode = 4404
	closeSignedOut   websocket.StatusCode = 4401
	closeFailure     websocket.StatusCode = 4500
)

const (
	termReadLimit    = 64 << 10
	termWriteTimeout = time.Minute // a browser that takes no output for this long is gone
	sshHandshake     = 20 * time.Second
	livenessEvery    = 15 * time.Second
)

// control is a text frame from the browser.
type control struct {
	Type string `json:"type"`
	Cols int    `json:"cols"`
	Rows int    `json:"rows"`
}

// parseControl reads a control frame: only resize exists, with a size from
// 1×1 to 1000×1000.
func parseControl(b []byte) (control, error) {
	var m control
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return control{}, fmt.Errorf("not a control message: %v", err)
	}
	if dec.More() {
		return control{}, errors.New("text after the control message")
	}
	switch m.Type {
	case "resize":
		if m.Cols < 1 || m.Rows < 1 || m.Cols > 1000 || m.Rows > 1000 {
			return control{}, fmt.Errorf("terminal size %dx%d out of range", m.Cols, m.Rows)
		}
		return m, nil
	}
	return control{}, fmt.Errorf("unknown control message type %q", m.Type)
}

// frame is a text frame to the browser.
type frame struct {
	Type    string `json:"type"`
	Message string `json:"message,omitempty"`
	Code    string `json:"code,omitempty"`
	Status  *int   `json:"status,omitempty"`
}

func sizeParam(v string, def int) (int, bool) {
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 1 && n <= 1000
}

func (c *Console) handleTerminal(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sess, p, ok := c.session(w, r, true, q.Get("csrf"))
	if !ok {
		return
	}
	instanceID, osUser := q.Get("instanceId"), q.Get("osUser")
	if err := inventory.ValidInstanceID(instanceID); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidInput", "instanceId: "+apierr.As(err).Message)
		return
	}
	if err := connect.ValidOSUser(osUser); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidInput", "osUser: "+err.Error())
		return
	}
	cols, ok1 := sizeParam(q.Get("cols"), 80)
	rows, ok2 := sizeParam(q.Get("rows"), 24)
	port, err := strconv.Atoi(orDefault(q.Get("port"), strconv.Itoa(c.sshPort(instanceID))))
	if !ok1 || !ok2 || err != nil || port < 1 || port > 65535 {
		writeError(w, http.StatusBadRequest, "InvalidInput", "cols and rows are 1 to 1000, port 1 to 65535.")
		return
	}
	if !c.takeTerminal(p.ARN) {
		writeError(w, http.StatusTooManyRequests, "TooManyTerminals", "Too many terminal sessions are open; close one and try again.")
		return
	}
	defer c.releaseTerminal(p.ARN)
	// The terminal outlives the server's request timeouts.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	opts := &websocket.AcceptOptions{}
	for _, o := range c.origins {
		opts.OriginPatterns = append(opts.OriginPatterns, o)
	}
	ws, err := websocket.Accept(w, r, opts)
	if err != nil {
		c.deps.Log.Warn("console: terminal WebSocket handshake failed", "err", err)
		return
	}
	ws.SetReadLimit(termReadLimit)
	t := &terminal{c: c, ws: ws, sess: sess, p: p, info: c.requestInfo(r), instanceID: instanceID, osUser: osUser, cols: cols, rows: rows, port: port}
	t.run(awsapi.WithConsoleSession(r.Context(), sess.Created))
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// terminal is one browser terminal session.
type terminal struct {
	c          *Console
	ws         *websocket.Conn
	sess       Session
	p          *iam.Principal
	info       iam.RequestInfo
	instanceID string
	osUser     string
	cols, rows int
	port       int
}

// endError ends a session with an error frame and a close code.
type endError struct {
	code    string
	close   websocket.StatusCode
	message string
}

func (e *endError) Error() string { return e.code + ": " + e.message }

func (t *terminal) send(ctx context.Context, f frame) error {
	b, _ := json.Marshal(f)
	wctx, cancel := context.WithTimeout(ctx, termWriteTimeout)
	defer cancel()
	return t.ws.Write(wctx, websocket.MessageText, b)
}

// closeReason fits a close reason in a control frame (123 bytes), cut on
// a UTF-8 boundary.
func closeReason(s string) string {
	if len(s) <= 123 {
		return s
	}
	for i := 120; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return ""
}

func (t *terminal) fail(ctx context.Context, e *endError) {
	_ = t.send(ctx, frame{Type: "error", Code: e.code, Message: e.message})
	_ = t.ws.Close(e.close, closeReason(e.message))
}

// invokeEnd maps SendSSHPublicKey's error to the terminal's words.
func invokeEnd(err error, instanceID string) *endError {
	var ie *awsapi.InvokeError
	if !errors.As(err, &ie) {
		return &endError{"InternalError", closeFailure, "We encountered an internal error. Please try again."}
	}
	switch ie.Kind {
	case apierr.AccessDenied:
		return &endError{"AccessDenied", closeDenied, ie.Message}
	case apierr.NotFound:
		return &endError{"InstanceNotFound", closeUnavailable, "Instance " + instanceID + " does not exist."}
	case apierr.Unavailable:
		return &endError{"InstanceOffline", closeUnavailable, ie.Message}
	case apierr.Throttled:
		return &endError{"Throttling", closeFailure, ie.Message}
	}
	return &endError{ie.Code, closeFailure, ie.Message}
}

func (t *terminal) run(ctx context.Context) {
	start := t.c.deps.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_ = t.send(ctx, frame{Type: "status", Message: "Authorizing and pushing a one-time key to " + t.instanceID + "…"})

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.fail(ctx, &endError{"InternalError", closeFailure, "Could not make a key."})
		return
	}
	sshPub, _ := ssh.NewPublicKey(pub)
	signer, _ := ssh.NewSignerFromSigner(priv)
	body, _ := json.Marshal(map[string]string{"InstanceId": t.instanceID, "InstanceOSUser": t.osUser,
		"SSHPublicKey": strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))})
	res, err := t.c.deps.API.Invoke(ctx, t.p, t.info, "ec2-instance-connect", "SendSSHPublicKey", nil, body)
	if err != nil {
		t.fail(ctx, invokeEnd(err, t.instanceID))
		return
	}
	keyRequest := ""
	if raw, err := awsapi.ResultJSON("ec2-instance-connect", res); err == nil {
		var out struct{ RequestId string }
		_ = json.Unmarshal(raw, &out)
		keyRequest = out.RequestId
	}

	// Only now (the caller may connect) does the instance's existence show.
	in, err := t.c.deps.Inventory.Instance(ctx, t.instanceID)
	if err != nil {
		t.fail(ctx, &endError{"InstanceNotFound", closeUnavailable, "Instance " + t.instanceID + " does not exist."})
		return
	}
	hostKeys := parseHostKeys(in.HostKeys)
	if len(hostKeys) == 0 {
		t.fail(ctx, &endError{"HostKeyUnknown", closeFailure, "The agent of " + t.instanceID + " reported no SSH host keys, so the server cannot verify the host; " +
			"run kaginashi-agent with --sshd-config naming the sshd_config whose HostKey files it should report."})
		return
	}

	_ = t.send(ctx, frame{Type: "status", Message: "Opening a tunnel through the agent…"})
	openCtx, openCancel := context.WithTimeout(ctx, 10*time.Second)
	stream, err := t.c.deps.Tunnels.OpenTunnel(openCtx, t.instanceID, t.port)
	openCancel()
	var te *gateway.TunnelError
	switch {
	case errors.Is(err, gateway.ErrNotConnected):
		t.fail(ctx, &endError{"InstanceOffline", closeUnavailable, "The agent of " + t.instanceID + " is not connected; the host may be down or unable to reach the server."})
		return
	case errors.As(err, &te):
		t.fail(ctx, &endError{"TargetRefused", closeFailure, te.Reason})
		return
	case err != nil:
		t.fail(ctx, &endError{"TargetUnreachable", closeFailure, "Could not reach the host's SSH server: " + err.Error()})
		return
	}
	defer stream.Close()

	_ = t.send(ctx, frame{Type: "status", Message: "Authenticating as " + t.osUser + "…"})
	conn := asConn(stream)
	_ = conn.SetDeadline(time.Now().Add(sshHandshake))
	cc, chans, reqs, err := ssh.NewClientConn(conn, t.instanceID, &ssh.ClientConfig{
		User: t.osUser, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeyCallback(hostKeys), HostKeyAlgorithms: hostKeyAlgorithms(hostKeys),
		ClientVersion: "SSH-2.0-kaginashi-console",
	})
	if err != nil {
		var hk *hostKeyError
		switch {
		case errors.As(err, &hk):
			t.fail(ctx, &endError{"HostKeyMismatch", closeFailure, fmt.Sprintf("The host presented key %s, which is not among the host keys its agent reported for %s: refusing to connect (a man in the middle, or a changed host key).", hk.fingerprint, t.instanceID)})
		case strings.Contains(err.Error(), "unable to authenticate"):
			t.fail(ctx, &endError{"AuthenticationFailed", closeFailure, authFailedMessage(t.osUser, t.instanceID, t.c.signingKeyProblem(t.instanceID))})
		default:
			t.fail(ctx, &endError{"ConnectionFailed", closeFailure, "The SSH connection failed: " + err.Error()})
		}
		return
	}
	_ = conn.SetDeadline(time.Time{})
	client := ssh.NewClient(cc, chans, reqs)
	defer client.Close()

	recID := recording.NewID()
	rec, err := recording.Create(t.c.recDir, recording.Header{Width: t.cols, Height: t.rows, Title: t.osUser + "@" + t.instanceID,
		Env:       map[string]string{"TERM": "xterm-256color"},
		Kaginashi: &recording.Meta{ID: recID, UserName: t.sess.UserName, UserARN: t.p.ARN, InstanceID: t.instanceID, OSUser: t.osUser, Input: t.c.cfg.RecordInput}}, t.c.deps.Now)
	if err != nil {
		t.c.deps.Log.Error("console: cannot record a terminal session", "err", err)
		t.fail(ctx, &endError{"RecordingFailed", closeFailure, "The session cannot be recorded, so it is not started."})
		return
	}
	params := map[string]any{"instanceId": t.instanceID, "osUser": t.osUser, "port": t.port}
	if err := t.c.deps.API.RecordEvent(ctx, t.p, t.info, "kaginashi", "StartTerminalSession", params,
		map[string]any{"recordingId": recID, "sendSSHPublicKeyRequestId": keyRequest, "keyFingerprint": ssh.FingerprintSHA256(sshPub)}, "", ""); err != nil {
		_ = rec.Close()
		t.fail(ctx, &endError{"InternalError", closeFailure, "The session could not be audited, so it is not started."})
		return
	}

	reason, exit, end := t.bridge(ctx, client, rec)
	recErr := rec.Close()
	if recErr != nil && end == nil {
		end = &endError{"RecordingFailed", closeFailure, "The recording could not be written; the session ended."}
	}
	extra := map[string]any{"recordingId": recID, "durationSeconds": t.c.deps.Now().Sub(start).Seconds(), "recordingBytes": rec.Bytes(), "closeReason": reason}
	if exit != nil {
		extra["exitStatus"] = *exit
	}
	errCode, errMsg := "", ""
	if end != nil {
		errCode, errMsg = end.code, end.message
	}
	if err := t.c.deps.API.RecordEvent(context.WithoutCancel(ctx), t.p, t.info, "kaginashi", "EndTerminalSession", params, extra, errCode, errMsg); err != nil {
		t.c.deps.Log.Error("console: the terminal session's end was not recorded", "err", err)
	}
	switch {
	case end != nil:
		t.fail(ctx, end)
	case exit != nil:
		_ = t.send(ctx, frame{Type: "exit", Status: exit})
		_ = t.ws.Close(websocket.StatusNormalClosure, "exit "+strconv.Itoa(*exit))
	default:
		_ = t.ws.Close(websocket.StatusNormalClosure, closeReason(reason))
	}
}

// bridge runs the shell until it exits, the browser leaves, the session
// ends or the recording fails. It returns why, the exit status if the
// shell exited, and an error to show. Writes to the browser use ctx (the
// terminal's): cancelling a write's context closes the WebSocket, which
// must stay open for the last frames.
func (t *terminal) bridge(ctx context.Context, client *ssh.Client, rec *recording.Writer) (string, *int, *endError) {
	s, err := client.NewSession()
	if err != nil {
		return "no session", nil, &endError{"ConnectionFailed", closeFailure, "The host refused a session: " + err.Error()}
	}
	defer s.Close()
	modes := ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400, ssh.IUTF8: 1}
	if err := s.RequestPty("xterm-256color", t.rows, t.cols, modes); err != nil {
		return "no pty", nil, &endError{"ConnectionFailed", closeFailure, "The host refused a terminal: " + err.Error()}
	}
	stdin, err1 := s.StdinPipe()
	stdout, err2 := s.StdoutPipe()
	stderr, err3 := s.StderrPipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		return "no pipes", nil, &endError{"InternalError", closeFailure, err.Error()}
	}
	if err := s.Shell(); err != nil {
		return "no shell", nil, &endError{"ConnectionFailed", closeFailure, "The host refused a shell: " + err.Error()}
	}
	_ = t.send(ctx, frame{Type: "status", Message: "Connected."})

	var (
		wmu                   sync.Mutex // one output at a time, recorded in the order shown
		recFailed, clientGone bool
	)
	// Backpressure: one 32 KiB buffer per stream; a browser that does not
	// take output blocks the pump, which stops reading the SSH channel,
	// whose window then stops the host.
	pump := func(r io.Reader, done chan<- struct{}) {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				wmu.Lock()
				// Recorded before it is shown: what cannot be recorded is
				// not shown (fail closed).
				if rerr := rec.Output(buf[:n]); rerr != nil {
					recFailed = true
					wmu.Unlock()
					return
				}
				wctx, wcancel := context.WithTimeout(ctx, termWriteTimeout)
				werr := t.ws.Write(wctx, websocket.MessageBinary, buf[:n])
				wcancel()
				if werr != nil {
					clientGone = true
					wmu.Unlock()
					return
				}
				wmu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}
	outDone, errDone := make(chan struct{}), make(chan struct{})
	go pump(stdout, outDone)
	go pump(stderr, errDone)
	defer func() {
		// Closing the connection ends both pumps' reads.
		s.Close()
		client.Close()
		<-outDone
		<-errDone
	}()
	flags := func() (bool, bool) {
		wmu.Lock()
		defer wmu.Unlock()
		return recFailed, clientGone
	}

	inDone := make(chan error, 1)
	go func() { inDone <- t.input(ctx, s, stdin, rec) }()

	live := time.NewTicker(livenessEvery)
	defer live.Stop()
	out, errs := (<-chan struct{})(outDone), (<-chan struct{})(errDone)
	for {
		select {
		case <-out:
			out = nil
		case <-errs:
			errs = nil
		case err := <-inDone:
			var ce *endError
			if errors.As(err, &ce) {
				return ce.code, nil, ce
			}
			return "closed by the browser", nil, nil
		case <-live.C:
			if !t.c.sessions.Alive(t.sess, false) {
				return "signed out", nil, &endError{"NotSignedIn", closeSignedOut, "The console session ended; sign in again."}
			}
			continue
		}
		rf, cg := flags()
		if rf {
			return "recording failed", nil, &endError{"RecordingFailed", closeFailure, "The recording could not be written; the session ended."}
		}
		if cg {
			return "browser connection lost", nil, nil
		}
		if out != nil || errs != nil {
			continue
		}
		// Both output streams ended: all output is shown; the status.
		err := s.Wait()
		var ee *ssh.ExitError
		switch {
		case err == nil:
			z := 0
			return "exit", &z, nil
		case errors.As(err, &ee):
			st := ee.ExitStatus()
			return "exit", &st, nil
		default:
			return "connection lost", nil, &endError{"ConnectionLost", closeFailure, "The connection to the host was lost."}
		}
	}
}

// input copies the browser's keystrokes to the shell and applies resizes.
func (t *terminal) input(ctx context.Context, s *ssh.Session, stdin io.Writer, rec *recording.Writer) error {
	lastTouch := time.Time{}
	for {
		typ, b, err := t.ws.Read(ctx)
		if err != nil {
			return err
		}
		switch typ {
		case websocket.MessageBinary:
			if now := time.Now(); now.Sub(lastTouch) > 5*time.Second {
				// Typing is activity: it keeps the session from idling out.
				if !t.c.sessions.Alive(t.sess, true) {
					return &endError{"NotSignedIn", closeSignedOut, "The console session ended; sign in again."}
				}
				lastTouch = now
			}
			if t.c.cfg.RecordInput {
				if err := rec.Input(b); err != nil {
					return &endError{"RecordingFailed", closeFailure, "The recording could not be written; the session ended."}
				}
			}
			if _, err := stdin.Write(b); err != nil {
				return err
			}
		case websocket.MessageText:
			m, err := parseControl(b)
			if err != nil {
				_ = t.send(ctx, frame{Type: "error", Code: "InvalidMessage", Message: err.Error()})
				continue
			}
			if err := s.WindowChange(m.Rows, m.Cols); err != nil {
				return err
			}
			if err := rec.Resize(m.Cols, m.Rows); err != nil {
				return &endError{"RecordingFailed", closeFailure, "The recording could not be written; the session ended."}
			}
		}
	}
}

// keyProblemReporter knows the signing-key problem a host's agent reports
// (gateway.Gateway, peer.Router).
type keyProblemReporter interface {
	SigningKeyProblem(instanceID string) string
}

// signingKeyProblem is what the instance's agent reports, "" if nothing.
func (c *Console) signingKeyProblem(instanceID string) string {
	if r, ok := c.deps.Tunnels.(keyProblemReporter); ok {
		return r.SigningKeyProblem(instanceID)
	}
	return ""
}

// authFailedMessage is the terminal's words when the host's sshd refused
// the one-time key: the agent's signing-key problem when it reports one
// (the likely cause, and one the user cannot fix: it names it for the
// operator), else the usual suspects.
func authFailedMessage(osUser, instanceID, keyProblem string) string {
	if keyProblem != "" {
		return "The host's sshd refused the key for " + osUser + ": the agent of " + instanceID +
			" reports a problem with the key that signs pushed keys, so no pushed key works there until an administrator solves it: " + keyProblem
	}
	return "The host's sshd refused the key for " + osUser + ": does the user exist there, and does sshd use kaginashi-agent's AuthorizedKeysCommand?"
}

// --- host keys ---------------------------------------------------------------

func parseHostKeys(lines []string) []ssh.PublicKey {
	var out []ssh.PublicKey
	for _, l := range lines {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(l))
		if err == nil {
			out = append(out, k)
		}
	}
	return out
}

type hostKeyError struct{ fingerprint string }

func (e *hostKeyError) Error() string { return "host key " + e.fingerprint + " is not the instance's" }

// hostKeyCallback accepts exactly the inventory's keys.
func hostKeyCallback(keys []ssh.PublicKey) ssh.HostKeyCallback {
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		b := key.Marshal()
		for _, k := range keys {
			if bytes.Equal(k.Marshal(), b) {
				return nil
			}
		}
		return &hostKeyError{fingerprint: ssh.FingerprintSHA256(key)}
	}
}

// hostKeyAlgorithms asks the server for the kinds of key the inventory
// has, so that a host with several keys presents one that can be checked.
func hostKeyAlgorithms(keys []ssh.PublicKey) []string {
	var out []string
	seen := map[string]bool{}
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, k := range keys {
		switch k.Type() {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
		default:
			add(k.Type())
		}
	}
	return out
}

// asConn makes a tunnel stream a net.Conn for the SSH client (yamux
// streams are one already).
func asConn(rw io.ReadWriteCloser) net.Conn {
	if c, ok := rw.(net.Conn); ok {
		return c
	}
	return rwConn{rw}
}

type rwConn struct{ io.ReadWriteCloser }

type tunnelAddr struct{}

func (tunnelAddr) Network() string { return "kaginashi-tunnel" }
func (tunnelAddr) String() string  { return "tunnel" }

func (rwConn) LocalAddr() net.Addr              { return tunnelAddr{} }
func (rwConn) RemoteAddr() net.Addr             { return tunnelAddr{} }
func (rwConn) SetDeadline(time.Time) error      { return nil }
func (rwConn) SetReadDeadline(time.Time) error  { return nil }
func (rwConn) SetWriteDeadline(time.Time) error { return nil }
