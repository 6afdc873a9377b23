package devenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/internal/bootstrap"
	"github.com/kaginashi/kaginashi/internal/client"
)

// adminConfig is an AWS configuration for the account root, from the
// server's DIR/server/root-credentials, pointed at the server: nothing of
// this shell's AWS settings is used.
func (e *env) adminConfig(ctx context.Context) (aws.Config, error) {
	sc, err := config.LoadSharedConfigProfile(ctx, bootstrap.RootProfile, func(o *config.LoadSharedConfigOptions) {
		o.CredentialsFiles = []string{filepath.Join(e.dir, "server", bootstrap.RootCredentialsFile)}
		o.ConfigFiles = []string{}
	})
	if err != nil {
		return aws.Config{}, fmt.Errorf("the server's root credentials: %w", err)
	}
	cfg, err := e.awsConfig(ctx, credentials.StaticCredentialsProvider{Value: sc.Credentials})
	if err != nil {
		return cfg, err
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return cfg, fmt.Errorf("the server's root credentials do not work: %w", err)
	}
	e.info.AccountID = aws.ToString(id.Account)
	return cfg, nil
}

// awsConfig is a configuration for the dev server with the given
// credentials.
func (e *env) awsConfig(ctx context.Context, creds aws.CredentialsProvider) (aws.Config, error) {
	pem, err := os.ReadFile(e.info.CABundle)
	if err != nil {
		return aws.Config{}, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return aws.Config{}, fmt.Errorf("%s holds no certificate", e.info.CABundle)
	}
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	})
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(e.info.Region), config.WithCredentialsProvider(creds),
		config.WithHTTPClient(hc), config.WithSharedConfigFiles([]string{}), config.WithSharedCredentialsFiles([]string{}))
	if err != nil {
		return cfg, err
	}
	cfg.BaseEndpoint = aws.String(e.info.EndpointURL)
	return cfg, nil
}

