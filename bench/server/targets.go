package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/bootstrap"
	"github.com/kaginashi/kaginashi/internal/gateway"
	kiam "github.com/kaginashi/kaginashi/internal/iam"
	"github.com/kaginashi/kaginashi/internal/server"
	"github.com/kaginashi/kaginashi/internal/store"
)

// The deployment's identity: the account and region of
// examples/seed-policy-filled.json, so the seed policy applies unchanged.
const (
	benchRegion  = "ap-northeast-1"
	benchAccount = "123456789012"
)

// baselineBody is the bare handler's fixed answer: 60 bytes of JSON shaped
// like SendSSHPublicKey's (kaginashi's own is 67 bytes, with a UUID).
var baselineBody = []byte(`{"RequestId":"0123456789abcdef0123456789abc","Success":true}`)

// newSSHKey returns an ed25519 public key line, as `file://key.pub` sends it.
func newSSHKey() (string, error) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " bench@kaginashi\n", nil
}

// instanceID is the i-th benchmark instance's ID.
func instanceID(i int) string { return fmt.Sprintf("i-0bec%013x", i) }

// caPool reads a PEM CA file.
func caPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no certificate", path)
	}
	return p, nil
}

// startBare serves the baseline: a net/http TLS server with kaginashi's TLS
// setup (a certificate from bootstrap.EnsureTLS, ECDSA P-256, TLS 1.2+) and
// the same http.Server limits, whose handler reads the body and answers a
// fixed 60-byte JSON.
func startBare(ctx context.Context, dir string, instances int) (*Target, error) {
	cert, files, err := bootstrap.EnsureTLS(dir, []string{"localhost", "127.0.0.1", "::1"}, time.Now())
	if err != nil {
		return nil, err
	}
	pool, err := caPool(files.CA)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{$}", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20)); err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = w.Write(baselineBody)
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}
	go pprof.Do(ctx, pprof.Labels("side", "server", "target", "bare"), func(context.Context) {
		_ = srv.ServeTLS(ln, "", "")
	})
	context.AfterFunc(ctx, func() { srv.Close() })
	t := &Target{Name: "bare net/http", URL: fmt.Sprintf("https://127.0.0.1:%d/", ln.Addr().(*net.TCPAddr).Port), CA: pool, Region: benchRegion}
	// Any credentials: the bare handler checks nothing, but the client
	// signs exactly as it does for kaginashi.
	for i := 0; i < 8; i++ {
		t.Keys = append(t.Keys, aws.Credentials{AccessKeyID: kiam.NewAccessKeyID(), SecretAccessKey: kiam.NewSecret()})
	}
	for i := 0; i < instances; i++ {
		t.Instances = append(t.Instances, instanceID(i))
	}
	return t, nil
}

// kaginashiSetup is what startKaginashi creates.
type kaginashiSetup struct {
	users, instances int
	legacyPush       bool
	policyPath       string
	log              *slog.Logger
}

