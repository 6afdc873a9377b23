// Package client is the client side of kaginashi's CLI: it reads AWS
// configuration exactly as the aws CLI does — environment variables,
// shared config and credentials files, profiles, AWS_ENDPOINT_URL and
// AWS_CA_BUNDLE — through the AWS SDK's own loader, so the same setup
// drives `aws` and `kaginashi`.
package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"
)

// Flags are the aws CLI's global options that kaginashi client commands
// accept too.
type Flags struct {
	Profile     string
	Region      string
	EndpointURL string
	CABundle    string
	NoVerifySSL bool
}

// Load returns the AWS configuration for the flags, falling back to the
// environment and shared files like the aws CLI.
func Load(ctx context.Context, f Flags) (aws.Config, error) {
	// The SDK's own log lines ("SDK … WARN falling back to IMDSv1") are
	// noise on a terminal: kaginashi says what went wrong itself.
	opts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}
	if f.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(f.Profile))
	}
	if f.Region != "" {
		opts = append(opts, config.WithRegion(f.Region))
	}
	if f.CABundle != "" {
		b, err := os.Open(f.CABundle)
		if err != nil {
			return aws.Config{}, fmt.Errorf("--ca-bundle: %w", err)
		}
		defer b.Close()
		opts = append(opts, config.WithCustomCABundle(b))
	}
	if f.NoVerifySSL {
		opts = append(opts, config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for it (--no-verify-ssl), as with the aws CLI
		})))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	if f.EndpointURL != "" {
		cfg.BaseEndpoint = aws.String(f.EndpointURL)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return cfg, nil
}
