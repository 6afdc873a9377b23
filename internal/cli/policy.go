package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kaginashi/kaginashi/internal/iam"
	"github.com/kaginashi/kaginashi/policy"
)

func newPolicyCmd(stdio IO) *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "Validate, simulate and write IAM policies",
		Long: `Work with IAM JSON policies offline: validate them the way IAM Access Analyzer
does, simulate a request against them, and generate least-privilege policies.
These commands need no server and work for policies meant for AWS too.`,
	}
	c.AddCommand(newPolicyValidateCmd(stdio), newPolicySimulateCmd(stdio), newPolicyTemplateCmd(stdio), newPolicyActionsCmd(stdio))
	return c
}

// --- validate ---------------------------------------------------------------

func newPolicyValidateCmd(stdio IO) *cobra.Command {
	var (
		out      outputFlag
		resource bool
		opts     policy.ValidateOptions
	)
	c := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a policy document and report findings",
		Long: `Check a policy document (FILE, or - for standard input) and report findings, each
with a type (ERROR, SECURITY_WARNING, WARNING, SUGGESTION), a stable code, a
message that says how to fix it, and the JSON path of the element.

Exit status: 0 when there is no ERROR, 1 when there is, 2 for a usage or I/O error.`,
		Example: `  kaginashi policy validate policy.json
  kaginashi policy validate --output json policy.json
  cat policy.json | kaginashi policy validate -`,
		Args: exactArgs(1, "one policy file (or - for standard input)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(stdio, args[0])
			if err != nil {
				return err
			}
			if resource {
				opts.Type = policy.ResourcePolicy
			}
			fs := policy.Validate(data, opts)
			if out.v == "json" {
				if err := writeJSON(stdio.Out, struct {
					Findings []policy.Finding `json:"findings"`
				}{fs}); err != nil {
					return err
				}
			} else {
				printFindings(stdio.Out, args[0], fs)
			}
			if policy.HasErrors(fs) {
				return &exitError{code: ExitFindings}
			}
			return nil
		},
	}
	out.register(c, "text", "json")
	c.Flags().BoolVar(&resource, "resource-policy", false, "validate a resource policy (Principal required) instead of an identity policy")
	c.Flags().StringVar(&opts.Region, "region", "", "this deployment's region: warn about ARNs naming another")
	c.Flags().StringVar(&opts.AccountID, "account-id", "", "this deployment's account ID: warn about ARNs naming another")
	return c
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printFindings(w io.Writer, name string, fs []policy.Finding) {
	if len(fs) == 0 {
		fmt.Fprintf(w, "%s: no findings\n", name)
		return
	}
	counts := map[policy.FindingType]int{}
	for _, f := range fs {
		counts[f.Type]++
	}
	var parts []string
	for _, t := range []policy.FindingType{policy.FindingError, policy.FindingSecurityWarning, policy.FindingWarning, policy.FindingSuggestion} {
		if n := counts[t]; n > 0 {
			parts = append(parts, plural(n, strings.ToLower(strings.ReplaceAll(string(t), "_", " "))))
		}
	}
	fmt.Fprintf(w, "%s: %s\n\n", name, strings.Join(parts, ", "))
	for _, f := range fs {
		where := f.Path
		if where == "" {
			where = "(document)"
		}
		if f.Line > 0 {
			where = fmt.Sprintf("%s:%d:%d %s", name, f.Line, f.Column, where)
		}
		fmt.Fprintf(w, "%-16s %s\n  %s\n  %s\n\n", f.Type, f.Code, where, f.Message)
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// --- simulate ---------------------------------------------------------------

func newPolicySimulateCmd(stdio IO) *cobra.Command {
	var (
		out      outputFlag
		files    []string
		action   string
		resource string
		ctxPairs []string
		bound    string
	)
	c := &cobra.Command{
		Use:   "simulate --policy FILE [--policy FILE ...] --action ACTION --resource ARN [--context KEY=VALUE ...] [--permissions-boundary FILE]",
		Short: "Decide a request against policies and say which statement decided",
		Long: `Evaluate one request against one or more policies, as IAM does: an explicit Deny
wins over any Allow; without an Allow the request is implicitly denied.

--context KEY=VALUE sets a condition key; repeat it with the same KEY for a
multivalued key. Values are read as the type of the operator that uses them
(numbers, dates, IP addresses, booleans), as AWS does.

--permissions-boundary FILE caps the policies with a permissions boundary, as
IAM does for a user that has one: both must allow, and an explicit Deny in
either is final.

Exit status: 0 whatever the decision; 2 for a usage error or when a policy has
ERROR findings (they are printed).`,
		Example: `  kaginashi policy simulate --policy seed.json \
      --action ec2-instance-connect:SendSSHPublicKey \
      --resource arn:aws:ec2:ap-northeast-1:123456789012:instance/i-0123456789abcdef0 \
      --context ec2:osuser=ec2-user`,
		Args: exactArgs(0, "no positional arguments (use --policy, --action, --resource)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(files) == 0 || action == "" {
				return usageErr("need at least one --policy FILE and an --action (see 'kaginashi policy simulate --help')")
			}
			var compiled []*policy.Compiled
			bad := false
			// With --output json the ERROR findings go to standard output
			// as validate prints them, each naming its policy file.
			type fileFinding struct {
				Policy string `json:"policy"`
				policy.Finding
			}
			jsonErrs := []fileFinding{}
			all := files
			if bound != "" {
				all = append(append([]string(nil), files...), bound)
			}
			for _, f := range all {
				data, err := readInput(stdio, f)
				if err != nil {
					return err
				}
				fs := policy.Validate(data, policy.ValidateOptions{})
				if policy.HasErrors(fs) {
					var errs []policy.Finding
					for _, x := range fs {
						if x.Type == policy.FindingError {
							errs = append(errs, x)
						}
					}
					printFindings(stdio.Err, f, errs)
					for _, x := range errs {
						jsonErrs = append(jsonErrs, fileFinding{Policy: f, Finding: x})
					}
					bad = true
					continue
				}
				cp, err := policy.ParseAndCompile(f, data)
				if err != nil {
					return usageErr("%s: %v", f, err)
				}
				compiled = append(compiled, cp)
			}
			if bad {
				if out.v == "json" {
					if err := writeJSON(stdio.Out, map[string]any{"findings": jsonErrs}); err != nil {
						return err
					}
				}
				return usageErr("a policy has errors; fix them first (kaginashi policy validate FILE)")
			}
			reqCtx := policy.NewContext()
			for _, kv := range ctxPairs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || strings.TrimSpace(k) == "" {
					return usageErr("--context %q: want KEY=VALUE, e.g. --context ec2:osuser=ec2-user", kv)
				}
				reqCtx.Add(strings.TrimSpace(k), v)
			}
			req := &policy.Request{Action: action, Resource: resource, Context: reqCtx}
			if bound == "" {
				ex := policy.NewSet(compiled...).Explain(req)
				if out.v == "json" {
					return writeJSON(stdio.Out, simulateJSON(ex))
				}
				printSimulation(stdio.Out, req, ex, "")
				return nil
			}
			// The boundary is the last file read.
			ids, b := compiled[:len(compiled)-1], compiled[len(compiled)-1]
			ev := iam.Evaluate(policy.NewSet(ids...), &iam.Boundary{Source: bound, Set: policy.NewSet(b)}, req)
			ex := &policy.Explanation{Result: ev.Result, Statements: append(append([]policy.StatementTrace(nil), ev.Identity.Statements...), ev.Boundary.Statements...)}
			if out.v == "json" {
				o := simulateJSON(ex)
				o.PermissionsBoundary = &boundaryOutput{Policy: bound, Allowed: ev.Boundary.Allowed}
				o.DeniedByPermissionsBoundary = &ev.DeniedByBoundary
				return writeJSON(stdio.Out, o)
			}
			cappedBy := ""
			if ev.DeniedByBoundary {
				cappedBy = bound
			}
			printSimulation(stdio.Out, req, ex, cappedBy)
			verdict := "does not allow the request"
			if ev.Boundary.Allowed {
				verdict = "allows the request"
			}
			fmt.Fprintf(stdio.Out, "\npermissions boundary %s %s", bound, verdict)
			if ev.DeniedByBoundary {
				fmt.Fprint(stdio.Out, ": it is why the request is refused")
			}
			fmt.Fprintln(stdio.Out)
			return nil
		},
	}
	out.register(c, "text", "json")
	c.Flags().StringArrayVar(&files, "policy", nil, "policy document to evaluate (repeatable; - for standard input)")
	c.Flags().StringVar(&action, "action", "", "action to decide, e.g. ec2-instance-connect:SendSSHPublicKey")
	c.Flags().StringVar(&resource, "resource", "*", "resource ARN the action is on")
	c.Flags().StringArrayVar(&ctxPairs, "context", nil, "condition key and value, KEY=VALUE (repeatable; repeat a KEY for several values)")
	c.Flags().StringVar(&bound, "permissions-boundary", "", "a permissions boundary policy that caps the others (- for standard input)")
	return c
}