// startAgent enrolls the agent (first run, or when the server no longer
// knows its instance) and runs it; it waits until the server sees it
// connected.
func (e *env) startAgent(ctx context.Context, cancel context.CancelCauseFunc, admin aws.Config) error {
	paths := agent.Paths{Dir: e.info.AgentDir}
	args := []string{"run", "--server", e.info.EndpointURL, "--data-dir", e.info.AgentDir, "--ca-file", e.info.CABundle,
		"--sshd-config", e.info.SSHDConfig, "--allow-port", strconv.Itoa(e.info.SSHPort)}
	if paths.Enrolled() {
		cfg, err := paths.LoadConfig()
		if err == nil {
			_, err = client.DescribeInstance(ctx, admin, cfg.InstanceID)
		}
		var nf *client.NotFoundError
		if errors.As(err, &nf) || (err == nil && cfg.Server != e.info.EndpointURL) {
			e.log.Warn("the agent's enrolment does not match this server (new database, or another --listen): enrolling it again")
			if err := os.RemoveAll(e.info.AgentDir); err != nil {
				return err
			}
		} else if err != nil {
			return fmt.Errorf("checking the agent's instance: %w", err)
		}
	}
	if !paths.Enrolled() {
		// Enrolled here rather than by `kaginashi-agent run --join-token`,
		// the same code either way: the token never appears on a command
		// line, where other users of the machine could read it.
		tok, err := joinToken(ctx, admin)
		if err != nil {
			return fmt.Errorf("a join token for the agent: %w", err)
		}
		if _, err := agent.Enroll(ctx, paths, agent.EnrollOptions{Server: e.info.EndpointURL, Token: tok,
			Trust: agent.Trust{CAFile: e.info.CABundle}}); err != nil {
			return fmt.Errorf("enrolling the agent: %w", err)
		}
	}
	c, err := e.start(ctx, cancel, "agent", false, e.o.AgentBinary, args...)
	if err != nil {
		return err
	}
	err = waitFor(ctx, 30*time.Second, func() (bool, error) {
		if c.exited() {
			return false, fmt.Errorf("the agent exited (%v); the end of its log (%s):\n%s", c.waitErr, c.logPath, tail(c.logPath, 15))
		}
		cfg, err := paths.LoadConfig()
		if err != nil {
			return false, nil // not enrolled yet
		}
		in, err := client.DescribeInstance(ctx, admin, cfg.InstanceID)
		if err != nil {
			return false, nil
		}
		if in.State != "running" || !slices.Contains(in.AllowedPorts, e.info.SSHPort) {
			return false, nil
		}
		e.info.InstanceID = cfg.InstanceID
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("the agent did not connect: %w (log: %s)", err, c.logPath)
	}
	e.log.Info("agent connected", "instance", e.info.InstanceID, "dataDir", e.info.AgentDir, "log", c.logPath)
	return nil
}

// joinToken makes a one-use join token through kaginashi's API, as an
// administrator would with `kaginashi agent-token create`.
func joinToken(ctx context.Context, admin aws.Config) (string, error) {
	type tag struct{ Key, Value string }
	in := struct {
		TTLSeconds int   `json:"TtlSeconds"`
		MaxUses    int   `json:"MaxUses"`
		Tags       []tag `json:"Tags"`
	}{TTLSeconds: 600, MaxUses: 1, Tags: []tag{{"Name", NameTag}}}
	var out struct {
		Token string `json:"Token"`
	}
	if err := client.CallJSON(ctx, admin, client.KaginashiService, client.KaginashiTarget+"CreateJoinToken", in, &out); err != nil {
		return "", err
	}
	if out.Token == "" {
		return "", errors.New("the server answered no token")
	}
	return out.Token, nil
}

// ensureUser makes (or, on later runs, updates) the IAM user: its console
// password, its access keys in DIR/credentials, and its policy.
func (e *env) ensureUser(ctx context.Context, admin aws.Config) error {
	c := iam.NewFromConfig(admin)
	if _, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(UserName)}); err != nil && !isCode(err, "EntityAlreadyExists") {
		return fmt.Errorf("creating IAM user %s: %w", UserName, err)
	}
	if err := e.ensurePassword(ctx, c); err != nil {
		return err
	}
	doc, err := devPolicy(e.info)
	if err != nil {
		return err
	}
	if _, err := c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(UserName), PolicyName: aws.String("kaginashi-dev"),
		PolicyDocument: aws.String(doc)}); err != nil {
		return fmt.Errorf("the policy of IAM user %s: %w", UserName, err)
	}
	return e.ensureAccessKey(ctx, c)
}

// ensurePassword keeps the console password in DIR/console-password
// (0600): the same on every run, a new one if the file is gone.
func (e *env) ensurePassword(ctx context.Context, c *iam.Client) error {
	file := filepath.Join(e.dir, "console-password")
	pw := ""
	if b, err := os.ReadFile(file); err == nil {
		pw = strings.TrimSpace(string(b))
	}
	fresh := pw == ""
	if fresh {
		var err error
		if pw, err = newPassword(20); err != nil {
			return err
		}
	}
	_, err := c.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String(UserName), Password: aws.String(pw)})
	switch {
	case err == nil:
	case isCode(err, "EntityAlreadyExists"):
		if fresh {
			if _, err := c.UpdateLoginProfile(ctx, &iam.UpdateLoginProfileInput{UserName: aws.String(UserName), Password: aws.String(pw)}); err != nil {
				return fmt.Errorf("setting the console password: %w", err)
			}
		}
	default:
		return fmt.Errorf("the console password: %w", err)
	}
	if fresh {
		if err := writeFileAtomic(file, []byte(pw+"\n"), 0o600); err != nil {
			return err
		}
	}
	e.info.Password = pw
	return nil
}

