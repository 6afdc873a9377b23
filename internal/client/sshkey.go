package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	eic "github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// EphemeralKey is an Ed25519 key pair that lives in memory only.
type EphemeralKey struct {
	Private ed25519.PrivateKey
	Public  ssh.PublicKey
}

// NewEphemeralKey makes a fresh Ed25519 key.
func NewEphemeralKey() (*EphemeralKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return &EphemeralKey{Private: priv, Public: pk}, nil
}

// AuthorizedKey is the public key's "type base64" line.
func AuthorizedKey(pk ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
}

// PushKey sends a public key line for osUser to the instance with EC2
// Instance Connect's SendSSHPublicKey: it works for 60 seconds.
func PushKey(ctx context.Context, cfg aws.Config, instanceID, osUser, publicKey string) error {
	out, err := eic.NewFromConfig(cfg).SendSSHPublicKey(ctx, &eic.SendSSHPublicKeyInput{
		InstanceId: aws.String(instanceID), InstanceOSUser: aws.String(osUser), SSHPublicKey: aws.String(publicKey),
	})
	if err != nil {
		return err
	}
	if !out.Success {
		return fmt.Errorf("SendSSHPublicKey did not succeed (request %s)", aws.ToString(out.RequestId))
	}
	return nil
}

// PrivateAgent is an in-process ssh-agent holding one key, on a unix
// socket in a fresh directory only this user can enter: OpenSSH uses the
// key (IdentityAgent=Socket) while the private key never touches the disk.
// The agent only lists and signs; nobody can add or remove keys through it.
type PrivateAgent struct {
	Dir     string // 0700, removed by Close
	Socket  string // Dir/agent.sock
	PubFile string // Dir/id_ed25519.pub: the public half, for IdentityFile

	ln      net.Listener
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
	handoff *handoff // see OfferConnection (handoff.go)
}

// maxSocketPath keeps a unix socket path within sun_path on every unix.
const maxSocketPath = 100

// StartPrivateAgent serves key on a new socket. A nil key serves none (and
// writes no PubFile): a socket for OfferConnection alone.
func StartPrivateAgent(key *EphemeralKey) (*PrivateAgent, error) {
	dir, err := os.MkdirTemp("", "kaginashi-ssh-")
	if err == nil && len(filepath.Join(dir, "agent.sock")) > maxSocketPath {
		os.Remove(dir)
		dir, err = os.MkdirTemp("/tmp", "kaginashi-ssh-") // TMPDIR is too long for a socket path
	}
	if err != nil {
		return nil, err
	}
	a := &PrivateAgent{Dir: dir, Socket: filepath.Join(dir, "agent.sock"), PubFile: filepath.Join(dir, "id_ed25519.pub"), conns: map[net.Conn]struct{}{}}
	fail := func(err error) (*PrivateAgent, error) {
		a.Close()
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fail(err)
	}
	kr := agent.NewKeyring()
	if key == nil {
		a.PubFile = ""
	} else {
		if err := os.WriteFile(a.PubFile, []byte(AuthorizedKey(key.Public)+" kaginashi-ephemeral\n"), 0o600); err != nil {
			return fail(err)
		}
		if err := kr.Add(agent.AddedKey{PrivateKey: key.Private, Comment: "kaginashi-ephemeral"}); err != nil {
			return fail(err)
		}
	}
	ln, err := net.Listen("unix", a.Socket)
	if err != nil {
		return fail(err)
	}
	a.ln = ln
	ro := readOnlyAgent{kr.(agent.ExtendedAgent)}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.mu.Lock()
			if a.conns == nil { // closed meanwhile
				a.mu.Unlock()
				c.Close()
				return
			}
			a.conns[c] = struct{}{}
			a.mu.Unlock()
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				a.serve(ro, c) // closes c, unless it is handed over
				a.mu.Lock()
				delete(a.conns, c)
				a.mu.Unlock()
			}()
		}
	}()
	return a, nil
}

// Close stops the agent, forgets the key and removes the directory.
func (a *PrivateAgent) Close() error {
	if a.ln != nil {
		a.ln.Close()
	}
	a.mu.Lock()
	for c := range a.conns {
		c.Close()
	}
	a.conns = nil
	a.mu.Unlock()
	a.wg.Wait()
	return os.RemoveAll(a.Dir)
}

var errReadOnly = errors.New("kaginashi's private agent holds one key and takes no changes")

// readOnlyAgent lists and signs, and refuses every change.
type readOnlyAgent struct{ agent.ExtendedAgent }

func (readOnlyAgent) Add(agent.AddedKey) error   { return errReadOnly }
func (readOnlyAgent) Remove(ssh.PublicKey) error { return errReadOnly }
func (readOnlyAgent) RemoveAll() error           { return errReadOnly }
func (readOnlyAgent) Lock([]byte) error          { return errReadOnly }
func (readOnlyAgent) Unlock([]byte) error        { return errReadOnly }
func (readOnlyAgent) Extension(string, []byte) ([]byte, error) {
	return nil, agent.ErrExtensionUnsupported
}

// AddToUserAgent adds key to the ssh-agent at SSH_AUTH_SOCK for lifetime
// seconds (the agent forgets it then). It fails when there is no agent or
// it refuses the key (some agents do not take lifetimes).
func AddToUserAgent(key *EphemeralKey, lifetime uint32) error {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return errors.New("SSH_AUTH_SOCK is not set")
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		return fmt.Errorf("no ssh-agent at SSH_AUTH_SOCK: %w", err)
	}
	defer c.Close()
	return agent.NewClient(c).Add(agent.AddedKey{PrivateKey: key.Private, LifetimeSecs: lifetime, Comment: "kaginashi ssh-proxy (expires in 60 s)"})
}

// DefaultPublicKey is the user's first public key file of
// ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub, and its line.
func DefaultPublicKey() (path, line string, err error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", "", err
	}
	for _, n := range []string{"id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"} {
		p := filepath.Join(home, ".ssh", n)
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		pk, _, _, _, err := ssh.ParseAuthorizedKey(b)
		if err != nil {
			return "", "", fmt.Errorf("%s: %v", p, err)
		}
		return p, AuthorizedKey(pk), nil
	}
	return "", "", fmt.Errorf("no ssh-agent (SSH_AUTH_SOCK) and no public key in %s (id_ed25519.pub, id_ecdsa.pub, id_rsa.pub)", filepath.Join(home, ".ssh"))
}

// PublicKeyOfFile is the public key line of a private key file: its .pub
// file, or the private key itself when it is not encrypted.
func PublicKeyOfFile(path string) (string, error) {
	if b, err := os.ReadFile(path + ".pub"); err == nil {
		if pk, _, _, _, err := ssh.ParseAuthorizedKey(b); err == nil {
			return AuthorizedKey(pk), nil
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if pk, _, _, _, err := ssh.ParseAuthorizedKey(b); err == nil {
		return AuthorizedKey(pk), nil // a public key file was given
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		var pe *ssh.PassphraseMissingError
		if errors.As(err, &pe) && pe.PublicKey != nil {
			return AuthorizedKey(pe.PublicKey), nil
		}
		return "", fmt.Errorf("%s: %v (put its public key next to it as %s.pub)", path, err, filepath.Base(path))
	}
	return AuthorizedKey(s.PublicKey()), nil
}
