// Package deregister tests kaginashi:DeregisterInstance against real
// server processes (SQLite and PostgreSQL, and two replicas sharing one
// PostgreSQL) and real agents: a deregistered instance leaves the
// inventory, takes no key and no tunnel, its agent is disconnected —
// an open tunnel through it with it — and refused when it reconnects,
// after which it stops; IAM decides who may deregister what, with the
// instance's tags, and denies a caller alike whether the instance exists.
package deregister

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	eic "github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/kaginashi/kaginashi/internal/client"
	"github.com/kaginashi/kaginashi/internal/store/postgres/pgtest"
	"github.com/kaginashi/kaginashi/internal/wstunnel"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

var world struct{ agent string }

func TestMain(m *testing.M) {
	// pgtest.Main exits the process: a stale binary directory is reaped
	// by a later run.
	harness.ReapStale(os.TempDir(), "kaginashi-deregister-bin-")
	bin, err := harness.BuildKaginashi("kaginashi-deregister-bin-", "./cmd/kaginashi-agent")
	if err != nil {
		fmt.Fprintln(os.Stderr, "deregister:", err)
		os.Exit(2)
	}
	world.agent = filepath.Join(bin, "kaginashi-agent")
	pgtest.Main(m)
}

const (
	kgTarget   = "Kaginashi_20261128.DeregisterInstance"
	missingID  = "i-0fedcba9876543210"
	enrollHint = "enroll again"
)

// deregistered is the API's answer.
type deregistered struct {
	Instance struct {
		InstanceID string `json:"InstanceId"`
		State      string `json:"State"`
		Tags       []struct{ Key, Value string }
	}
	AgentSessionEnded bool
}

// deregister calls DeregisterInstance as c through s.
func deregister(ctx context.Context, s *harness.Server, c harness.Creds, id string) (deregistered, error) {
	cfg, _ := s.Config(c)
	var out deregistered
	err := client.CallJSON(ctx, cfg, "kaginashi", kgTarget, map[string]string{"InstanceId": id}, &out)
	return out, err
}

// wantAPIError asserts a JSON API error with code.
func wantAPIError(t *testing.T, err error, code string) {
	t.Helper()
	var ae *client.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want API error %s, got %v", code, err)
	}
	if ae.Code != code {
		t.Fatalf("error %s (%s), want %s", ae.Code, ae.Message, code)
	}
}

// newUser makes an IAM user with one inline policy and an access key.
func newUser(t *testing.T, s *harness.Server, name, doc string) harness.Creds {
	t.Helper()
	ctx := context.Background()
	root := s.IAM(s.Root)
	harness.Must(root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}))(t)
	harness.Must(root.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("p"), PolicyDocument: aws.String(doc)}))(t)
	ak := harness.Must(root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)}))(t)
	return harness.Creds{Who: name, ID: aws.ToString(ak.AccessKey.AccessKeyId), Secret: aws.ToString(ak.AccessKey.SecretAccessKey)}
}

// echoServer listens on a local port and echoes: the service a tunnel
// reaches.
func echoServer(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// startAgent enrolls a real agent with a join token of s (a tag env=env,
// tunnels allowed to port) and waits for it to connect.
func startAgent(t *testing.T, s *harness.Server, name, env string, port int) (*harness.Process, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	a := harness.Spawn(t, name, append(harness.BaseEnv(), "HOME="+dir), world.agent,
		s.AgentArgs(dir, "--join-token", s.JoinToken(t, 1), "--tag", "env="+env, "--allow-port", strconv.Itoa(port))...)
	a.WaitOutput(t, harness.AgentConnected, 1, harness.Bound(30*time.Second))
	return a, harness.InstanceID(t, dir)
}

// tunnelURL is a presigned open-tunnel URL for instance id's port, as c.
func tunnelURL(t *testing.T, s *harness.Server, c harness.Creds, id string, port int) string {
	t.Helper()
	ctx := context.Background()
	eps := harness.Must(s.EC2(s.Root).DescribeInstanceConnectEndpoints(ctx, &ec2.DescribeInstanceConnectEndpointsInput{}))(t)
	if len(eps.InstanceConnectEndpoints) != 1 {
		t.Fatalf("endpoints: %+v", eps.InstanceConnectEndpoints)
	}
	q := url.Values{"instanceConnectEndpointId": {aws.ToString(eps.InstanceConnectEndpoints[0].InstanceConnectEndpointId)},
		"remotePort": {strconv.Itoa(port)}, "instanceId": {id}, "X-Amz-Expires": {"60"}}
	u := url.URL{Scheme: "https", Host: "localhost:" + strconv.Itoa(s.Port), Path: "/openTunnel", RawQuery: q.Encode()}
	req := harness.Must(http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil))(t)
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, aws.Credentials{AccessKeyID: c.ID, SecretAccessKey: c.Secret}, req,
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "ec2-instance-connect", s.Region, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return "wss" + strings.TrimPrefix(signed, "https")
}

