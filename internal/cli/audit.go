package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/spf13/cobra"

	"github.com/kaginashi/kaginashi/internal/client"
)

// addClientFlags registers the aws CLI's global options on a client
// command group.
func addClientFlags(c *cobra.Command, f *client.Flags) {
	pf := c.PersistentFlags()
	pf.StringVar(&f.Profile, "profile", "", "AWS profile (default: AWS_PROFILE, then default)")
	pf.StringVar(&f.Region, "region", "", "region (default: AWS_REGION / the profile's)")
	pf.StringVar(&f.EndpointURL, "endpoint-url", "", "kaginashi server URL (default: AWS_ENDPOINT_URL / the profile's endpoint_url)")
	pf.StringVar(&f.CABundle, "ca-bundle", "", "CA bundle to verify the server (default: AWS_CA_BUNDLE / the profile's ca_bundle)")
	pf.BoolVar(&f.NoVerifySSL, "no-verify-ssl", false, "do not verify the server's certificate (unsafe)")
}

func newAuditCmd(stdio IO) *cobra.Command {
	var flags client.Flags
	c := &cobra.Command{Use: "audit", Short: "Read the audit log (every API decision, as CloudTrail events)"}
	addClientFlags(c, &flags)
	c.AddCommand(newAuditLookupCmd(stdio, &flags))
	return c
}

// parseSince reads an RFC 3339 time or a duration back from now ("1h").
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, l := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want a time (2026-11-28T10:00:00Z, 2026-11-28) or a duration back from now (90m, 24h)", s)
}

func newAuditLookupCmd(stdio IO, flags *client.Flags) *cobra.Command {
	var (
		out             outputFlag
		eventName, user string
		since, until    string
		maxItems        int
	)
	c := &cobra.Command{
		Use:   "lookup [--event-name N] [--user U] [--since T] [--until T] [--output json|table]",
		Short: "Look up audit events, newest first",
		Long: `Look up audit events, newest first, through the server's CloudTrail-compatible
LookupEvents API (authorized as cloudtrail:LookupEvents; aws cloudtrail
lookup-events works too). --since and --until take a time or a duration back
from now (1h).`,
		Args: exactArgs(0, "no positional arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			st, err := parseSince(since, now)
			if err != nil {
				return usageErr("--since %v", err)
			}
			et, err := parseSince(until, now)
			if err != nil {
				return usageErr("--until %v", err)
			}
			cfg, err := client.Load(cmd.Context(), *flags)
			if err != nil {
				return apiFailure(err, flags.EndpointURL)
			}
			ct := cloudtrail.NewFromConfig(cfg)
			in := &cloudtrail.LookupEventsInput{}
			// The table names events service:Name (iam:CreateUser), and
			// people copy that; CloudTrail's EventName is the bare name.
			// With a service, this side keeps that service's events only.
			filterService := ""
			if svc, name, ok := strings.Cut(eventName, ":"); ok {
				filterService, eventName = svc, name
				if svc == "" || name == "" {
					return usageErr("--event-name %q: want an API operation, e.g. SendSSHPublicKey or ec2-instance-connect:SendSSHPublicKey", svc+":"+name)
				}
			}
			if eventName != "" {
				in.LookupAttributes = []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String(eventName)}}
			}
			// CloudTrail takes one lookup attribute: with both, the server
			// filters by event name and this side by user.
			filterUser := ""
			if user != "" && eventName != "" {
				filterUser = user
			} else if user != "" {
				in.LookupAttributes = []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyUsername, AttributeValue: aws.String(user)}}
			}
			if !st.IsZero() {
				in.StartTime = aws.Time(st)
			}
			if !et.IsZero() {
				in.EndTime = aws.Time(et)
			}
			var events []map[string]any
			for p := cloudtrail.NewLookupEventsPaginator(ct, in); p.HasMorePages() && len(events) < maxItems; {
				page, err := p.NextPage(cmd.Context())
				if err != nil {
					return apiFailure(err, aws.ToString(cfg.BaseEndpoint))
				}
				for _, e := range page.Events {
					if filterUser != "" && aws.ToString(e.Username) != filterUser {
						continue
					}
					var rec map[string]any
					if err := json.Unmarshal([]byte(aws.ToString(e.CloudTrailEvent)), &rec); err != nil {
						rec = map[string]any{"eventName": aws.ToString(e.EventName), "eventId": aws.ToString(e.EventId)}
					}
					if filterService != "" && eventService(rec) != filterService {
						continue
					}
					events = append(events, rec)
					if len(events) >= maxItems {
						break
					}
				}
			}
			if out.v == "json" {
				if events == nil {
					events = []map[string]any{}
				}
				return writeJSON(stdio.Out, map[string]any{"events": events})
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tEVENT\tUSER\tSOURCE IP\tRESULT")
			for _, e := range events {
				result := "ok"
				if code, _ := e["errorCode"].(string); code != "" {
					result = code
				}
				// A write-ahead event whose final version could not be
				// committed: the change may have happened.
				if x, _ := e["additionalEventData"].(map[string]any); x["outcome"] == "pending" {
					result = "pending"
				}
				// The column shows what --user takes: the user name, root
				// for the account root (as CloudTrail's event history shows
				// it), else the identity's type (Unknown: not authenticated).
				who := str(e, "userIdentity", "userName")
				if who == "" {
					who = str(e, "userIdentity", "type")
				}
				if who == "Root" {
					who = "root"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cell(str(e, "eventTime")), cell(eventService(e)+":"+str(e, "eventName")), cell(who), cell(str(e, "sourceIPAddress")), cell(result))
			}
			return tw.Flush()
		},
	}
	out.register(c, "table", "json")
	f := c.Flags()
	f.StringVar(&eventName, "event-name", "", "only events of this API operation, as SendSSHPublicKey or as the table shows it (ec2-instance-connect:SendSSHPublicKey)")
	f.StringVar(&user, "user", "", "only events by this IAM user (root: the account root)")
	f.StringVar(&since, "since", "", "only events at or after this time, or this long ago (1h)")
	f.StringVar(&until, "until", "", "only events before this time")
	f.IntVar(&maxItems, "max-items", 100, "at most this many events")
	return c
}

// eventService is the service part of the table's service:Name: the
// event source without .amazonaws.com.
func eventService(e map[string]any) string {
	return strings.TrimSuffix(str(e, "eventSource"), ".amazonaws.com")
}

// str digs a string out of nested JSON maps.
func str(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	s, _ := cur.(string)
	return s
}
