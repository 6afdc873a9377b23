package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"golang.org/x/crypto/ssh"

	"github.com/kaginashi/kaginashi/internal/bootstrap"
	"github.com/kaginashi/kaginashi/internal/client"
	kiam "github.com/kaginashi/kaginashi/internal/iam"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// moduleRoot is the directory of kaginashi's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command(goBinary(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run this from inside kaginashi's module (go run ./bench/agent)")
	}
	return filepath.Dir(mod), nil
}

func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// buildFlags are `make build`'s for the agent: static, stripped.
var buildFlags = []string{"build", "-trimpath", "-ldflags", "-s -w"}

// goBuild builds pkg (a module package, or a directory of a one-file
// program) into out with CGO_ENABLED=0, as `make build` builds the agent.
func goBuild(root, out, pkg string) error {
	cmd := exec.Command(goBinary(), append(append([]string(nil), buildFlags...), "-o", out, pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return os.Chmod(out, 0o755)
}

// The baselines' sources: a Go program that does nothing, and one that
// only sleeps.
const (
	emptySrc = "package main\n\nfunc main() {}\n"
	sleepSrc = "package main\n\nimport \"time\"\n\nfunc main() { time.Sleep(1<<63 - 1) }\n"
)

// buildProgram builds a one-file program from src into out.
func buildProgram(tmp, out, name, src string) error {
	dir := filepath.Join(tmp, "src-"+name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module "+name+"\n\ngo 1.26\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		return err
	}
	return goBuild(dir, out, ".")
}

// safeDir makes a directory sshd accepts an AuthorizedKeysCommand in
// (see harness.SafeDir). It holds the binaries and the agent's data
// directory, which the unprivileged AuthorizedKeysCommandUser must reach.
func safeDir() (string, error) { return harness.SafeDir("kaginashi-bench-agent-") }

// --- API clients --------------------------------------------------------------

// api is what a client needs to call a kaginashi server.
type api struct {
	base   string // https://localhost:PORT
	caPath string
	pool   *x509.CertPool
	creds  aws.Credentials
	http   *http.Client
}

// rootCreds are the root access key the children's servers are started
// with (KAGINASHI_ROOT_ACCESS_KEY_ID / ..._SECRET_ACCESS_KEY).
func rootCreds() aws.Credentials {
	return aws.Credentials{AccessKeyID: kiam.NewAccessKeyID(), SecretAccessKey: kiam.NewSecret()}
}

func rootEnv(c aws.Credentials) []string {
	return []string{bootstrap.EnvRootAccessKeyID + "=" + c.AccessKeyID, bootstrap.EnvRootSecretAccessKey + "=" + c.SecretAccessKey}
}

func newAPI(base, dataDir string, creds aws.Credentials) (*api, error) {
	caPath := filepath.Join(dataDir, "tls", "ca.pem")
	b, err := os.ReadFile(caPath)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no certificate", caPath)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 16, ForceAttemptHTTP2: true}
	return &api{base: base, caPath: caPath, pool: pool, creds: creds, http: &http.Client{Transport: tr, Timeout: 60 * time.Second}}, nil
}

func (a *api) config() aws.Config {
	return aws.Config{
		Region:       benchRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(a.creds.AccessKeyID, a.creds.SecretAccessKey, ""),
		BaseEndpoint: aws.String(a.base),
		HTTPClient:   a.http,
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} }, // every figure is the server's first answer
	}
}

// eic is the AWS SDK's EC2 Instance Connect client against the server.
func (a *api) eic() *ec2instanceconnect.Client { return ec2instanceconnect.NewFromConfig(a.config()) }

// joinToken creates a join token through the API, as `kaginashi
// agent-token create --max-uses N` does.
func (a *api) joinToken(ctx context.Context, uses int) (string, error) {
	in := struct {
		TTLSeconds int `json:"TtlSeconds"`
		MaxUses    int `json:"MaxUses"`
	}{TTLSeconds: 3600, MaxUses: uses}
	var out struct {
		Token string `json:"Token"`
	}
	if err := client.CallJSON(ctx, a.config(), "kaginashi", "Kaginashi_20261128.CreateJoinToken", in, &out); err != nil {
		return "", fmt.Errorf("CreateJoinToken: %w", err)
	}
	if out.Token == "" {
		return "", errors.New("CreateJoinToken: no token in the answer")
	}
	return out.Token, nil
}

// push is one SendSSHPublicKey through the SDK, timed.
func (a *api) push(ctx context.Context, c *ec2instanceconnect.Client, instance, osUser, keyLine string) (time.Duration, error) {
	t0 := time.Now()
	out, err := c.SendSSHPublicKey(ctx, &ec2instanceconnect.SendSSHPublicKeyInput{
		InstanceId: aws.String(instance), InstanceOSUser: aws.String(osUser), SSHPublicKey: aws.String(keyLine),
	})
	d := time.Since(t0)
	if err != nil {
		return d, err
	}
	if !out.Success {
		return d, errors.New("SendSSHPublicKey: Success false")
	}
	return d, nil
}

// --- SSH keys -------------------------------------------------------------------

// sshKey is a client key pair.
type sshKey struct {
	path string // OpenSSH private key file, 0600 ("" if not written)
	line string // "ssh-ed25519 AAAA... comment"
	fp   string // SHA256:...
}

// newSSHKey makes an Ed25519 key; with dir, it writes the private key
// there for ssh -i.
func newSSHKey(dir, name string) (sshKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return sshKey{}, err
	}
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		return sshKey{}, err
	}
	k := sshKey{line: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + " bench@kaginashi", fp: ssh.FingerprintSHA256(pk)}
	if dir != "" {
		block, err := ssh.MarshalPrivateKey(priv, "bench@kaginashi")
		if err != nil {
			return sshKey{}, err
		}
		k.path = filepath.Join(dir, name)
		if err := os.WriteFile(k.path, pem.EncodeToMemory(block), 0o600); err != nil {
			return sshKey{}, err
		}
	}
	return k, nil
}
