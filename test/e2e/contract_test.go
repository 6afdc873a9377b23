package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	eic "github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestContract checks `kaginashi server` as issue #3 §1 defines it: flags,
// files in the data directory, TLS, root credentials, restarts.
func TestContract(t *testing.T) {
	t.Parallel()
	t.Run("TLS by default", func(t *testing.T) {
		t.Parallel()
		s := harness.StartServer(t, "sqlite")
		testTLS(t, s)
	})
	t.Run("root credentials file", func(t *testing.T) {
		t.Parallel()
		s := harness.StartServer(t, "sqlite")
		testRootCredentialsFile(t, s)
	})
	for _, engine := range harness.Engines {
		t.Run("restart resumes/"+engine, func(t *testing.T) {
			t.Parallel()
			testRestart(t, engine)
		})
	}
	t.Run("insecure HTTP", func(t *testing.T) {
		t.Parallel()
		testInsecureHTTP(t)
	})
	t.Run("root credentials from the environment", func(t *testing.T) {
		t.Parallel()
		testRootEnv(t)
	})
	t.Run("throttling", func(t *testing.T) {
		t.Parallel()
		testThrottling(t)
	})
}

func testTLS(t *testing.T, s *harness.Server) {
	pemBytes, err := os.ReadFile(s.CAPath())
	if err != nil {
		t.Fatalf("no CA at DIR/tls/ca.pem: %v", err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("DIR/tls/ca.pem is not a PEM certificate:\n%s", pemBytes)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.IsCA {
		t.Fatalf("DIR/tls/ca.pem: CA %v, %v", ca != nil && ca.IsCA, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	addr := "127.0.0.1:" + strconv.Itoa(s.Port)
	// The certificate is valid, under the CA, for localhost and 127.0.0.1.
	for _, name := range []string{"localhost", "127.0.0.1"} {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			t.Errorf("TLS as %s: %v", name, err)
			continue
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		if !slices.Contains(leaf.DNSNames, "localhost") || !slices.ContainsFunc(leaf.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) }) ||
			!slices.ContainsFunc(leaf.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.IPv6loopback) }) {
			t.Errorf("certificate SANs: DNS %v IP %v", leaf.DNSNames, leaf.IPAddresses)
		}
	}
	// Not for other names, and not without the CA.
	if conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "example.com"}); err == nil {
		conn.Close()
		t.Error("the certificate is valid for example.com")
	}
	_, err = (&http.Client{Timeout: 10 * time.Second}).Get("https://" + addr + "/healthz")
	var uae x509.UnknownAuthorityError
	if !errors.As(err, &uae) {
		t.Errorf("a client without the CA: %v, want an unknown authority error", err)
	}
	// Plain HTTP on the TLS port does not serve the API.
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/healthz")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("plain HTTP on the TLS port: %d %s", resp.StatusCode, body)
		}
	}
	// The SDK with the CA bundle, as AWS_CA_BUNDLE would give it.
	f, err := os.Open(s.CAPath())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithCustomCABundle(f), config.WithRegion(s.Region),
		config.WithBaseEndpoint(s.URL()), config.WithSharedConfigFiles([]string{}), config.WithSharedCredentialsFiles([]string{}),
		config.WithCredentialsProvider(aws.NewCredentialsCache(staticCreds(s.Root))))
	if err != nil {
		t.Fatal(err)
	}
	out := harness.Must(sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}))(t)
	if aws.ToString(out.Arn) != "arn:aws:iam::"+s.Account+":root" {
		t.Errorf("GetCallerIdentity over TLS: %s", aws.ToString(out.Arn))
	}
}

type staticCreds harness.Creds

func (c staticCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: c.ID, SecretAccessKey: c.Secret, Source: "e2e"}, nil
}

var rootFileRE = regexp.MustCompile(`^\[kaginashi-root\]\naws_access_key_id = (AKIA[A-Z2-7]{16})\naws_secret_access_key = (\S{40})\n$`)

func testRootCredentialsFile(t *testing.T, s *harness.Server) {
	path := filepath.Join(s.Cfg.DataDir, "root-credentials")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("root-credentials mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if m := rootFileRE.FindStringSubmatch(string(b)); m == nil || m[1] != s.Root.ID || m[2] != s.Root.Secret {
		t.Errorf("root-credentials is not a credentials file with profile kaginashi-root:\n%s", b)
	}
	// The SDK reads it as a shared credentials file.
	ca, err := os.Open(s.CAPath())
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithSharedCredentialsFiles([]string{path}),
		config.WithSharedConfigFiles([]string{}), config.WithSharedConfigProfile("kaginashi-root"),
		config.WithRegion(s.Region), config.WithBaseEndpoint(s.URL()), config.WithCustomCABundle(ca))
	if err != nil {
		t.Fatal(err)
	}
	out := harness.Must(sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}))(t)
	if aws.ToString(out.Arn) != "arn:aws:iam::"+s.Account+":root" {
		t.Errorf("root-credentials sign in as %s", aws.ToString(out.Arn))
	}
	// Printed once to stdout, never to the log.
	if n := strings.Count(s.Stdout.String(), s.Root.Secret); n != 1 {
		t.Errorf("the root secret is printed %d times on first start:\n%s", n, s.Stdout)
	}
	if strings.Contains(s.Stderr.String(), s.Root.Secret) {
		t.Error("the root secret is in the server's log")
	}
}