// startKaginashi runs the real server in this process (server.Run, TLS,
// throttling off) on storeURL, then creates instances through the store
// and users, the seed policy and access keys through the IAM API.
func startKaginashi(ctx context.Context, name, dataDir, storeURL string, cfg kaginashiSetup) (*Target, <-chan error, error) {
	rootID, rootSecret := kiam.NewAccessKeyID(), kiam.NewSecret()
	env := map[string]string{
		bootstrap.EnvRootAccessKeyID:     rootID,
		bootstrap.EnvRootSecretAccessKey: rootSecret,
	}
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	opts := server.Options{
		AuditLinger: server.DefaultAuditLinger,
		DataDir:     dataDir,
		Listen:      "127.0.0.1:0",
		StoreURL:    storeURL,
		Region:      benchRegion,
		AccountID:   benchAccount,
		RateLimit:   -1, // no throttling: the benchmark measures the server, not the bucket
		Stdout:      io.Discard,
		Log:         cfg.log,
		Getenv:      func(k string) string { return env[k] },
		Ready:       func(u string) { ready <- u },
	}
	go pprof.Do(ctx, pprof.Labels("side", "server", "target", name), func(ctx context.Context) {
		errc <- server.Run(ctx, opts)
	})
	var base string
	select {
	case base = <-ready:
	case err := <-errc:
		return nil, nil, fmt.Errorf("%s: server stopped: %v", name, err)
	case <-time.After(60 * time.Second):
		return nil, nil, fmt.Errorf("%s: server not ready after 60s", name)
	}
	pool, err := caPool(filepath.Join(dataDir, "tls", "ca.pem"))
	if err != nil {
		return nil, nil, err
	}
	t := &Target{Name: name, URL: base + "/", CA: pool, Region: benchRegion}

	// Instances come from enrolled agents: a join token (made through the
	// store, as `kaginashi agent-token create` does), then one connected
	// agent per instance, since SendSSHPublicKey delivers every key to the
	// instance's agent before it answers.
	st, err := server.OpenStore(ctx, storeURL)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: open store: %w", name, err)
	}
	tok, err := gateway.NewTokens(st, time.Now).Create(ctx, "bench", time.Hour, cfg.instances,
		[]store.Tag{{Key: "team", Value: "platform"}})
	st.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: join token: %w", name, err)
	}
	for i := 0; i < cfg.instances; i++ {
		a, err := enrollFakeAgent(ctx, base, pool, tok.Token, i, cfg.legacyPush)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: agent %d: %w", name, i, err)
		}
		t.Instances = append(t.Instances, a.instanceID)
	}

	// Users, the seed policy and keys through the IAM API, as an
	// administrator would.
	awsCfg := aws.Config{
		Region:       benchRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(rootID, rootSecret, ""),
		BaseEndpoint: aws.String(base),
		HTTPClient:   &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	}
	doc, err := os.ReadFile(cfg.policyPath)
	if err != nil {
		return nil, nil, err
	}
	ic := iam.NewFromConfig(awsCfg)
	pol, err := ic.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("seed-instance-connect"), PolicyDocument: aws.String(string(doc))})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: CreatePolicy: %w", name, err)
	}
	for u := 0; u < cfg.users; u++ {
		un := fmt.Sprintf("bench-user-%d", u)
		if _, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(un)}); err != nil {
			return nil, nil, fmt.Errorf("%s: CreateUser: %w", name, err)
		}
		if _, err := ic.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String(un), PolicyArn: pol.Policy.Arn}); err != nil {
			return nil, nil, fmt.Errorf("%s: AttachUserPolicy: %w", name, err)
		}
		for k := 0; k < 2; k++ { // IAM's quota: two keys per user
			out, err := ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(un)})
			if err != nil {
				return nil, nil, fmt.Errorf("%s: CreateAccessKey: %w", name, err)
			}
			t.Keys = append(t.Keys, aws.Credentials{AccessKeyID: *out.AccessKey.AccessKeyId, SecretAccessKey: *out.AccessKey.SecretAccessKey})
		}
	}

	// One call through the SDK's own client: the load generator's requests
	// must be ones the real client would send, and must succeed.
	sshKey, err := newSSHKey()
	if err != nil {
		return nil, nil, err
	}
	userCfg := awsCfg.Copy()
	userCfg.Credentials = credentials.NewStaticCredentialsProvider(t.Keys[0].AccessKeyID, t.Keys[0].SecretAccessKey, "")
	eic := ec2instanceconnect.NewFromConfig(userCfg)
	out, err := eic.SendSSHPublicKey(ctx, &ec2instanceconnect.SendSSHPublicKeyInput{
		InstanceId: aws.String(t.Instances[0]), InstanceOSUser: aws.String("ec2-user"), SSHPublicKey: aws.String(sshKey),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: SDK SendSSHPublicKey: %w", name, err)
	}
	if !out.Success {
		return nil, nil, errors.New(name + ": SDK SendSSHPublicKey: Success false")
	}
	return t, errc, nil
}