// ensureAccessKey reuses the access key in DIR/credentials when it still
// works, else replaces the user's keys with a new one.
func (e *env) ensureAccessKey(ctx context.Context, c *iam.Client) error {
	if sc, err := config.LoadSharedConfigProfile(ctx, Profile, func(o *config.LoadSharedConfigOptions) {
		o.CredentialsFiles = []string{e.info.Credentials}
		o.ConfigFiles = []string{}
	}); err == nil && sc.Credentials.HasKeys() {
		cfg, err := e.awsConfig(ctx, credentials.StaticCredentialsProvider{Value: sc.Credentials})
		if err == nil {
			if _, err = sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err == nil {
				return e.writeConfigFile()
			}
		}
	}
	keys, err := c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(UserName)})
	if err != nil {
		return fmt.Errorf("the access keys of %s: %w", UserName, err)
	}
	for _, k := range keys.AccessKeyMetadata {
		if _, err := c.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(UserName), AccessKeyId: k.AccessKeyId}); err != nil {
			return fmt.Errorf("deleting an old access key of %s: %w", UserName, err)
		}
	}
	k, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(UserName)})
	if err != nil {
		return fmt.Errorf("an access key for %s: %w", UserName, err)
	}
	creds := fmt.Sprintf("[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n", Profile,
		aws.ToString(k.AccessKey.AccessKeyId), aws.ToString(k.AccessKey.SecretAccessKey))
	if err := writeFileAtomic(e.info.Credentials, []byte(creds), 0o600); err != nil {
		return err
	}
	return e.writeConfigFile()
}

// writeConfigFile writes DIR/config: the profile's region, endpoint and CA
// bundle, so AWS_PROFILE alone (with AWS_CONFIG_FILE) is enough.
func (e *env) writeConfigFile() error {
	cfg := fmt.Sprintf("[profile %s]\nregion = %s\nendpoint_url = %s\nca_bundle = %s\n", Profile, e.info.Region, e.info.EndpointURL, e.info.CABundle)
	return writeFileAtomic(e.info.Config, []byte(cfg), 0o600)
}

// devPolicy lets the dev user log in to the dev host as the OS user, through
// the tunnel to sshd's port, and nothing else but looking: the least
// privilege for `kaginashi ssh`, plus simulating its own policy (for
// `kaginashi doctor`).
func devPolicy(in Info) (string, error) {
	arn := func(kind, id string) string {
		return "arn:aws:ec2:" + in.Region + ":" + in.AccountID + ":" + kind + "/" + id
	}
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{
			{"Sid": "SendSSHPublicKey", "Effect": "Allow", "Action": "ec2-instance-connect:SendSSHPublicKey",
				"Resource":  arn("instance", in.InstanceID),
				"Condition": map[string]any{"StringEquals": map[string]any{"ec2:osuser": in.OSUser}}},
			{"Sid": "OpenTunnel", "Effect": "Allow", "Action": "ec2-instance-connect:OpenTunnel",
				"Resource":  arn("instance-connect-endpoint", "*"),
				"Condition": map[string]any{"NumericEquals": map[string]any{"ec2-instance-connect:remotePort": strconv.Itoa(in.SSHPort)}}},
			{"Sid": "DescribeForConnect", "Effect": "Allow",
				"Action": []string{"ec2:DescribeInstances", "ec2:DescribeInstanceConnectEndpoints"}, "Resource": "*"},
			{"Sid": "SimulateOwnPolicy", "Effect": "Allow", "Action": "iam:SimulatePrincipalPolicy",
				"Resource": "arn:aws:iam::" + in.AccountID + ":user/" + UserName},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	return string(b), err
}

// newPassword makes a console password: n characters from letters,
// digits and a few symbols, with one of each kind, from crypto/rand.
func newPassword(n int) (string, error) {
	sets := []string{"ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz", "23456789", "-_.+=@"}
	all := strings.Join(sets, "")
	pick := func(s string) (byte, error) {
		i, err := rand.Int(rand.Reader, big.NewInt(int64(len(s))))
		if err != nil {
			return 0, err
		}
		return s[i.Int64()], nil
	}
	for {
		b := make([]byte, n)
		for i := range b {
			c, err := pick(all)
			if err != nil {
				return "", err
			}
			b[i] = c
		}
		ok := true
		for _, s := range sets {
			if !strings.ContainsAny(string(b), s) {
				ok = false
			}
		}
		if ok {
			return string(b), nil
		}
	}
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