func testRestart(t *testing.T, engine string) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	storeURL := harness.StoreFor(t, engine)
	cfg := harness.ServerConfig{DataDir: dir, Store: storeURL}
	p1 := harness.StartProc(t, cfg)
	s1 := &harness.Server{Proc: p1, Engine: engine, Calls: &harness.CallLog{}, HTTP: p1.HTTPClient(t)}
	s1.Account, s1.Region = p1.Identity(t)
	root, err := harness.ReadRootCredentials(filepath.Join(dir, "root-credentials"))
	if err != nil {
		t.Fatal(err)
	}
	s1.Root = root
	harness.Must(s1.IAM(root).CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("keeper")}))(t)
	k := harness.Must(s1.IAM(root).CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("keeper")}))(t).AccessKey
	keeper := harness.Creds{Who: "keeper", ID: aws.ToString(k.AccessKeyId), Secret: aws.ToString(k.SecretAccessKey)}
	ca1, _ := os.ReadFile(p1.CAPath())
	creds1, _ := os.ReadFile(filepath.Join(dir, "root-credentials"))
	p1.Stop(t)

	// Another --account-id or --region than the data's: a clear refusal.
	for _, bad := range [][]string{{"--account-id", "999999999999"}, {"--region", "eu-west-1"}} {
		want := "this data belongs to account " + s1.Account
		if bad[0] == "--region" {
			want = "this data was created for region " + s1.Region
		}
		p := harness.Launch(t, harness.ServerConfig{DataDir: dir, Store: storeURL, Args: bad})
		if code := p.Wait(t, 60*time.Second); code == 0 || !strings.Contains(p.Stderr.String(), want) || !strings.Contains(p.Stderr.String(), bad[0]) {
			t.Errorf("restart with %v: exit %d, want an error saying %q\nstderr:\n%s", bad, code, want, p.Stderr)
		}
	}

	// The same flags as the data: fine.
	p2 := harness.StartProc(t, harness.ServerConfig{DataDir: dir, Store: storeURL, Args: []string{"--account-id", s1.Account, "--region", s1.Region}})
	defer p2.Stop(t)
	if a, r := p2.Identity(t); a != s1.Account || r != s1.Region {
		t.Errorf("after restart: account %s region %s, want %s %s", a, r, s1.Account, s1.Region)
	}
	if strings.Contains(p2.Stdout.String(), root.Secret) || strings.Contains(p2.Stdout.String(), "Generated root credentials") {
		t.Errorf("root credentials printed again on restart:\n%s", p2.Stdout)
	}
	ca2, _ := os.ReadFile(p2.CAPath())
	creds2, _ := os.ReadFile(filepath.Join(dir, "root-credentials"))
	if string(ca1) != string(ca2) || string(creds1) != string(creds2) {
		t.Error("the CA or the root credentials changed on restart")
	}
	s2 := &harness.Server{Proc: p2, Engine: engine, Account: s1.Account, Region: s1.Region, Calls: &harness.CallLog{}, HTTP: p2.HTTPClient(t)}
	who := harness.Must(s2.STS(root).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)
	if aws.ToString(who.Account) != s1.Account {
		t.Errorf("account after restart: %s", aws.ToString(who.Account))
	}
	harness.Must(s2.IAM(root).GetUser(ctx, &iam.GetUserInput{UserName: aws.String("keeper")}))(t)
	me := harness.Must(s2.STS(keeper).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)
	if aws.ToString(me.Arn) != "arn:aws:iam::"+s1.Account+":user/keeper" {
		t.Errorf("the user's old key after restart: %s", aws.ToString(me.Arn))
	}
}