// openTunnel opens a tunnel; on refusal it returns the status and the
// error body.
func openTunnel(t *testing.T, s *harness.Server, c harness.Creds, id string, port int) (*wstunnel.Conn, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), harness.Bound(15*time.Second))
	defer cancel()
	ws, resp, err := wstunnel.Dial(ctx, s.HTTP, tunnelURL(t, s, c, id, port), nil)
	if err == nil {
		return ws, 101, ""
	}
	if resp == nil {
		t.Fatalf("open-tunnel: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return nil, resp.StatusCode, string(b)
}

// echo sends a line through the tunnel and reads it back.
func echo(ws *wstunnel.Conn, line string) error {
	if _, err := ws.Write([]byte(line)); err != nil {
		return err
	}
	buf := make([]byte, len(line))
	if _, err := io.ReadFull(ws, buf); err != nil {
		return err
	}
	if string(buf) != line {
		return fmt.Errorf("echoed %q, want %q", buf, line)
	}
	return nil
}

// push is SendSSHPublicKey as c.
func push(t *testing.T, s *harness.Server, c harness.Creds, id string) error {
	_, err := s.EIC(c, harness.AuditedAs("-")).SendSSHPublicKey(context.Background(), &eic.SendSSHPublicKeyInput{
		InstanceId: aws.String(id), InstanceOSUser: aws.String("root"), SSHPublicKey: aws.String(harness.Ed25519Key(t))})
	return err
}

// waitExit waits for an agent to stop by itself and returns its output.
func waitExit(t *testing.T, p *harness.Process, why string) string {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(harness.Bound(30 * time.Second)):
		t.Fatalf("the agent did not stop after %s:\n%s", why, harness.Tail(p.Output.String(), 20))
	}
	return p.Output.String()
}

// cli runs kaginashi with env and returns its exit code, stdout, stderr.
func cli(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(harness.Kaginashi, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	}
	t.Fatal(err)
	return -1, "", ""
}