type simulateOutput struct {
	Decision           policy.Decision       `json:"decision"`
	MatchedStatements  []policy.StatementRef `json:"matchedStatements"`
	MissingContextKeys []string              `json:"missingContextKeys"`
	// With --permissions-boundary only.
	PermissionsBoundary         *boundaryOutput `json:"permissionsBoundary,omitempty"`
	DeniedByPermissionsBoundary *bool           `json:"deniedByPermissionsBoundary,omitempty"`
}

type boundaryOutput struct {
	Policy  string `json:"policy"`
	Allowed bool   `json:"allowed"`
}

func simulateJSON(ex *policy.Explanation) simulateOutput {
	o := simulateOutput{Decision: ex.Decision, MatchedStatements: ex.Matched, MissingContextKeys: ex.Missing}
	if o.MatchedStatements == nil {
		o.MatchedStatements = []policy.StatementRef{}
	}
	if o.MissingContextKeys == nil {
		o.MissingContextKeys = []string{}
	}
	return o
}

func stmtName(r policy.StatementRef) string {
	s := r.Policy + " " + r.Path
	if r.Sid != "" {
		s += fmt.Sprintf(" (Sid %s)", r.Sid)
	}
	return s
}

// printSimulation prints a decision; cappedBy names the permissions
// boundary that refused what the identity policies allow ("": none did).
func printSimulation(w io.Writer, req *policy.Request, ex *policy.Explanation, cappedBy string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "decision:\t%s\n", ex.Decision)
	fmt.Fprintf(tw, "action:\t%s\n", req.Action)
	fmt.Fprintf(tw, "resource:\t%s\n", req.Resource)
	switch ex.Decision {
	case policy.Allowed:
		for i, m := range ex.Matched {
			label := "allowed by:"
			if i > 0 {
				label = ""
			}
			fmt.Fprintf(tw, "%s\t%s\n", label, stmtName(m))
		}
	case policy.ExplicitDeny:
		for i, m := range ex.Matched {
			label := "denied by:"
			if i > 0 {
				label = ""
			}
			fmt.Fprintf(tw, "%s\t%s (an explicit Deny wins over any Allow)\n", label, stmtName(m))
		}
	default:
		why := "no statement allows it (implicit deny)"
		if cappedBy != "" {
			why = "the policies allow it, but the permissions boundary " + cappedBy + " does not (implicit deny)"
		}
		fmt.Fprintf(tw, "why:\t%s\n", why)
	}
	if len(ex.Missing) > 0 {
		fmt.Fprintf(tw, "missing context keys:\t%s\n", strings.Join(ex.Missing, ", "))
	}
	tw.Flush()
	if len(ex.Statements) == 0 {
		return
	}
	fmt.Fprintln(w, "\nstatements:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range ex.Statements {
		verdict := "does not apply: " + s.Reason()
		if s.Applies {
			verdict = "applies"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", stmtName(s.Ref), s.Effect, verdict)
	}
	tw.Flush()
}

