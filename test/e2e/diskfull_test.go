package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestDiskFullEveryChangeAudited fills a real server's data directory (a
// small tmpfs) with CreateUser calls until they fail, and checks that no
// change escapes the audit trail (issue #3 §4): every user that exists has
// a CreateUser event, every call answered 200 has a success event, and no
// success event names a user that does not exist. An attacker who can fill
// the disk (every call writes an event, even a refused one) must not get
// unaudited changes. Given room again, the server writes without a
// restart.
func TestDiskFullEveryChangeAudited(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: mounting a small tmpfs needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("skipping: mount -t tmpfs is not permitted here: %v: %s", err, out)
	}
	// Registered before the server starts, so it runs after it stops.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	// The JSON-lines sink lives elsewhere: it is checked to hold each
	// call once.
	sinkPath := filepath.Join(t.TempDir(), "audit.jsonl")
	p := harness.StartProc(t, harness.ServerConfig{DataDir: filepath.Join(mnt, "kd"), Args: []string{"--audit-log", sinkPath, "--rate-limit", "-1"}})
	t.Cleanup(func() { p.Stop(t) })
	s := harness.NewServer(t, p, "sqlite")
	ctx := context.Background()
	client := s.IAM(s.Root)

	// Fill the disk, from several callers at once as an attacker would:
	// concurrent calls' events share group commits, bigger than each
	// call's own change. Events are bigger than users too, so keep going
	// for a while after the first failure: the calls whose change fits
	// but whose event does not are the ones that matter.
	ok := map[string]bool{}     // answered 200
	failed := map[string]bool{} // answered 500
	var other []string
	var mu sync.Mutex
	var next atomic.Int64
	const maxCalls, afterFull, callers = 20000, 300, 8
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				mu.Lock()
				done := len(failed) >= afterFull
				mu.Unlock()
				if i > maxCalls || done {
					return
				}
				name := fmt.Sprintf("fill-%05d-%s", i, strings.Repeat("x", 40))
				_, err := client.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name), Path: aws.String("/" + strings.Repeat("p", 200) + "/")})
				mu.Lock()
				switch {
				case err == nil:
					ok[name] = true
				case harness.StatusOf(err) == 500:
					failed[name] = true
				default:
					other = append(other, fmt.Sprintf("%s: %v", name, err))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failed) < afterFull {
		t.Fatalf("the disk never filled: %d calls succeeded, %d failed with 500", len(ok), len(failed))
	}
	if len(other) > 0 {
		t.Errorf("%d calls failed otherwise than 500, first: %s", len(other), other[0])
	}
	t.Logf("disk full: %d CreateUser answered 200, %d answered 500", len(ok), len(failed))

	// A full disk takes the replica out of a load balancer: /healthz
	// answers 503 while audit commits fail.
	hc := p.HTTPClient(t)
	healthz := func() (int, string) {
		resp, err := hc.Get(p.URL() + "/healthz")
		if err != nil {
			t.Fatalf("GET /healthz: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := healthz(); code != 503 || !strings.HasPrefix(body, "audit store failing since ") {
		t.Errorf("/healthz with a full disk: %d %q, want 503 audit store failing since …", code, body)
	}

	if out, err := exec.Command("mount", "-o", "remount,size=64m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount bigger: %v: %s", err, out)
	}
	// Room again: /healthz recovers with no API call (a load balancer
	// sends none to a replica it took out), by the writer's own probe.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, body := healthz()
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz still %d %q 20 s after the disk has room again", code, body)
		}
	}
	// Room again: writes work without a restart.
	after := "after-remount"
	if _, err := client.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(after)}); err != nil {
		t.Fatalf("CreateUser after the disk has room again: %v\nserver log:\n%s", err, harness.Tail(p.Stderr.String(), 40))
	}
	ok[after] = true

	exists := map[string]bool{}
	for pg := iam.NewListUsersPaginator(client, &iam.ListUsersInput{}); pg.HasMorePages(); {
		out := harness.Must(pg.NextPage(ctx))(t)
		for _, u := range out.Users {
			exists[aws.ToString(u.UserName)] = true
		}
	}

	// CloudTrail's view (LookupEvents): one event per call, the final
	// version where it could be committed, the write-ahead one otherwise.
	type event struct {
		ID, RequestID, User, ErrorCode string
		Pending                        bool
	}
	parse := func(raw []byte) event {
		var r struct {
			EventID             string         `json:"eventID"`
			RequestID           string         `json:"requestID"`
			ErrorCode           string         `json:"errorCode"`
			RequestParameters   map[string]any `json:"requestParameters"`
			AdditionalEventData map[string]any `json:"additionalEventData"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("event %s: %v", raw, err)
		}
		user, _ := r.RequestParameters["userName"].(string)
		return event{ID: r.EventID, RequestID: r.RequestID, User: user, ErrorCode: r.ErrorCode, Pending: r.AdditionalEventData["outcome"] == "pending"}
	}
	events := map[string][]event{} // by user name
	byRequest := map[string]int{}
	ct := s.CT(s.Root)
	for pg := cloudtrail.NewLookupEventsPaginator(ct, &cloudtrail.LookupEventsInput{
		MaxResults:       aws.Int32(50),
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("CreateUser")}},
	}); pg.HasMorePages(); {
		out := harness.Must(pg.NextPage(ctx))(t)
		for _, e := range out.Events {
			ev := parse([]byte(aws.ToString(e.CloudTrailEvent)))
			events[ev.User] = append(events[ev.User], ev)
			byRequest[ev.RequestID]++
		}
	}
	for req, n := range byRequest {
		if n != 1 {
			t.Errorf("request %s has %d CreateUser events, want one", req, n)
		}
	}
	success := func(u string) bool {
		for _, e := range events[u] {
			if e.ErrorCode == "" && !e.Pending {
				return true
			}
		}
		return false
	}
	unaudited, unrecorded, phantom := 0, 0, 0
	for u := range exists {
		if len(events[u]) == 0 {
			unaudited++
			if unaudited <= 5 {
				t.Errorf("user %s exists, but no CreateUser event names it", u)
			}
		}
	}
	for u := range ok {
		if !success(u) {
			unrecorded++
			if unrecorded <= 5 {
				t.Errorf("CreateUser %s answered 200 without a success event: %+v", u, events[u])
			}
		}
	}
	for u := range events {
		if success(u) && !exists[u] {
			phantom++
			if phantom <= 5 {
				t.Errorf("a success event names user %s, which does not exist", u)
			}
		}
	}
	if unaudited+unrecorded+phantom > 0 {
		t.Errorf("%d users without an event, %d 200s without a success event, %d success events without a user", unaudited, unrecorded, phantom)
	}

	// The aws CLI (LookupEvents through botocore) and `kaginashi audit
	// lookup` see the same events, one per call.
	total := 0
	for _, n := range byRequest {
		total += n
	}
	cliIDs := func(name string, args ...string) map[string]bool {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = s.AdminEnv(t)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
		}
		var r struct {
			Events []map[string]any `json:"Events"`
			Lower  []map[string]any `json:"events"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("%s output: %v\n%s", name, err, out)
		}
		ids := map[string]bool{}
		for _, e := range append(r.Events, r.Lower...) {
			id, _ := e["EventId"].(string)
			if id == "" {
				id, _ = e["eventID"].(string)
			}
			if ids[id] {
				t.Errorf("%s lists event %s twice", name, id)
			}
			ids[id] = true
		}
		return ids
	}
	if _, err := exec.LookPath("aws"); err == nil {
		ids := cliIDs("aws", "--endpoint-url", s.URL(), "--ca-bundle", s.CAPath(), "--region", s.Region, "--output", "json", "cloudtrail", "lookup-events", "--lookup-attributes", "AttributeKey=EventName,AttributeValue=CreateUser")
		if len(ids) != total {
			t.Errorf("aws cloudtrail lookup-events lists %d CreateUser events, LookupEvents %d", len(ids), total)
		}
	} else {
		t.Errorf("the aws CLI is not installed: %v", err)
	}
	if ids := cliIDs(harness.Kaginashi, "audit", "lookup", "--event-name", "CreateUser", "--max-items", "100000", "--output", "json"); len(ids) != total {
		t.Errorf("kaginashi audit lookup lists %d CreateUser events, LookupEvents %d", len(ids), total)
	}
	pending := 0
	for _, evs := range events {
		for _, e := range evs {
			if e.Pending {
				pending++
			}
		}
	}
	t.Logf("%d CreateUser events, %d of them write-ahead versions whose final version did not fit", total, pending)

	// The JSON-lines sink holds each call at most once, and every 200's
	// success event.
	seen := map[string]bool{}
	sunk := map[string]bool{}
	for _, m := range harness.AuditEvents(t, sinkPath, "CreateUser") {
		raw, _ := json.Marshal(m)
		ev := parse(raw)
		if seen[ev.ID] {
			t.Errorf("the sink has event %s twice", ev.ID)
		}
		seen[ev.ID] = true
		if ev.ErrorCode == "" && !ev.Pending {
			sunk[ev.User] = true
		}
	}
	for u := range ok {
		if !sunk[u] {
			t.Errorf("the sink has no success event for %s, answered 200", u)
			break
		}
	}
}
