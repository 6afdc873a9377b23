package bootstrap

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/gateway"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
)

// TestRotateSigningKey on both engines: refused beside a running server
// and with a wrong master key (nothing changed), then a new key endorsed
// by the old; a later master-key rotation re-seals the new key and keeps
// the chain.
func TestRotateSigningKey(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := t.Context()
			d := newDeployment(t, e.open(t))
			o := KeyRotationOptions{DataDir: d.dir, Getenv: func(string) string { return "" }}

			release, err := HoldServerLock(ctx, d.st)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := RotateSigningKey(ctx, d.st, o); !errors.Is(err, ErrServerRunning) {
				t.Fatalf("beside a running server: %v, want ErrServerRunning", err)
			}
			must(t, release())
			wrong := KeyRotationOptions{DataDir: d.dir, Getenv: func(k string) string {
				if k == seal.EnvKey {
					return b64(bytes.Repeat([]byte{9}, seal.KeySize))
				}
				return ""
			}}
			if _, err := RotateSigningKey(ctx, d.st, wrong); err == nil {
				t.Fatal("rotated with a wrong master key")
			}
			sealer := sealerFromFile(t, filepath.Join(d.dir, MasterKeyFile))
			if err := d.check(ctx, sealer); err != nil {
				t.Fatalf("refused rotations changed something: %v", err)
			}

			res, err := RotateSigningKey(ctx, d.st, o)
			if err != nil {
				t.Fatal(err)
			}
			keys, err := gateway.LoadKeys(ctx, d.st, sealer, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if res.Old != agentproto.KeyID(d.signer) || res.New != agentproto.KeyID(keys.SigningPublic()) || res.Links != 1 {
				t.Fatalf("result %+v, store's key %s", res, agentproto.KeyID(keys.SigningPublic()))
			}
			if _, err := agentproto.WalkChain(d.signer, keys.SigningPublic(), keys.ChainFrom(d.signer)); err != nil {
				t.Fatalf("an agent pinned at the old key cannot reach the new: %v", err)
			}
			d.signer = keys.SigningPublic()

			// rotate-master-key afterwards: the new signing key is re-sealed,
			// the chain (public) is kept.
			if _, err := RotateMasterKey(ctx, d.st, RotateOptions{DataDir: d.dir, Getenv: o.Getenv}); err != nil {
				t.Fatal(err)
			}
			newSealer := sealerFromFile(t, filepath.Join(d.dir, MasterKeyFile))
			if err := d.check(ctx, newSealer); err != nil {
				t.Fatal(err)
			}
			keys, err = gateway.LoadKeys(ctx, d.st, newSealer, time.Now())
			if err != nil || len(keys.Chain) != 1 {
				t.Fatalf("after rotate-master-key: chain %d links, %v", len(keys.Chain), err)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRotateAgentCA on both engines: refused beside a running server; a
// new CA with the old one kept as the previous; --finish counts an
// enrolled instance not yet on the new CA and refuses without force; a
// later master-key rotation re-seals the new CA's key.
func TestRotateAgentCA(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := t.Context()
			d := newDeployment(t, e.open(t))
			o := KeyRotationOptions{DataDir: d.dir, Getenv: func(string) string { return "" }}
			release, err := HoldServerLock(ctx, d.st)
			must(t, err)
			if _, err := RotateAgentCA(ctx, d.st, o); !errors.Is(err, ErrServerRunning) {
				t.Fatalf("beside a running server: %v, want ErrServerRunning", err)
			}
			if _, err := FinishAgentCA(ctx, d.st, o, true); !errors.Is(err, ErrServerRunning) {
				t.Fatalf("--finish beside a running server: %v, want ErrServerRunning", err)
			}
			must(t, release())
			now := time.Now()
			must(t, d.st.PutInstance(ctx, store.Instance{ID: "i-0123456789abcdef0", State: store.StateRunning, LaunchTime: now, LastSeen: now}))

			res, err := RotateAgentCA(ctx, d.st, o)
			must(t, err)
			sealer := sealerFromFile(t, filepath.Join(d.dir, MasterKeyFile))
			keys, err := gateway.LoadKeys(ctx, d.st, sealer, now)
			must(t, err)
			if keys.PrevCA == nil || keys.PrevCA.SerialNumber.String() != d.caSerial || res.New != gateway.CAID(keys.CA) {
				t.Fatalf("after the rotation: %+v", res)
			}
			fin, err := FinishAgentCA(ctx, d.st, o, false)
			if !errors.Is(err, gateway.ErrAgentsPending) || len(fin.Pending) != 1 {
				t.Fatalf("--finish with an instance on the old CA: %+v %v", fin, err)
			}
			must(t, d.st.(store.AgentCAs).SetAgentCA(ctx, "i-0123456789abcdef0", res.New, now))
			if fin, err = FinishAgentCA(ctx, d.st, o, false); err != nil || !fin.Finished || len(fin.Pending) != 0 {
				t.Fatalf("--finish with every instance on the new CA: %+v %v", fin, err)
			}
			if _, err := RotateMasterKey(ctx, d.st, RotateOptions{DataDir: d.dir, Getenv: o.Getenv}); err != nil {
				t.Fatal(err)
			}
			keys, err = gateway.LoadKeys(ctx, d.st, sealerFromFile(t, filepath.Join(d.dir, MasterKeyFile)), now)
			if err != nil || keys.PrevCA != nil || gateway.CAID(keys.CA) != res.New {
				t.Fatalf("after --finish and rotate-master-key: %v", err)
			}
		})
	}
}