func testInsecureHTTP(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := harness.StartProc(t, harness.ServerConfig{DataDir: dir, Insecure: true})
	defer p.Stop(t)
	if !strings.HasPrefix(p.URL(), "http://") {
		t.Fatal(p.URL())
	}
	s := &harness.Server{Proc: p, Calls: &harness.CallLog{}, HTTP: p.HTTPClient(t)}
	s.Account, s.Region = p.Identity(t)
	root, err := harness.ReadRootCredentials(filepath.Join(dir, "root-credentials"))
	if err != nil {
		t.Fatal(err)
	}
	out := harness.Must(s.STS(root).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}))(t)
	if aws.ToString(out.Arn) != "arn:aws:iam::"+s.Account+":root" {
		t.Errorf("GetCallerIdentity over HTTP: %s", aws.ToString(out.Arn))
	}
	conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p.Port), &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		conn.Close()
		t.Error("--insecure-http also speaks TLS")
	}
}

func testRootEnv(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	root := harness.Creds{Who: "root", ID: "AKIAE2EROOTFROMENV01", Secret: "e2e/env/root/secret/0123456789abcdefghijk"}
	env := []string{"KAGINASHI_ROOT_ACCESS_KEY_ID=" + root.ID, "KAGINASHI_ROOT_SECRET_ACCESS_KEY=" + root.Secret}
	p := harness.StartProc(t, harness.ServerConfig{DataDir: dir, Env: env})
	s := &harness.Server{Proc: p, Calls: &harness.CallLog{}, HTTP: p.HTTPClient(t)}
	s.Account, s.Region = p.Identity(t)
	out := harness.Must(s.STS(root).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)
	if aws.ToString(out.Arn) != "arn:aws:iam::"+s.Account+":root" {
		t.Errorf("env root credentials sign in as %s", aws.ToString(out.Arn))
	}
	// Root may do everything.
	harness.Must(s.IAM(root).CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("from-env-root")}))(t)
	_, err := s.EIC(root).SendSSHPublicKey(ctx, &eic.SendSSHPublicKeyInput{InstanceId: aws.String(missingID), InstanceOSUser: aws.String("ec2-user"), SSHPublicKey: aws.String(harness.Ed25519Key(t))})
	harness.WantCode(t, err, "EC2InstanceNotFoundException", 404)
	if harness.FileExists(filepath.Join(dir, "root-credentials")) {
		t.Error("root-credentials written although the environment supplies them")
	}
	if strings.Contains(p.Stdout.String(), root.Secret) || strings.Contains(p.Stderr.String(), root.Secret) {
		t.Error("the root secret from the environment is printed")
	}
	p.Stop(t)

	// The same key ID with another secret is refused on restart; so is
	// half of the pair.
	for _, bad := range [][]string{
		{"KAGINASHI_ROOT_ACCESS_KEY_ID=" + root.ID, "KAGINASHI_ROOT_SECRET_ACCESS_KEY=another-secret-0123456789abcdefghijklmn"},
		{"KAGINASHI_ROOT_ACCESS_KEY_ID=" + root.ID},
	} {
		p := harness.Launch(t, harness.ServerConfig{DataDir: dir, Env: bad})
		if code := p.Wait(t, 60*time.Second); code == 0 || !strings.Contains(p.Stderr.String(), "KAGINASHI_ROOT_SECRET_ACCESS_KEY") {
			t.Errorf("restart with %v: exit %d\nstderr:\n%s", bad, code, p.Stderr)
		}
	}
	p = harness.StartProc(t, harness.ServerConfig{DataDir: dir, Env: env})
	defer p.Stop(t)
	s = &harness.Server{Proc: p, Calls: &harness.CallLog{}, HTTP: p.HTTPClient(t), Region: s.Region}
	harness.Must(s.IAM(root).GetUser(ctx, &iam.GetUserInput{UserName: aws.String("from-env-root")}))(t)
}

func testThrottling(t *testing.T) {
	s := harness.StartServer(t, "sqlite", "--rate-limit", "0.01", "--rate-burst", "4")
	ctx := context.Background()
	harness.Must(s.IAM(s.Root).CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("busy")}))(t)
	k := harness.Must(s.IAM(s.Root).CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("busy")}))(t).AccessKey
	for i := 0; i < 2; i++ {
		harness.Must(s.STS(s.Root).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)
	}
	// Root's bucket is empty now.
	_, err := s.STS(s.Root).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	harness.WantCode(t, err, "Throttling", 400)
	_, err = s.EIC(s.Root).SendSSHPublicKey(ctx, &eic.SendSSHPublicKeyInput{InstanceId: aws.String(missingID), InstanceOSUser: aws.String("ec2-user"), SSHPublicKey: aws.String(harness.Ed25519Key(t))})
	harness.WantCode(t, err, "ThrottlingException", 429)
	// The limit is per access key: the user's is untouched.
	busy := harness.Creds{Who: "busy", ID: aws.ToString(k.AccessKeyId), Secret: aws.ToString(k.SecretAccessKey)}
	harness.Must(s.STS(busy).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)
}
