package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/kaginashi/kaginashi/internal/client"
)

// kaginashi's own API target prefix and signing name.
const (
	kgTarget  = "Kaginashi_20261128."
	kgService = "kaginashi"
)

type joinToken struct {
	TokenID   string `json:"TokenId"`
	CreatedBy string `json:"CreatedBy"`
	CreatedAt string `json:"CreatedAt"`
	ExpiresAt string `json:"ExpiresAt"`
	MaxUses   int    `json:"MaxUses"`
	Uses      int    `json:"Uses"`
	Revoked   bool   `json:"Revoked"`
	Tags      []struct {
		Key   string `json:"Key"`
		Value string `json:"Value"`
	} `json:"Tags"`
}

func newAgentTokenCmd(stdio IO) *cobra.Command {
	var flags client.Flags
	c := &cobra.Command{Use: "agent-token", Short: "Create, list and revoke join tokens that enroll host agents"}
	addClientFlags(c, &flags)

	var (
		createOut outputFlag
		ttl       time.Duration
		maxUses   int
		tags      []string
	)
	create := &cobra.Command{
		Use:   "create [--ttl 1h] [--max-uses N] [--tag KEY=VALUE ...] [--output json|text]",
		Short: "Create a join token (authorized as kaginashi:CreateJoinToken)",
		Long: `Create a join token for 'kaginashi-agent run --join-token'. It expires after --ttl,
enrolls --max-uses hosts (default 1), and gives them --tag tags. The token is
shown once: --output json prints {"token": "...", "expiresAt": "..."}, text
output ends with the token alone on its last line.`,
		Args: exactArgs(0, "no positional arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ttl < time.Second || ttl%time.Second != 0 {
				return usageErr("--ttl %v: want whole seconds, at least 1s (e.g. 90s, 1h)", ttl)
			}
			if maxUses < 1 {
				// The API reads 0 as "not given" (1): say so rather
				// than make a token other than the one asked for.
				return usageErr("--max-uses %d: want 1 or more hosts", maxUses)
			}
			type tag struct{ Key, Value string }
			in := struct {
				TTLSeconds int   `json:"TtlSeconds"`
				MaxUses    int   `json:"MaxUses"`
				Tags       []tag `json:"Tags,omitempty"`
			}{TTLSeconds: int(ttl / time.Second), MaxUses: maxUses}
			for _, kv := range tags {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageErr("--tag %q: want KEY=VALUE", kv)
				}
				in.Tags = append(in.Tags, tag{k, v})
			}
			cfg, err := client.Load(cmd.Context(), flags)
			if err != nil {
				return apiFailure(err, flags.EndpointURL)
			}
			var out struct {
				Token     string    `json:"Token"`
				JoinToken joinToken `json:"JoinToken"`
				ServerURL string    `json:"ServerUrl"`
			}
			if err := client.CallJSON(cmd.Context(), cfg, kgService, kgTarget+"CreateJoinToken", in, &out); err != nil {
				return apiFailure(err, aws.ToString(cfg.BaseEndpoint))
			}
			pin := caPin(flags.CABundle)
			if createOut.v == "json" {
				server := hostServer(out.ServerURL, endpointOf(cfg.BaseEndpoint))
				m := map[string]any{"token": out.Token, "expiresAt": out.JoinToken.ExpiresAt,
					"tokenId": out.JoinToken.TokenID, "maxUses": out.JoinToken.MaxUses, "server": server}
				if pin != "" {
					m["caPin"] = pin
				}
				return writeJSON(stdio.Out, m)
			}
			trust := "--ca-file ca.pem"
			if pin != "" {
				trust = "--ca-pin " + pin
			}
			fmt.Fprintf(stdio.Out, "Join token %s: enrolls %s, expires %s.\nOn each host, as root:\n  kaginashi-agent setup-sshd\n  kaginashi-agent install-service --server %s %s --join-token TOKEN\nToken (shown once):\n%s\n",
				out.JoinToken.TokenID, plural(out.JoinToken.MaxUses, "host"), out.JoinToken.ExpiresAt, hostServer(out.ServerURL, endpointOf(cfg.BaseEndpoint)), trust, out.Token)
			return nil
		},
	}
	createOut.register(create, "text", "json")
	create.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token can be used")
	create.Flags().IntVar(&maxUses, "max-uses", 1, "how many hosts it can enroll")
	create.Flags().StringArrayVar(&tags, "tag", nil, "tag for the instances it enrolls, KEY=VALUE (repeatable)")

	var listOut outputFlag
	list := &cobra.Command{
		Use:   "list [--output json|table]",
		Short: "List join tokens (never their secrets)",
		Args:  exactArgs(0, "no positional arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := client.Load(cmd.Context(), flags)
			if err != nil {
				return apiFailure(err, flags.EndpointURL)
			}
			var out struct {
				JoinTokens []joinToken `json:"JoinTokens"`
			}
			if err := client.CallJSON(cmd.Context(), cfg, kgService, kgTarget+"ListJoinTokens", struct{}{}, &out); err != nil {
				return apiFailure(err, aws.ToString(cfg.BaseEndpoint))
			}
			if listOut.v == "json" {
				return writeJSON(stdio.Out, map[string]any{"joinTokens": out.JoinTokens})
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TOKEN ID\tUSES\tEXPIRES\tSTATE\tCREATED BY")
			for _, t := range out.JoinTokens {
				state := "active"
				if exp, err := time.Parse(time.RFC3339, t.ExpiresAt); err == nil && time.Now().After(exp) {
					state = "expired"
				}
				if t.Uses >= t.MaxUses {
					state = "used up"
				}
				if t.Revoked {
					state = "revoked"
				}
				fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%s\t%s\n", cell(t.TokenID), t.Uses, t.MaxUses, cell(t.ExpiresAt), state, cell(t.CreatedBy))
			}
			return tw.Flush()
		},
	}
	listOut.register(list, "table", "json")

	revoke := &cobra.Command{
		Use:   "revoke TOKEN-ID",
		Short: "Revoke a join token: it enrolls no more hosts",
		Args:  exactArgs(1, "one token ID (jt-...)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := client.Load(cmd.Context(), flags)
			if err != nil {
				return apiFailure(err, flags.EndpointURL)
			}
			id, _, _ := strings.Cut(args[0], ".") // a whole token works too
			if err := client.CallJSON(cmd.Context(), cfg, kgService, kgTarget+"RevokeJoinToken", map[string]string{"TokenId": id}, nil); err != nil {
				return apiFailure(err, aws.ToString(cfg.BaseEndpoint))
			}
			fmt.Fprintf(stdio.Out, "revoked %s\n", id)
			return nil
		},
	}
	c.AddCommand(create, list, revoke)
	return c
}

// hostServer is the URL hosts enrol with: the server's public URL, unless
// it names this machine (localhost, the default without --public-url) —
// then the URL the admin reached the server at, which another host may
// reach too.
func hostServer(public, used string) string {
	u, err := url.Parse(public)
	if public == "" || err != nil || u.Host == "" {
		return used
	}
	if h := u.Hostname(); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return used
	} else if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return used
	}
	return public
}

func endpointOf(p *string) string {
	if p == nil || *p == "" {
		return "https://SERVER:8443"
	}
	return *p
}

// caPin is "sha256:HEX" of the CA the client trusts for the server, when
// that is one certificate (a kaginashi server's own CA, DIR/tls/ca.pem):
// hosts can pin it without copying the file.
func caPin(flagBundle string) string {
	path := flagBundle
	if path == "" {
		path = os.Getenv("AWS_CA_BUNDLE")
	}
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var ders [][]byte
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			ders = append(ders, block.Bytes)
		}
	}
	if len(ders) != 1 {
		return ""
	}
	sum := sha256.Sum256(ders[0])
	return "sha256:" + hex.EncodeToString(sum[:])
}
