package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kaginashi/kaginashi/internal/audit"
	"github.com/kaginashi/kaginashi/internal/bootstrap"
	"github.com/kaginashi/kaginashi/internal/server"
	"github.com/kaginashi/kaginashi/internal/store"
)

// maintenanceFlags are the flags of the offline `kaginashi server rotate-*`
// commands, handled as rotate-master-key handles them.
type maintenanceFlags struct{ dataDir, storeURL string }

func (m *maintenanceFlags) register(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&m.dataDir, "data-dir", "", "the server's data directory (required)")
	f.StringVar(&m.storeURL, "store", "", "the server's --store: sqlite:PATH (default DIR/kaginashi.db) or postgres://...")
}

// open checks the flags and opens the store; abs is the data directory.
func (m *maintenanceFlags) open(ctx context.Context) (st store.Store, abs string, err error) {
	if m.dataDir == "" {
		return nil, "", usageErr("--data-dir is required")
	}
	if abs, err = filepath.Abs(m.dataDir); err != nil {
		return nil, "", usageErr("--data-dir: %v", err)
	}
	storeURL := m.storeURL
	if storeURL == "" {
		storeURL = "sqlite:" + filepath.Join(abs, "kaginashi.db")
	}
	// Opening a SQLite store creates it: a mistyped path must not leave
	// an empty database behind.
	if path, ok := strings.CutPrefix(storeURL, "sqlite:"); ok {
		if _, err := os.Stat(strings.TrimPrefix(path, "//")); err != nil {
			return nil, "", usageErr("--store: no database here: %v", err)
		}
	}
	st, err = server.OpenStore(ctx, storeURL)
	if err != nil {
		return nil, "", &exitError{code: ExitFindings, err: fmt.Errorf("store: %w", err)}
	}
	return st, abs, nil
}

// newRotateSigningKeyCmd is `kaginashi server rotate-signing-key`.
func newRotateSigningKeyCmd(stdio IO) *cobra.Command {
	var mf maintenanceFlags
	c := &cobra.Command{
		Use:   "rotate-signing-key --data-dir DIR [--store URL]",
		Short: "Replace the key that signs pushed SSH keys, without re-enrolling hosts (the server stopped)",
		Long: `Replace the Ed25519 key with which the server signs the key records it pushes
to agents — for instance when a copy of the database and the master key may have
leaked. Every server on the store must be stopped (all replicas): the command
refuses to run beside one, and a server does not start while it runs.

In one transaction it makes a new key (sealed with the master key, like the old
one), and the old key's endorsement of it: a signature over the new public key,
kept with every earlier endorsement. The old private key is deleted. Start the
servers again: they sign with the new key. Each agent, at its next connection,
receives the endorsements from the key it pinned to the new one, checks them,
and adopts the new key (records signed by the old key stay valid on it for 5
more minutes). An agent offline for months still walks the whole chain.`,
		Args: exactArgs(0, "no positional arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, abs, err := mf.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			res, err := bootstrap.RotateSigningKey(ctx, st, bootstrap.KeyRotationOptions{DataDir: abs})
			resp := map[string]any{"oldSigningKey": res.Old, "newSigningKey": res.New, "endorsements": res.Links}
			if aerr := recordKeyRotation(ctx, st, "RotateSigningKey", "rotate-signing-key", abs, nil, resp, err); aerr != nil {
				fmt.Fprintf(stdio.Err, "kaginashi: warning: the rotation's audit event was not recorded: %v\n", aerr)
			}
			if err != nil {
				if errors.Is(err, bootstrap.ErrServerRunning) {
					return &exitError{code: ExitFindings, err: err}
				}
				return &exitError{code: ExitFindings, err: fmt.Errorf("rotate the signing key: %w", err)}
			}
			w := stdio.Out
			fmt.Fprintf(w, "Rotated the key-record signing key:\n  old %s\n  new %s (endorsed by the old; %d endorsement(s) kept)\n", res.Old, res.New, res.Links)
			fmt.Fprintf(w, "Start the server(s) again: they sign pushed keys with the new key.\n")
			fmt.Fprintf(w, "Each agent adopts it at its next connection (right after the server is back), after\n")
			fmt.Fprintf(w, "checking the endorsement from the key it pinned; agents that are offline do so when they\n")
			fmt.Fprintf(w, "return. On a host, keys/identity.json then shows the new signingKey; an agent that cannot\n")
			fmt.Fprintf(w, "trust it says so in status.json (signingKeyError) and its log.\n")
			return nil
		},
	}
	mf.register(c)
	return c
}

// recordKeyRotation puts an offline key rotation, done or refused, in the
// store's audit trail, as recordRotation does for the master key. resp
// names public keys and certificates by fingerprint: never a private key.
func recordKeyRotation(ctx context.Context, st store.Store, event, command, dataDir string, req, resp map[string]any, rerr error) error {
	account, _, err := st.GetMeta(ctx, bootstrap.MetaAccountID)
	if err != nil {
		return err
	}
	region, _, err := st.GetMeta(ctx, bootstrap.MetaRegion)
	if err != nil {
		return err
	}
	operator := "unknown"
	if u, err := user.Current(); err == nil {
		operator = u.Username
	}
	params := map[string]any{"dataDir": dataDir, "operatingSystemUser": operator}
	for k, v := range req {
		params[k] = v
	}
	ev := &audit.Event{
		EventTime:          time.Now().UTC(),
		EventSource:        "kaginashi",
		EventName:          event,
		EventType:          "AwsServiceEvent",
		ManagementEvent:    true,
		AWSRegion:          region,
		RecipientAccountID: account,
		SourceIPAddress:    "localhost",
		UserAgent:          "kaginashi/" + Version + " server " + command,
		UserIdentity:       audit.Identity{Type: "AWSService", PrincipalID: "kaginashi"},
		RequestParameters:  params,
		ResponseElements:   resp,
	}
	if rerr != nil {
		ev.ErrorCode, ev.ErrorMessage, ev.ResponseElements = "RotationFailed", rerr.Error(), nil
		if errors.Is(rerr, bootstrap.ErrServerRunning) {
			ev.ErrorCode = "ServerRunning"
		}
	}
	w := audit.NewWriter(st, nil, slog.New(slog.DiscardHandler))
	defer w.Close()
	return w.Record(context.WithoutCancel(ctx), ev)
}
