package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/kaginashi/kaginashi/internal/store"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestAPI runs the API flows against one server per engine: the SDK's
// happy paths and error shapes, authentication failures, the seed policy
// end to end, the aws CLI, and finally the audit trail of all of it.
func TestAPI(t *testing.T) {
	t.Parallel()
	for _, engine := range harness.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, engine)
			for _, st := range []struct {
				name string
				f    func(*testing.T, *env)
			}{
				{"STS", testSTS},
				{"IAM/Users", testIAMUsers},
				{"IAM/AccessKeys", testIAMAccessKeys},
				{"IAM/ManagedPolicies", testIAMManagedPolicies},
				{"IAM/InlinePolicies", testIAMInlinePolicies},
				{"IAM/Groups", testIAMGroups},
				{"IAM/LoginProfiles", testIAMLoginProfiles},
				{"IAM/Simulate", testIAMSimulate},
				{"IAM/Errors", testIAMErrors},
				{"EC2/DescribeInstances", testEC2DescribeInstances},
				{"EC2/Endpoints", testEC2Endpoints},
				{"EC2/Tags", testEC2Tags},
				{"EC2/Errors", testEC2Errors},
				{"EIC/Errors", testEICErrors},
				{"EIC/Keys", testEICKeys},
				{"Seed", testSeedPolicy},
				{"Auth", testAuthFailures},
				{"Presigned", testPresigned},
				{"Malformed", testMalformedRequests},
				{"CloudTrail", testCloudTrail},
				{"CLI", testAWSCLI},
				// Last: every call above must be in the audit trail.
				{"Audit", testAudit},
			} {
				t.Run(st.name, func(t *testing.T) { st.f(t, e) })
			}
		})
	}
}

// env is one engine's server, its store (opened from the test process),
// a fleet of instances, and what the tests learn along the way.
type env struct {
	*harness.Server
	st       store.Store
	fleet    []store.Instance
	auditLog string // the --audit-log JSON-lines sink

	mu        sync.Mutex
	secrets   []string // secret access keys and passwords that must never leak
	cliEvents []string // "EventName|who|errorCode" of the aws CLI's calls
}

// engineArgs give each engine a different deployment, so that nothing
// depends on the defaults: SQLite takes them, PostgreSQL gets its own
// region and account. testAudit finds every call's own event, so calls
// refused before authentication are all audited one by one here (0), not
// within a per-source budget that the suite's bursts of refused calls
// could exceed (TestUnauthenticatedFloodAudit tests the budget).
var engineArgs = map[string][]string{
	"sqlite":   {"--rate-limit=-1", "--unauthenticated-audit-rate=0"},
	"postgres": {"--rate-limit=-1", "--unauthenticated-audit-rate=0", "--region", "ap-northeast-1", "--account-id", "210987654321"},
}

func newEnv(t *testing.T, engine string) *env {
	auditLog := filepath.Join(t.TempDir(), "audit.jsonl")
	s := harness.StartServer(t, engine, append([]string{"--audit-log", auditLog}, engineArgs[engine]...)...)
	if engine == "postgres" && (s.Region != "ap-northeast-1" || s.Account != "210987654321") {
		t.Fatalf("server runs in %s/%s, want ap-northeast-1/210987654321", s.Region, s.Account)
	}
	e := &env{Server: s, st: s.OpenStore(t), auditLog: auditLog}
	e.fleet = e.putFleet(t)
	return e
}

// instanceID is the fleet's n-th instance ID: i- and 17 hex digits.
func instanceID(n int) string { return fmt.Sprintf("i-0e2e%013x", n) }

// missingID is a well-formed instance ID no instance has.
const missingID = "i-0dead00000000beef"

// putFleet creates the instances the tests use, through the store, and
// connects a stand-in agent to each running one: 1-2 web (running), 3 db
// (stopped: no agent), 4-7 batch (running).
func (e *env) putFleet(t *testing.T) []store.Instance {
	now := time.Now().UTC().Truncate(time.Second)
	var fleet []store.Instance
	add := func(n int, state, ip string, tags ...store.Tag) {
		fleet = append(fleet, store.Instance{
			ID: instanceID(n), State: state, LaunchTime: now, LastSeen: now, Hostname: fmt.Sprintf("host-%d", n),
			PrivateIP: ip, OSID: "debian", OSVersion: "12", Platform: "Linux/UNIX", Architecture: "x86_64",
			DefaultUser: "admin", Tags: tags,
		})
	}
	add(1, store.StateRunning, "10.0.0.11", store.Tag{Key: "Name", Value: "web-1"}, store.Tag{Key: "env", Value: "prod"})
	add(2, store.StateRunning, "10.0.0.12", store.Tag{Key: "Name", Value: "web-2"}, store.Tag{Key: "env", Value: "dev"})
	add(3, store.StateStopped, "10.0.0.13", store.Tag{Key: "Name", Value: "db-1"}, store.Tag{Key: "env", Value: "prod"})
	for n := 4; n <= 7; n++ {
		add(n, store.StateRunning, fmt.Sprintf("10.0.1.%d", n), store.Tag{Key: "Name", Value: fmt.Sprintf("batch-%d", n)})
	}
	for _, in := range fleet {
		if err := e.st.PutInstance(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	// A key reaches a running instance only through its connected agent.
	for _, in := range fleet {
		if in.State == store.StateRunning {
			e.ConnectFakeAgent(t, e.st, in.ID)
		}
	}
	return fleet
}

func (e *env) instanceARN(id string) string {
	return "arn:aws:ec2:" + e.Region + ":" + e.Account + ":instance/" + id
}

func (e *env) keepSecret(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secrets = append(e.secrets, s)
}

func (e *env) noteCLI(events ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cliEvents = append(e.cliEvents, events...)
}

// newUser creates a user as root with inline policies, and an access key
// for it.
func (e *env) newUser(t testing.TB, name string, inline ...string) harness.Creds {
	t.Helper()
	ctx := context.Background()
	c := e.IAM(e.Root)
	harness.Must(c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}))(t)
	for i, d := range inline {
		harness.Must(c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String(fmt.Sprintf("inline-%d", i+1)), PolicyDocument: aws.String(d)}))(t)
	}
	return e.newKey(t, name)
}

// newKey creates an access key for a user.
func (e *env) newKey(t testing.TB, user string) harness.Creds {
	t.Helper()
	out := harness.Must(e.IAM(e.Root).CreateAccessKey(context.Background(), &iam.CreateAccessKeyInput{UserName: aws.String(user)}))(t)
	k := out.AccessKey
	if aws.ToString(k.UserName) != user || aws.ToString(k.AccessKeyId) == "" || aws.ToString(k.SecretAccessKey) == "" {
		t.Fatalf("CreateAccessKey: %+v", k)
	}
	e.keepSecret(aws.ToString(k.SecretAccessKey))
	return harness.Creds{Who: user, ID: aws.ToString(k.AccessKeyId), Secret: aws.ToString(k.SecretAccessKey)}
}

// attachManaged creates a managed policy and attaches it to a user.
func (e *env) attachManaged(t testing.TB, user, policyName, document string) string {
	t.Helper()
	ctx := context.Background()
	c := e.IAM(e.Root)
	p := harness.Must(c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String(policyName), PolicyDocument: aws.String(document)}))(t)
	harness.Must(c.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String(user), PolicyArn: p.Policy.Arn}))(t)
	return aws.ToString(p.Policy.Arn)
}
