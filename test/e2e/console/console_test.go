package console

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestConsole is the console's server side from sign-in to a recorded
// terminal session: root creates a user through /console/api/aws, the
// user signs in, lists instances, opens the terminal WebSocket to a real
// sshd behind a real agent and runs `echo ok`; the audit log and the
// recording show it; a denied user gets the deciding statement; wrong
// passwords back off.
func TestConsole(t *testing.T) {
	if world.skip != "" {
		t.Skip(world.skip)
	}
	start := time.Now()
	auditLog := filepath.Join(t.TempDir(), "audit.jsonl")
	s := harness.StartServer(t, "sqlite", "--rate-limit=-1", "--audit-log", auditLog)
	h := startHost(t, s)
	t.Logf("set up in %v", time.Since(start).Round(time.Millisecond))

	t.Run("pages", func(t *testing.T) {
		req, _ := http.NewRequest("GET", s.URL()+"/", nil)
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
		resp, err := s.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !bytes.Contains(body, []byte("<")) {
			t.Errorf("GET / from a browser: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for k, want := range map[string]string{"Content-Security-Policy": "frame-ancestors 'none'", "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "Strict-Transport-Security": "max-age="} {
			if !strings.Contains(resp.Header.Get(k), want) {
				t.Errorf("%s: %q, want %q in it", k, resp.Header.Get(k), want)
			}
		}
		// Without a browser's Accept, GET / is still the AWS API.
		resp, err = s.HTTP.Get(s.URL() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET / from an API client: %d, want 403 (MissingAuthenticationToken)", resp.StatusCode)
		}
	})

	root := newBrowser(t, s)
	if st, m := root.signIn(t, "root", s.Root.Secret, ""); st != 200 || m["root"] != true || m["arn"] != "arn:aws:iam::"+s.Account+":root" {
		t.Fatalf("root sign-in: %d %v", st, m)
	}
	if st, m, _ := root.do(t, "GET", "/console/api/session", nil); st != 200 || m["userName"] != "root" {
		t.Fatalf("session: %d %v", st, m)
	}

	t.Run("csrf", func(t *testing.T) {
		b := *root
		b.csrf = ""
		if st, m, _ := b.do(t, "POST", "/console/api/aws", map[string]any{"service": "iam", "action": "ListUsers"}); st != 403 || errCode(m) != "InvalidCSRFToken" {
			t.Errorf("without the CSRF token: %d %v", st, m)
		}
		b.csrf = root.csrf + "x"
		if st, _, _ := b.do(t, "POST", "/console/api/aws", map[string]any{"service": "iam", "action": "ListUsers"}); st != 403 {
			t.Errorf("with a wrong CSRF token: %d", st)
		}
		// Another site's page cannot sign anyone in.
		req, _ := http.NewRequest("POST", s.URL()+"/console/api/signin", strings.NewReader(`{"accountId":"`+s.Account+`","userName":"root","password":"x"}`))
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("sign-in from another origin: %d, want 403", resp.StatusCode)
		}
	})

	const pw = "Correct-Horse-9"
	instanceARN := fmt.Sprintf("arn:aws:ec2:%s:%s:instance/%s", s.Region, s.Account, h.id)
	alicePolicy := harness.Doc(
		map[string]any{"Sid": "Connect", "Effect": "Allow", "Action": "ec2-instance-connect:SendSSHPublicKey", "Resource": instanceARN,
			"Condition": map[string]any{"StringEquals": map[string]any{"ec2:osuser": "root"}}},
		map[string]any{"Sid": "Look", "Effect": "Allow", "Action": []string{"ec2:DescribeInstances", "kaginashi:ListSessionRecordings", "kaginashi:GetSessionRecording"}, "Resource": "*"},
	)
	malloryPolicy := harness.Doc(
		map[string]any{"Sid": "Look", "Effect": "Allow", "Action": []string{"ec2-instance-connect:SendSSHPublicKey", "ec2:DescribeInstances"}, "Resource": "*"},
		map[string]any{"Sid": "NoShell", "Effect": "Deny", "Action": "ec2-instance-connect:SendSSHPublicKey", "Resource": "*"},
	)
	for user, doc := range map[string]string{"alice": alicePolicy, "mallory": malloryPolicy} {
		r := root.aws(t, "iam", "CreateUser", map[string]any{"UserName": user, "Tags.member.1.Key": "team", "Tags.member.1.Value": "ops"})
		if get(r, "User", "UserName") != user || get(r, "User", "Arn") != "arn:aws:iam::"+s.Account+":user/"+user {
			t.Fatalf("CreateUser result: %v", r)
		}
		root.aws(t, "iam", "CreateLoginProfile", map[string]any{"UserName": user, "Password": pw})
		root.aws(t, "iam", "PutUserPolicy", map[string]any{"UserName": user, "PolicyName": "console", "PolicyDocument": doc})
	}
	users := root.aws(t, "iam", "ListUsers", nil)
	if list, _ := users["Users"].([]any); len(list) != 2 {
		t.Errorf("ListUsers: %v", users)
	}
	// Errors keep the AWS API's codes.
	if st, m, _ := root.do(t, "POST", "/console/api/aws", map[string]any{"service": "iam", "action": "CreateUser", "params": map[string]any{"UserName": "alice"}}); st != 409 || errCode(m) != "EntityAlreadyExists" {
		t.Errorf("CreateUser twice: %d %v", st, m)
	}

	t.Run("validate-policy", func(t *testing.T) {
		st, m, _ := root.do(t, "POST", "/console/api/validate-policy", map[string]any{"document": harness.SeedPolicy(t, s.Region, s.Account)})
		fs, _ := m["findings"].([]any)
		found := false
		for _, f := range fs {
			if get(f.(map[string]any), "findingType") == "SECURITY_WARNING" {
				found = true
			}
		}
		if st != 200 || !found {
			t.Errorf("the seed policy: %d %v, want a SECURITY_WARNING", st, m)
		}
	})

	alice := newBrowser(t, s)
	if st, m := alice.signIn(t, "alice", pw, ""); st != 200 || m["mfa"] != false || m["root"] != false {
		t.Fatalf("alice's sign-in: %d %v", st, m)
	}
	if st, m, _ := alice.do(t, "POST", "/console/api/aws", map[string]any{"service": "iam", "action": "ListUsers"}); st != 403 || errCode(m) != "AccessDenied" {
		t.Errorf("alice's ListUsers: %d %v, want AccessDenied", st, m)
	}
	st, m, _ := alice.do(t, "GET", "/console/api/instances", nil)
	list, _ := m["instances"].([]any)
	if st != 200 || len(list) != 1 || get(list[0].(map[string]any), "instanceId") != h.id || get(list[0].(map[string]any), "name") != "web" ||
		get(list[0].(map[string]any), "connected") != true {
		t.Fatalf("instances: %d %v", st, m)
	}

	t.Run("watch", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL()+"/console/api/instances/watch", nil)
		resp, err := alice.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 64<<10)
		n, _ := io.ReadAtLeast(resp.Body, buf, 20)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") ||
			!strings.HasPrefix(string(buf[:n]), "event: instances\ndata: ") || !strings.Contains(string(buf[:n]), h.id) {
			t.Errorf("watch: %d %q", resp.StatusCode, buf[:n])
		}
	})

	t.Run("terminal", func(t *testing.T) {
		tm := openTerminal(t, alice, h, "root")
		// The prompt itself: keys typed before it are echoed at once and
		// the output lands after the prompt, on its line ("# ok").
		tm.until(t, "the shell's prompt", func() bool { return tm.status("Connected.") && tm.prompt() })
		tm.send(t, "echo ok\n")
		tm.until(t, "ok", func() bool { return tm.line("ok") })
		tm.send(t, "echo 鍵なし\n")
		tm.until(t, "鍵なし", func() bool { return tm.line("鍵なし") })
		if err := tm.ws.Write(context.Background(), websocket.MessageText, []byte(`{"type":"resize","cols":100,"rows":30}`)); err != nil {
			t.Fatal(err)
		}
		tm.send(t, "stty size\n")
		tm.until(t, "the new size", func() bool { return tm.line("30 100") })
		tm.send(t, "exit 3\n")
		code := tm.close(t)
		if code != websocket.StatusNormalClosure || tm.frame("exit") == nil || get(tm.frame("exit"), "status") != float64(3) {
			t.Errorf("end: close %v, frames %v", code, tm.frames)
		}

		// The audit log: the key push as SendSSHPublicKey, marked as a
		// console session; the session's start and end.
		var push map[string]any
		for _, ev := range events(t, auditLog, "SendSSHPublicKey") {
			if get(ev, "userIdentity", "userName") == "alice" {
				push = ev
			}
		}
		if push == nil || get(push, "userIdentity", "sessionContext", "attributes", "mfaAuthenticated") != "false" ||
			get(push, "requestParameters", "instanceOSUser") != "root" || get(push, "errorCode") != nil {
			t.Errorf("SendSSHPublicKey event: %v", push)
		}
		ends := events(t, auditLog, "EndTerminalSession")
		if len(events(t, auditLog, "StartTerminalSession")) != 1 || len(ends) != 1 || get(ends[0], "additionalEventData", "exitStatus") != float64(3) {
			t.Errorf("terminal session events: end %v", ends)
		}
		recID, _ := get(ends[0], "additionalEventData", "recordingId").(string)

		// The recording: listed, readable, 0600, and it holds the output.
		st, m, _ := alice.do(t, "GET", "/console/api/recordings?instanceId="+h.id, nil)
		recs, _ := m["recordings"].([]any)
		if st != 200 || len(recs) != 1 || get(recs[0].(map[string]any), "id") != recID || get(recs[0].(map[string]any), "userName") != "alice" {
			t.Fatalf("recordings: %d %v", st, m)
		}
		st, m, hdr := alice.do(t, "GET", "/console/api/recordings/"+recID, nil)
		cast, _ := m["raw"].(string)
		if st != 200 || hdr.Get("Content-Type") != "application/x-asciicast" || !strings.HasPrefix(cast, `{"version":2,"width":80,"height":24`) ||
			!strings.Contains(cast, `"o","`) || !strings.Contains(cast, `ok\r\n`) || !strings.Contains(cast, "鍵なし") || !strings.Contains(cast, `"r","100x30"`) {
			t.Errorf("recording: %d %s\n%s", st, hdr.Get("Content-Type"), cast)
		}
		fi, err := os.Stat(filepath.Join(s.Cfg.DataDir, "recordings", recID+".cast"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("recording file: %v %v", fi, err)
		}
		if st, _, _ := root.do(t, "GET", "/console/api/recordings/rec-00000000000000000000", nil); st != 404 {
			t.Errorf("an unknown recording: %d", st)
		}
	})

	t.Run("denied", func(t *testing.T) {
		mallory := newBrowser(t, s)
		if st, m := mallory.signIn(t, "mallory", pw, ""); st != 200 {
			t.Fatalf("mallory's sign-in: %d %v", st, m)
		}
		tm := openTerminal(t, mallory, h, "root")
		code := tm.close(t)
		e := tm.frame("error")
		if code != 4403 || get(e, "code") != "AccessDenied" || !strings.Contains(fmt.Sprint(get(e, "message")), "NoShell") {
			t.Errorf("denied connect: close %v, error %v", code, e)
		}
	})

	t.Run("backoff", func(t *testing.T) {
		b := newBrowser(t, s)
		if st, m := b.signIn(t, "nobody-here", pw, ""); st != 401 || errCode(m) != "InvalidCredentials" {
			t.Errorf("unknown user: %d %v", st, m)
		}
		// Three wrong passwords for alice start her backoff (the
		// address, shared by many people behind a NAT, allows more).
		for i := 0; i < 3; i++ {
			if st, m := b.signIn(t, "alice", "Wrong-Password-1", ""); st != 401 || errCode(m) != "InvalidCredentials" {
				t.Errorf("wrong password %d: %d %v", i+1, st, m)
			}
		}
		st, last := b.signIn(t, "alice", pw, "")
		retry, _ := get(last, "error", "retryAfterSeconds").(float64)
		if st != http.StatusTooManyRequests || errCode(last) != "TooManyAttempts" || retry < 1 {
			t.Errorf("after failures, even the right password waits: %d %v", st, last)
		}
		var failures, hidden int
		for _, ev := range events(t, auditLog, "ConsoleLogin") {
			if get(ev, "responseElements", "ConsoleLogin") == "Failure" {
				failures++
				if get(ev, "userIdentity", "userName") == "HIDDEN_DUE_TO_SECURITY_REASONS" {
					hidden++
				}
			}
		}
		if failures < 4 || hidden < 1 {
			t.Errorf("ConsoleLogin failures audited: %d (unknown users hidden: %d)", failures, hidden)
		}
	})
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("the test took %v; keep it under a minute", d)
	}
}