// --- template ---------------------------------------------------------------

func newPolicyTemplateCmd(stdio IO) *cobra.Command {
	c := &cobra.Command{
		Use:   "template",
		Short: "Print a least-privilege policy for a common job",
	}
	c.AddCommand(newPolicyTemplateEICCmd(stdio))
	return c
}

func newPolicyTemplateEICCmd(stdio IO) *cobra.Command {
	var (
		t        policy.EICTemplate
		tags     []string
		duration int
	)
	c := &cobra.Command{
		Use:   "eic --region R --account-id N [--instance-id ID ... | --tag KEY=VALUE] [--os-user U ...] [--endpoint-id ID] [--source-ip CIDR ...] [--max-tunnel-duration S]",
		Short: "Print a least-privilege EC2 Instance Connect policy",
		Long: `Print a least-privilege policy for EC2 Instance Connect: SendSSHPublicKey on the
chosen instances for the named OS users, OpenTunnel on the endpoint for port 22
with a duration cap, and the two Describe calls clients need. It is the seed
article's policy done right, and validates with no ERROR and no SECURITY_WARNING.`,
		Example: `  kaginashi policy template eic --region ap-northeast-1 --account-id 123456789012 \
      --instance-id i-0123456789abcdef0 --os-user ec2-user > eic.json
  kaginashi policy template eic --region us-east-1 --account-id 123456789012 \
      --tag team=web --os-user ubuntu --source-ip 203.0.113.0/24`,
		Args: exactArgs(0, "no positional arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if t.Region == "" || t.AccountID == "" {
				return usageErr("--region and --account-id are required")
			}
			for _, kv := range tags {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageErr("--tag %q: want KEY=VALUE", kv)
				}
				t.Tags = append(t.Tags, policy.Tag{Key: k, Value: v})
			}
			t.MaxTunnelDuration = duration
			if cmd.Flags().Changed("max-tunnel-duration") && duration == 0 {
				return usageErr("--max-tunnel-duration 0: want 1 to 3600 seconds")
			}
			doc, notes, err := t.Document()
			if err != nil {
				return usageErr("%v", err)
			}
			for _, n := range notes {
				fmt.Fprintf(stdio.Err, "note: %s\n", n)
			}
			_, err = stdio.Out.Write(doc)
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&t.Region, "region", "", "region of the instances (required)")
	f.StringVar(&t.AccountID, "account-id", "", "12-digit account ID (required)")
	f.StringVar(&t.Partition, "partition", "aws", "ARN partition")
	f.StringSliceVar(&t.InstanceIDs, "instance-id", nil, "instance to allow (repeatable)")
	f.StringArrayVar(&tags, "tag", nil, "allow instances with this tag, KEY=VALUE (repeatable: all must match)")
	f.StringSliceVar(&t.OSUsers, "os-user", nil, "OS user to allow (repeatable; default ec2-user)")
	f.StringVar(&t.EndpointID, "endpoint-id", "", "Instance Connect Endpoint ID (default: any of the account's)")
	f.StringSliceVar(&t.SourceIPs, "source-ip", nil, "allow only from this CIDR block (repeatable)")
	f.IntVar(&duration, "max-tunnel-duration", 3600, "longest tunnel allowed, in seconds (1-3600)")
	return c
}

// --- actions ----------------------------------------------------------------

func newPolicyActionsCmd(stdio IO) *cobra.Command {
	var (
		out     outputFlag
		service string
	)
	c := &cobra.Command{
		Use:   "actions",
		Short: "List the actions kaginashi authorizes, with resource types and condition keys",
		Args:  exactArgs(0, "no positional arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []policy.ActionInfo
			for _, a := range policy.Actions() {
				if service == "" || strings.EqualFold(a.Service, service) {
					list = append(list, a)
				}
			}
			sort.SliceStable(list, func(i, j int) bool { return list[i].FullName() < list[j].FullName() })
			if out.v == "json" {
				return writeJSON(stdio.Out, list)
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ACTION\tRESOURCE TYPES\tCONDITION KEYS")
			for _, a := range list {
				rt := strings.Join(a.ResourceTypes, ",")
				if rt == "" {
					rt = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", a.FullName(), rt, strings.Join(a.ConditionKeys, ","))
			}
			return tw.Flush()
		},
	}
	out.register(c, "text", "json")
	c.Flags().StringVar(&service, "service", "", "only this service (ec2-instance-connect, ec2, iam, sts, kaginashi)")
	return c
}
