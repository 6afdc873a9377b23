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
	"github.com/kaginashi/kaginashi/internal/gateway"
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

// newRotateAgentCACmd is `kaginashi server rotate-agent-ca [--finish [--force]]`.
func newRotateAgentCACmd(stdio IO) *cobra.Command {
	var mf maintenanceFlags
	var finish, force bool
	c := &cobra.Command{
		Use:   "rotate-agent-ca --data-dir DIR [--store URL] [--finish [--force]]",
		Short: "Replace the CA that issues agents' client certificates, without re-enrolling hosts (the server stopped)",
		Long: `Replace the agent CA, which issues the client certificates agents connect with.
Every server on the store must be stopped (all replicas), as for rotate-master-key.

Without --finish it makes a new CA (its key sealed with the master key) and keeps
the old CA's certificate, still trusted, while its private key is deleted. Start
the servers again: each agent that connects with a certificate of the old CA is
given one from the new CA for the same key and instance, stores it, and reconnects
with it at once. Hosts need nothing done by hand (agents older than this command
ignore the new certificate: upgrade them first).

With --finish (servers stopped again) the old CA is no longer trusted. It first
counts the enrolled instances whose agents have not connected since the rotation
— they still hold the old CA's certificate and would have to enroll again — and
refuses while there are any, unless --force.`,
		Args: exactArgs(0, "no positional arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if force && !finish {
				return usageErr("--force goes with --finish")
			}
			ctx := cmd.Context()
			st, abs, err := mf.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			o := bootstrap.KeyRotationOptions{DataDir: abs}
			var res gateway.CARotation
			if finish {
				res, err = bootstrap.FinishAgentCA(ctx, st, o, force)
			} else {
				res, err = bootstrap.RotateAgentCA(ctx, st, o)
			}
			resp := map[string]any{"oldAgentCA": res.Old, "newAgentCA": res.New}
			if finish {
				resp["pendingInstances"] = len(res.Pending)
				resp["oldAgentCATrusted"] = !res.Finished
			}
			if aerr := recordKeyRotation(ctx, st, "RotateAgentCA", "rotate-agent-ca", abs, map[string]any{"finish": finish, "force": force}, resp, err); aerr != nil {
				fmt.Fprintf(stdio.Err, "kaginashi: warning: the rotation's audit event was not recorded: %v\n", aerr)
			}
			w := stdio.Out
			if finish && len(res.Pending) > 0 {
				fmt.Fprintf(w, "%d enrolled instance(s) have not connected since the agent CA rotation:\n", len(res.Pending))
				for i, id := range res.Pending {
					if i == 20 {
						fmt.Fprintf(w, "  ... and %d more\n", len(res.Pending)-20)
						break
					}
					fmt.Fprintf(w, "  %s\n", id)
				}
			}
			if err != nil {
				switch {
				case errors.Is(err, bootstrap.ErrServerRunning):
					return &exitError{code: ExitFindings, err: err}
				case errors.Is(err, gateway.ErrAgentsPending):
					return &exitError{code: ExitFindings, err: fmt.Errorf("%w; start the server(s) and let their agents connect, or pass --force to cut them off (they must then enroll again)", err)}
				}
				return &exitError{code: ExitFindings, err: fmt.Errorf("rotate the agent CA: %w", err)}
			}
			if finish {
				fmt.Fprintf(w, "Finished the agent CA rotation: the old CA %s is no longer trusted; agents use %s.\n", res.Old, res.New)
				if len(res.Pending) > 0 {
					fmt.Fprintf(w, "The instances above (--force) must enroll again: kaginashi-agent run --join-token TOKEN on each.\n")
				}
				return nil
			}
			fmt.Fprintf(w, "Started an agent CA rotation:\n  old %s (still trusted; its key is deleted)\n  new %s\n", res.Old, res.New)
			fmt.Fprintf(w, "Start the server(s) again. Each agent gets a certificate of the new CA at its next\n")
			fmt.Fprintf(w, "connection. Once every agent has connected, stop the servers and run\n")
			fmt.Fprintf(w, "  kaginashi server rotate-agent-ca --finish --data-dir %s\n", abs)
			fmt.Fprintf(w, "which says how many instances are still on the old CA.\n")
			return nil
		},
	}
	mf.register(c)
	f := c.Flags()
	f.BoolVar(&finish, "finish", false, "end the rotation: stop trusting the old CA")
	f.BoolVar(&force, "force", false, "with --finish: even if some enrolled instances have not connected since the rotation")
	return c
}