// --- the terminal WebSocket ---------------------------------------------------------

type terminal struct {
	ws     *websocket.Conn
	out    bytes.Buffer
	frames []map[string]any
	closed *websocket.CloseError
	err    error
}

func openTerminal(t *testing.T, b *browser, h *host, osUser string) *terminal {
	t.Helper()
	q := url.Values{"instanceId": {h.id}, "osUser": {osUser}, "cols": {"80"}, "rows": {"24"}, "port": {fmt.Sprint(h.port)}, "csrf": {b.csrf}}
	// WebSockets upgrade HTTP/1.1 connections.
	tr := b.http.Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = false
	tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	tr.TLSClientConfig.NextProtos = nil
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(b.s.URL(), "https")+"/console/api/terminal?"+q.Encode(),
		&websocket.DialOptions{HTTPClient: &http.Client{Transport: tr, Jar: b.http.Jar}, HTTPHeader: http.Header{"Origin": {b.s.URL()}}})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("terminal WebSocket: %v (HTTP %d)", err, status)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return &terminal{ws: ws}
}

// read takes one message; false once the connection is closed.
func (tm *terminal) read(ctx context.Context) bool {
	if tm.err != nil {
		return false
	}
	typ, b, err := tm.ws.Read(ctx)
	if err != nil {
		tm.err = err
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			tm.closed = &ce
		}
		return false
	}
	if typ == websocket.MessageBinary {
		tm.out.Write(b)
		return true
	}
	var f map[string]any
	_ = json.Unmarshal(b, &f)
	tm.frames = append(tm.frames, f)
	return true
}