// userEnv is the environment of a client command as c against s.
func userEnv(t *testing.T, s *harness.Server, c harness.Creds) []string {
	return append(harness.BaseEnv(), "HOME="+t.TempDir(), "AWS_ENDPOINT_URL="+s.URL(), "AWS_CA_BUNDLE="+s.CAPath(),
		"AWS_REGION="+s.Region, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_ACCESS_KEY_ID="+c.ID, "AWS_SECRET_ACCESS_KEY="+c.Secret)
}

func TestDeregister(t *testing.T) {
	for _, engine := range harness.Engines {
		t.Run(engine, func(t *testing.T) { testDeregister(t, engine) })
	}
}

func testDeregister(t *testing.T, engine string) {
	ctx := context.Background()
	auditLog := filepath.Join(t.TempDir(), "audit.jsonl")
	s := harness.StartServer(t, engine, "--rate-limit=-1", "--audit-log", auditLog)
	port := echoServer(t)
	devAgent, dev := startAgent(t, s, "dev", "dev", port)
	_, prod := startAgent(t, s, "prod", "prod", port)

	// bob may push keys and open tunnels, nothing of kaginashi's own.
	bob := newUser(t, s, "bob", harness.Doc(
		map[string]any{"Effect": "Allow", "Action": []string{"ec2-instance-connect:*", "ec2:Describe*"}, "Resource": "*"}))
	// ops may deregister, but not prod hosts.
	ops := newUser(t, s, "ops", harness.Doc(
		map[string]any{"Effect": "Allow", "Action": "kaginashi:DeregisterInstance", "Resource": "arn:aws:ec2:*:*:instance/*"},
		map[string]any{"Effect": "Deny", "Action": "kaginashi:DeregisterInstance", "Resource": "*",
			"Condition": map[string]any{"StringEquals": map[string]any{"ec2:ResourceTag/env": "prod"}}}))

	// Before: bob reaches dev with a key and a tunnel, which stays open.
	if err := push(t, s, bob, dev); err != nil {
		t.Fatalf("SendSSHPublicKey to dev before: %v", err)
	}
	ws, st, body := openTunnel(t, s, bob, dev, port)
	if ws == nil {
		t.Fatalf("open-tunnel to dev before: %d %s", st, body)
	}
	defer ws.Close()
	if err := echo(ws, "before\n"); err != nil {
		t.Fatalf("through the tunnel before: %v", err)
	}

	t.Run("Unauthorized", func(t *testing.T) {
		// AccessDenied whether or not the instance exists: AWS's order.
		for _, id := range []string{dev, missingID} {
			_, err := deregister(ctx, s, bob, id)
			wantAPIError(t, err, "AccessDeniedException")
		}
		// ops: the Deny on ec2:ResourceTag/env=prod protects prod.
		_, err := deregister(ctx, s, ops, prod)
		wantAPIError(t, err, "AccessDeniedException")
		// ops may, so learns that a missing instance is missing.
		_, err = deregister(ctx, s, ops, missingID)
		wantAPIError(t, err, "InvalidInstanceID.NotFound")
		// A malformed ID is refused before anything (as EC2).
		_, err = deregister(ctx, s, ops, "i-nothex")
		wantAPIError(t, err, "InvalidInstanceID.Malformed")
		if err := push(t, s, bob, prod); err != nil {
			t.Fatalf("prod after the refused deregistration: %v", err)
		}
	})

	t.Run("CLI", func(t *testing.T) {
		code, out, errOut := cli(t, userEnv(t, s, ops), "instance", "deregister", "--instance-id", dev, "--output", "json")
		if code != 0 {
			t.Fatalf("kaginashi instance deregister: exit %d\n%s%s", code, out, errOut)
		}
		var res deregistered
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("--output json: %v\n%s", err, out)
		}
		if res.Instance.InstanceID != dev || res.Instance.State != "running" || !res.AgentSessionEnded ||
			len(res.Instance.Tags) != 1 || res.Instance.Tags[0].Key != "env" || res.Instance.Tags[0].Value != "dev" {
			t.Fatalf("the answer: %+v, want %s as it was (running, env=dev) and its session ended", res, dev)
		}
		// Again: gone, a clear error, exit 1.
		code, out, errOut = cli(t, userEnv(t, s, ops), "instance", "deregister", "--instance-id", dev)
		if code != 1 || !strings.Contains(errOut, "does not exist") {
			t.Fatalf("deregistering it again: exit %d, want 1 and 'does not exist'\n%s%s", code, out, errOut)
		}
		// bob's CLI call is denied: exit 1.
		code, _, errOut = cli(t, userEnv(t, s, bob), "instance", "deregister", "--instance-id", prod, "--output", "table")
		if code != 1 || !strings.Contains(errOut, "DeregisterInstance") {
			t.Fatalf("bob deregistering: exit %d, want 1 naming the action\n%s", code, errOut)
		}
	})

	t.Run("Gone", func(t *testing.T) {
		out := harness.Must(s.EC2(s.Root).DescribeInstances(ctx, &ec2.DescribeInstancesInput{}))(t)
		var ids []string
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				ids = append(ids, aws.ToString(in.InstanceId))
			}
		}
		if len(ids) != 1 || ids[0] != prod {
			t.Fatalf("DescribeInstances lists %v, want only %s", ids, prod)
		}
		_, err := s.EC2(s.Root).DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{dev}})
		harness.WantCode(t, err, "InvalidInstanceID.NotFound", 400)
		tags := harness.Must(s.EC2(s.Root).DescribeTags(ctx, &ec2.DescribeTagsInput{}))(t)
		for _, tg := range tags.Tags {
			if aws.ToString(tg.ResourceId) == dev {
				t.Errorf("the deregistered instance's tag %s=%s is still there", aws.ToString(tg.Key), aws.ToString(tg.Value))
			}
		}
		harness.WantCode(t, push(t, s, bob, dev), "EC2InstanceNotFoundException", 404)
		if _, st, body := openTunnel(t, s, bob, dev, port); st != http.StatusBadRequest || !strings.Contains(body, "No instance") {
			t.Fatalf("open-tunnel to the deregistered instance: %d %s, want 400 'No instance'", st, body)
		}
		// The tunnel that was open went with the agent's session.
		_ = ws.SetDeadline(time.Now().Add(harness.Bound(10 * time.Second)))
		if err := echo(ws, "after\n"); err == nil {
			t.Fatal("the tunnel opened before the deregistration still carries bytes")
		}
	})

	t.Run("AgentRefused", func(t *testing.T) {
		out := waitExit(t, devAgent, "its instance was deregistered")
		if !strings.Contains(out, enrollHint) {
			t.Fatalf("the agent's last words do not say %q:\n%s", enrollHint, harness.Tail(out, 20))
		}
		if !strings.Contains(s.Stderr.String(), "ending the session of a deregistered instance's agent") {
			t.Errorf("the server did not log ending the session:\n%s", harness.Tail(s.Stderr.String(), 30))
		}
		// The store did not get it back from the session's last writes.
		_, err := s.EC2(s.Root).DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{dev}})
		harness.WantCode(t, err, "InvalidInstanceID.NotFound", 400)
		if err := push(t, s, bob, prod); err != nil {
			t.Fatalf("prod's agent after dev's deregistration: %v", err)
		}
	})

	t.Run("Audit", func(t *testing.T) {
		evs := harness.AuditEvents(t, auditLog, "DeregisterInstance")
		denied, ok := 0, 0
		for _, ev := range evs {
			if ad, _ := ev["additionalEventData"].(map[string]any); ad["outcome"] == "pending" {
				continue // the write-ahead version of a mutating call's event
			}
			switch ev["errorCode"] {
			case "AccessDeniedException":
				denied++
			case nil:
				ok++
				if ev["eventSource"] != "kaginashi.amazonaws.com" && !strings.Contains(fmt.Sprint(ev["eventSource"]), "kaginashi") {
					t.Errorf("eventSource %v", ev["eventSource"])
				}
				if !strings.Contains(fmt.Sprint(ev["requestParameters"]), dev) {
					t.Errorf("the event's requestParameters do not name %s: %v", dev, ev["requestParameters"])
				}
			}
		}
		// bob twice and ops on prod (API), bob once (CLI); ops once (CLI).
		if denied != 4 || ok != 1 {
			t.Fatalf("DeregisterInstance events: %d denied, %d succeeded; want 4 and 1\n%v", denied, ok, evs)
		}
	})
}
