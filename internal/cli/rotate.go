package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kaginashi/kaginashi/internal/bootstrap"
	"github.com/kaginashi/kaginashi/internal/seal"
)

// newRotateMasterKeyCmd is `kaginashi server rotate-master-key`: an
// offline command beside the server (it needs the server's data directory
// and store, and the server stopped), hence under `server`.
func newRotateMasterKeyCmd(stdio IO) *cobra.Command {
	var mf maintenanceFlags
	var newKeyFile string
	c := &cobra.Command{
		Use:   "rotate-master-key --data-dir DIR [--store URL] [--new-key-file F]",
		Short: "Re-seal every stored secret under a new master key (the server stopped)",
		Long: `Rotate the master key that seals secrets at rest (access-key secrets, MFA
seeds, the agent CA key and the record-signing key). Every server on the store
must be stopped — all replicas: the command refuses to run beside one, and a
server does not start while it runs.

It checks that the current key (DIR/master.key, or KAGINASHI_MASTER_KEY) opens
the database, writes the new key (random, or --new-key-file) to
DIR/master.key.new, re-seals everything in one transaction, then moves it to
DIR/master.key and keeps the old key as DIR/master.key.old-TIME (mode 0600)
until you delete it. Interrupted at any point, nothing is lost: before the
commit the old key still opens everything; after it, the next server start
(or a rerun) finishes the rename.

With KAGINASHI_MASTER_KEY set, the new key stays in DIR/master.key.new: put it
in the environment of every replica, then delete the file.`,
		Args: exactArgs(0, "no positional arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var o bootstrap.RotateOptions
			if newKeyFile != "" {
				var err error
				if o.NewKey, err = bootstrap.ReadKeyFile(newKeyFile); err != nil {
					return usageErr("--new-key-file: %v", err)
				}
			}
			st, abs, err := mf.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			o.DataDir = abs
			res, err := bootstrap.RotateMasterKey(ctx, st, o)
			req := map[string]any{"newKeyGiven": o.NewKey != nil}
			resp := map[string]any{
				"resealedCount": res.Resealed, "keyInEnvironment": res.FromEnv, "finishedInterruptedRotation": res.Completed,
				"keyFile": res.KeyFile, "oldKeyFile": res.OldKeyFile,
			}
			if aerr := recordKeyRotation(ctx, st, "RotateMasterKey", "rotate-master-key", abs, req, resp, err); aerr != nil {
				fmt.Fprintf(stdio.Err, "kaginashi: warning: the rotation's audit event was not recorded: %v\n", aerr)
			}
			if err != nil {
				if errors.Is(err, bootstrap.ErrServerRunning) {
					return &exitError{code: ExitFindings, err: err}
				}
				return &exitError{code: ExitFindings, err: fmt.Errorf("rotate the master key: %w", err)}
			}
			printRotation(stdio, res, strings.HasPrefix(mf.storeURL, "postgres"))
			return nil
		},
	}
	mf.register(c)
	c.Flags().StringVar(&newKeyFile, "new-key-file", "", "the new master key (base64 of 32 bytes, mode 0600) instead of a random one")
	return c
}

func printRotation(stdio IO, res bootstrap.RotateResult, shared bool) {
	w := stdio.Out
	if res.Completed {
		fmt.Fprintf(w, "Finished an interrupted rotation: the database was already re-sealed; the new key is now %s.\n", res.KeyFile)
	} else {
		fmt.Fprintf(w, "Re-sealed %d secrets under the new master key.\n", res.Resealed)
	}
	if res.FromEnv {
		fmt.Fprintf(w, "The new master key is in %s (mode 0600). %s still holds the OLD key:\n", res.KeyFile, seal.EnvKey)
		fmt.Fprintf(w, "set %s to the contents of that file in the environment of EVERY replica, then delete the file.\n", seal.EnvKey)
		fmt.Fprintf(w, "A server started with the old value refuses to start.\n")
		return
	}
	fmt.Fprintf(w, "The new master key is %s (mode 0600).\n", res.KeyFile)
	if res.OldKeyFile != "" {
		fmt.Fprintf(w, "The old key is kept as %s (mode 0600) until you delete it.\n", res.OldKeyFile)
		fmt.Fprintf(w, "Database backups made before this rotation need it: delete it once a new backup exists\n")
		fmt.Fprintf(w, "and every replica runs with the new key.\n")
	}
	if shared {
		fmt.Fprintf(w, "Copy %s to the data directory of every other replica before starting them.\n", res.KeyFile)
	}
}