func (tm *terminal) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for !cond() {
		if !tm.read(ctx) {
			t.Fatalf("waiting for %s: %v\nframes %v\noutput %q", what, tm.err, tm.frames, tm.out.String())
		}
	}
}

func (tm *terminal) send(t *testing.T, s string) {
	t.Helper()
	if err := tm.ws.Write(context.Background(), websocket.MessageBinary, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

// close reads to the end and returns the server's close code.
func (tm *terminal) close(t *testing.T) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for tm.read(ctx) {
	}
	if tm.closed == nil {
		t.Fatalf("the terminal did not close cleanly: %v\nframes %v\noutput %q", tm.err, tm.frames, tm.out.String())
	}
	return tm.closed.Code
}

// line reports whether the output has a line that is exactly s (after
// the shell's escape sequences: bracketed paste mode ends with \r).
func (tm *terminal) line(s string) bool {
	out := tm.out.String()
	return strings.Contains(out, "\n"+s+"\r\n") || strings.Contains(out, "\r"+s+"\r\n")
}

// prompt reports whether the output ends with a shell's prompt ("# " or
// "$ ").
func (tm *terminal) prompt() bool {
	out := tm.out.String()
	return strings.HasSuffix(out, "# ") || strings.HasSuffix(out, "$ ")
}

func (tm *terminal) status(msg string) bool {
	for _, f := range tm.frames {
		if f["type"] == "status" && f["message"] == msg {
			return true
		}
	}
	return false
}

func (tm *terminal) frame(typ string) map[string]any {
	for _, f := range tm.frames {
		if f["type"] == typ {
			return f
		}
	}
	return nil
}
