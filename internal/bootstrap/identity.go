package bootstrap

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/kaginashi/kaginashi/internal/iam"
	"github.com/kaginashi/kaginashi/internal/seal"
	"github.com/kaginashi/kaginashi/internal/store"
)

// Store meta keys of the deployment's identity.
const (
	MetaAccountID = "account_id"
	MetaRegion    = "region"
)

// DefaultRegion is the region of a deployment started without --region.
const DefaultRegion = "us-east-1"

// Identity is the deployment's account and region, fixed at first start:
// ARNs in stored policies name them.
type Identity struct {
	Account string
	Region  string
}

// EnsureIdentity settles the account ID and region: the first start
// records them (a given --account-id, or a generated one); later starts
// must agree, or they would silently invalidate every stored ARN.
func EnsureIdentity(ctx context.Context, st store.Store, account, region string) (Identity, error) {
	if account != "" {
		if err := iam.ValidAccountID(account); err != nil {
			return Identity{}, err
		}
	}
	want := account
	if want == "" {
		want = iam.NewAccountID()
	}
	got, err := st.InitMeta(ctx, MetaAccountID, want)
	if err != nil {
		return Identity{}, fmt.Errorf("account ID: %w", err)
	}
	if account != "" && got != account {
		return Identity{}, fmt.Errorf("this data belongs to account %s; --account-id %s differs (ARNs in stored policies name the account, so it cannot change)", got, account)
	}
	wantRegion := region
	if wantRegion == "" {
		wantRegion = DefaultRegion
	}
	gotRegion, err := st.InitMeta(ctx, MetaRegion, wantRegion)
	if err != nil {
		return Identity{}, fmt.Errorf("region: %w", err)
	}
	if region != "" && gotRegion != region {
		return Identity{}, fmt.Errorf("this data was created for region %s; --region %s differs", gotRegion, region)
	}
	return Identity{Account: got, Region: gotRegion}, nil
}

// Environment variables that supply the root credentials.
const (
	EnvRootAccessKeyID     = "KAGINASHI_ROOT_ACCESS_KEY_ID"
	EnvRootSecretAccessKey = "KAGINASHI_ROOT_SECRET_ACCESS_KEY"
)

// RootCredentialsFile is where generated root credentials are written, in
// the AWS credentials-file format, profile RootProfile.
const (
	RootCredentialsFile = "root-credentials"
	RootProfile         = "kaginashi-root"
)

// EnsureRootCredentials makes sure the account root can sign in: with the
// key from the environment when set, otherwise with a key generated on
// first start, written to DIR/root-credentials (mode 0600) and printed to
// out once. It returns the root access key ID in use.
func EnsureRootCredentials(ctx context.Context, svc *iam.Service, st store.Store, sealer *seal.Sealer, dataDir string, getenv func(string) string, out io.Writer) (string, error) {
	id, secret := getenv(EnvRootAccessKeyID), getenv(EnvRootSecretAccessKey)
	switch {
	case id != "" && secret != "":
		k, err := st.GetAccessKey(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if err := svc.ImportAccessKey(ctx, "", id, secret); err != nil {
				return "", fmt.Errorf("root credentials from %s: %w", EnvRootAccessKeyID, err)
			}
			return id, nil
		case err != nil:
			return "", fmt.Errorf("root credentials: %w", err)
		case k.UserName != "":
			return "", fmt.Errorf("%s %s belongs to user %s, not to the account root", EnvRootAccessKeyID, id, k.UserName)
		}
		stored, err := sealer.Open(k.SecretCiphertext, k.ID)
		if err != nil {
			return "", fmt.Errorf("root credentials: %w", err)
		}
		if subtle.ConstantTimeCompare(stored, []byte(secret)) != 1 {
			return "", fmt.Errorf("%s %s exists with a different secret than %s", EnvRootAccessKeyID, id, EnvRootSecretAccessKey)
		}
		return id, nil
	case id != "" || secret != "":
		return "", fmt.Errorf("set both %s and %s, or neither", EnvRootAccessKeyID, EnvRootSecretAccessKey)
	}
	keys, err := st.ListAccessKeys(ctx, "")
	if err != nil {
		return "", fmt.Errorf("root credentials: %w", err)
	}
	if len(keys) > 0 {
		return keys[0].ID, nil
	}
	k, err := svc.CreateAccessKey(ctx, "")
	if err != nil {
		return "", fmt.Errorf("root credentials: %w", err)
	}
	path := filepath.Join(dataDir, RootCredentialsFile)
	content := fmt.Sprintf("[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n", RootProfile, k.ID, k.Secret)
	if err := writeFileAtomic(path, []byte(content), 0o600); err != nil {
		return "", err
	}
	// Printed once, at creation, to the terminal — never to the log.
	fmt.Fprintf(out, "Generated root credentials (shown once; also in %s, profile %s):\n  aws_access_key_id     = %s\n  aws_secret_access_key = %s\n", path, RootProfile, k.ID, k.Secret)
	return k.ID, nil
}

// EnsureDataDir creates the data directory with mode 0700, and refuses one
// that others can read (it holds the master key and the database).
func EnsureDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("data dir %s is readable by others and cannot be restricted: %w", dir, err)
		}
	}
	return nil
}
