package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/kaginashi/kaginashi/internal/client"
)

// deregisteredInstance is DeregisterInstance's answer (kaginashi's own API).
type deregisteredInstance struct {
	Instance struct {
		InstanceID       string `json:"InstanceId"`
		State            string `json:"State"`
		Hostname         string `json:"Hostname,omitempty"`
		PrivateIPAddress string `json:"PrivateIpAddress,omitempty"`
		Ipv6Address      string `json:"Ipv6Address,omitempty"`
		AgentVersion     string `json:"AgentVersion,omitempty"`
		LaunchTime       string `json:"LaunchTime,omitempty"`
		LastSeen         string `json:"LastSeen,omitempty"`
		Tags             []struct {
			Key   string `json:"Key"`
			Value string `json:"Value"`
		} `json:"Tags"`
	} `json:"Instance"`
	AgentSessionEnded bool `json:"AgentSessionEnded"`
}

func newInstanceCmd(stdio IO) *cobra.Command {
	var flags client.Flags
	c := &cobra.Command{Use: "instance", Short: "Manage enrolled hosts (instances) beyond what EC2's API covers"}
	addClientFlags(c, &flags)

	var (
		out        outputFlag
		instanceID string
	)
	deregister := &cobra.Command{
		Use:   "deregister --instance-id i-... [--output json|table|text]",
		Short: "Remove a host from the inventory for good (authorized as kaginashi:DeregisterInstance)",
		Long: `Deregister an instance: a decommissioned host, or a compromised one. The
instance and its tags leave the inventory; no key can be pushed to it and no
tunnel opened to it from then on, on any server replica; its agent is
disconnected and its next connection refused, after which the agent stops
("enroll again"). Keys pushed to it within the last 60 seconds are not
withdrawn: they expire on their own. To bring the host back, enroll its agent
again with a new join token: it becomes a new instance ID.

The answer is the instance as it last was. --output json prints the API's
answer as the AWS CLI would; table and text are for people and scripts.`,
		Args: exactArgs(0, "no positional arguments; give --instance-id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if instanceID == "" {
				return usageErr("--instance-id is required (i-..., as DescribeInstances lists it)")
			}
			// EC2's instance ID shape, as the server checks it: a typo is
			// a usage error here, not a round trip.
			if !client.IsInstanceID(instanceID) {
				return usageErr("--instance-id %q: want an instance ID such as i-0123456789abcdef0", instanceID)
			}
			cfg, err := client.Load(cmd.Context(), flags)
			if err != nil {
				return apiFailure(err, flags.EndpointURL)
			}
			var res deregisteredInstance
			if err := client.CallJSON(cmd.Context(), cfg, kgService, kgTarget+"DeregisterInstance", map[string]string{"InstanceId": instanceID}, &res); err != nil {
				return apiFailure(err, aws.ToString(cfg.BaseEndpoint))
			}
			return printDeregistered(stdio.Out, out.v, res)
		},
	}
	deregister.Flags().StringVar(&instanceID, "instance-id", "", "the instance to deregister (i-...)")
	out.register(deregister, "json", "table", "text")
	c.AddCommand(deregister)
	return c
}

func printDeregistered(w io.Writer, format string, res deregisteredInstance) error {
	in := res.Instance
	ended := "no agent session was open"
	if res.AgentSessionEnded {
		ended = "its agent's session was ended"
	}
	switch format {
	case "json":
		return writeJSON(w, res)
	case "text":
		// The AWS CLI's text output: one tab-separated line per object,
		// led by its name in capitals.
		fmt.Fprintf(w, "INSTANCE\t%s\t%s\t%s\t%s\t%s\t%t\n", cell(in.InstanceID), cell(in.State), cell(orDash(in.Hostname)), cell(orDash(in.PrivateIPAddress)), cell(orDash(in.LastSeen)), res.AgentSessionEnded)
		for _, t := range in.Tags {
			fmt.Fprintf(w, "TAGS\t%s\t%s\n", cell(t.Key), cell(t.Value))
		}
		return nil
	}
	fmt.Fprintf(w, "Deregistered %s (it was %s); %s.\n", cell(in.InstanceID), cell(in.State), ended)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE ID\tLAST STATE\tHOSTNAME\tPRIVATE IP\tLAST SEEN\tTAGS")
	tags := ""
	for i, t := range in.Tags {
		if i > 0 {
			tags += ","
		}
		tags += cell(t.Key) + "=" + cell(t.Value)
	}
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(in.InstanceID), cell(in.State), cell(orDash(in.Hostname)), cell(orDash(in.PrivateIPAddress)), cell(orDash(in.LastSeen)), orDash(tags))
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
