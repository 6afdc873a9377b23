package awsapi

import (
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/inventory"
	"github.com/kaginashi/kaginashi/internal/store"
)

// kaginashi's own API (signing name "kaginashi", JSON 1.1): join tokens for
// agent enrollment, authorized like everything else (kaginashi:*), and
// DescribeInstanceConnectInfo, what `kaginashi ssh` needs to know about a
// host beyond DescribeInstances (authorized as ec2:DescribeInstances).

type kgTag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type kgToken struct {
	TokenID   string  `json:"TokenId"`
	CreatedBy string  `json:"CreatedBy"`
	CreatedAt string  `json:"CreatedAt"`
	ExpiresAt string  `json:"ExpiresAt"`
	MaxUses   int     `json:"MaxUses"`
	Uses      int     `json:"Uses"`
	Revoked   bool    `json:"Revoked"`
	Tags      []kgTag `json:"Tags"`
}

func kgTokenOf(t store.JoinToken) kgToken {
	out := kgToken{TokenID: t.ID, CreatedBy: t.CreatedBy, CreatedAt: isoTime(t.CreatedAt), ExpiresAt: isoTime(t.ExpiresAt),
		MaxUses: t.MaxUses, Uses: t.Uses, Revoked: t.Revoked, Tags: kgTagsOf(t.Tags)}
	return out
}

// kgTagsOf is tags in the kaginashi API's answers: never null.
func kgTagsOf(tags []store.Tag) []kgTag {
	out := make([]kgTag, 0, len(tags))
	for _, t := range tags {
		out = append(out, kgTag{t.Key, t.Value})
	}
	return out
}

// JoinTokenARN is arn:aws:kaginashi:REGION:ACCOUNT:join-token/ID.
func (c *call) joinTokenARN(id string) string {
	return "arn:aws:kaginashi:" + c.h.cfg.Region + ":" + c.h.cfg.Account + ":join-token/" + id
}

func kgOps() map[string]*op {
	ops := map[string]*op{}
	add := func(name string, readOnly bool, run func(c *call) (any, error)) {
		ops[name] = &op{name: name, action: "kaginashi:" + name, readOnly: readOnly, run: func(c *call) (any, error) {
			if c.h.deps.Tokens == nil {
				return nil, apierr.New(apierr.Unsupported, "agent enrollment is not enabled on this server")
			}
			return run(c)
		}}
	}
	ops["DescribeInstanceConnectInfo"] = &op{name: "DescribeInstanceConnectInfo", action: "ec2:DescribeInstances", readOnly: true, run: describeConnectInfo}
	ops["DeregisterInstance"] = &op{name: "DeregisterInstance", action: "kaginashi:DeregisterInstance", run: deregisterInstance}
	add("CreateJoinToken", false, func(c *call) (any, error) {
		var in struct {
			TTLSeconds int     `json:"TtlSeconds"`
			MaxUses    int     `json:"MaxUses"`
			Tags       []kgTag `json:"Tags"`
		}
		if err := c.decodeJSON(&in); err != nil {
			return nil, err
		}
		var tags []store.Tag
		for _, t := range in.Tags {
			tags = append(tags, store.Tag{Key: t.Key, Value: t.Value})
		}
		// They become the enrolled instance's tags: CreateTags' rules
		// (no aws: or kaginashi: keys, EC2's lengths), checked now rather
		// than found out when a host enrols.
		if err := inventory.CheckTags(tags); err != nil {
			return nil, err
		}
		if err := inventory.CheckTagKeyCase(nil, tags); err != nil {
			return nil, err
		}
		if err := c.authorize("*", requestTags(tags)); err != nil {
			return nil, err
		}
		nt, err := c.h.deps.Tokens.Create(c.ctx, c.auth.Principal.ARN, time.Duration(in.TTLSeconds)*time.Second, in.MaxUses, tags)
		if err != nil {
			return nil, err
		}
		c.response = map[string]any{"tokenId": nt.ID, "expiresAt": isoTime(nt.ExpiresAt), "token": "HIDDEN_DUE_TO_SECURITY_REASONS"}
		out := struct {
			Token     string  `json:"Token"`
			JoinToken kgToken `json:"JoinToken"`
			// ServerURL is the server's public URL (--public-url), which
			// hosts enrol with; the admin may have reached it otherwise
			// (https://localhost on the server itself).
			ServerURL string `json:"ServerUrl,omitempty"`
		}{Token: nt.Token, JoinToken: kgTokenOf(nt.JoinToken)}
		if c.h.deps.Inventory != nil {
			if ep, err := c.h.deps.Inventory.Endpoint(c.ctx); err == nil && ep.DNSName != "" {
				out.ServerURL = "https://" + ep.DNSName
			}
		}
		return out, nil
	})
	add("ListJoinTokens", true, func(c *call) (any, error) {
		if err := c.decodeJSON(&struct{}{}); err != nil {
			return nil, err
		}
		if err := c.authorize("*", nil); err != nil {
			return nil, err
		}
		ts, err := c.h.deps.Tokens.List(c.ctx)
		if err != nil {
			return nil, err
		}
		out := struct {
			JoinTokens []kgToken `json:"JoinTokens"`
		}{JoinTokens: []kgToken{}}
		for _, t := range ts {
			out.JoinTokens = append(out.JoinTokens, kgTokenOf(t))
		}
		return out, nil
	})
	add("RevokeJoinToken", false, func(c *call) (any, error) {
		var in struct {
			TokenID string `json:"TokenId"`
		}
		if err := c.decodeJSON(&in); err != nil {
			return nil, err
		}
		if in.TokenID == "" {
			return nil, invalidf("TokenId is required")
		}
		if err := c.authorize(c.joinTokenARN(in.TokenID), nil); err != nil {
			return nil, err
		}
		return struct{}{}, c.h.deps.Tokens.Revoke(c.ctx, in.TokenID)
	})
	return ops
}

// kgConnectInfo is what a client needs to log in to an instance: who to
// log in as, which host keys to expect, which ports its agent lets tunnels
// reach.
type kgConnectInfo struct {
	InstanceID        string   `json:"InstanceId"`
	Name              string   `json:"Name,omitempty"` // the Name tag
	State             string   `json:"State"`
	LastSeen          string   `json:"LastSeen,omitempty"`
	PrivateIP         string   `json:"PrivateIpAddress,omitempty"`
	IPv6              string   `json:"Ipv6Address,omitempty"`
	DefaultUser       string   `json:"DefaultUser,omitempty"`
	DefaultUserExists bool     `json:"DefaultUserExists"`
	SSHDConfigured    bool     `json:"SSHDConfigured"`
	HostKeys          []string `json:"HostKeys"` // OpenSSH "type base64" lines, as the agent reported sshd's
	// AllowedPorts are the ports the agent lets tunnels reach, while it
	// is connected to this server process (absent: unknown).
	AllowedPorts []int `json:"AllowedPorts,omitempty"`
	// SSHPort is the port the host's sshd listens on, as its agent reads
	// sshd's configuration (absent: unknown; clients assume 22).
	SSHPort int `json:"SSHPort,omitempty"`
}

// portReporter is the part of the tunneler that knows agents' ports.
type portReporter interface {
	AllowedPorts(instanceID string) ([]int, bool)
	SSHPort(instanceID string) (int, bool)
}

// describeConnectInfo is DescribeInstanceConnectInfo: DescribeInstances'
// selection (InstanceIds, each of which must exist, and EC2 Filters such
// as tag:Name) and authorization (ec2:DescribeInstances on *), answering
// each instance's login facts. Host keys are public and the rest is what
// DescribeInstances shows anyway, so it needs no permission of its own.
func describeConnectInfo(c *call) (any, error) {
	var in struct {
		InstanceIDs []string `json:"InstanceIds"`
		Filters     []struct {
			Name   string   `json:"Name"`
			Values []string `json:"Values"`
		} `json:"Filters"`
	}
	if err := c.decodeJSON(&in); err != nil {
		return nil, err
	}
	if len(in.InstanceIDs) > 1000 {
		return nil, invalidf("InstanceIds: at most 1000")
	}
	if len(in.Filters) > 50 {
		return nil, invalidf("Filters: at most 50")
	}
	var filters []inventory.Filter
	for _, f := range in.Filters {
		if f.Name == "" || len(f.Values) == 0 || len(f.Values) > 200 {
			return nil, invalidf("each filter needs a Name and 1 to 200 Values")
		}
		filters = append(filters, inventory.Filter{Name: f.Name, Values: f.Values})
	}
	if err := c.authorize("*", nil); err != nil {
		return nil, err
	}
	pg, err := c.h.deps.Inventory.Describe(c.ctx, in.InstanceIDs, filters, 0, "")
	if err != nil {
		return nil, err
	}
	ep, err := c.h.deps.Inventory.Endpoint(c.ctx)
	if err != nil {
		return nil, err
	}
	ports, _ := c.h.deps.Tunnels.(portReporter)
	out := struct {
		Instances []kgConnectInfo `json:"Instances"`
		// The endpoint to tunnel through (OpenTunnel's
		// instanceConnectEndpointId): a client needs no
		// DescribeInstanceConnectEndpoints, nor its permission.
		EndpointID string `json:"InstanceConnectEndpointId"`
	}{Instances: []kgConnectInfo{}, EndpointID: ep.ID}
	for _, inst := range pg.Instances {
		x := kgConnectInfo{InstanceID: inst.ID, State: inst.State, PrivateIP: inst.PrivateIP, IPv6: inst.IPv6,
			DefaultUser: inst.DefaultUser, DefaultUserExists: inst.DefaultUserExists, SSHDConfigured: inst.SSHDConfigured,
			HostKeys: append([]string{}, inst.HostKeys...)}
		if !inst.LastSeen.IsZero() {
			x.LastSeen = isoTime(inst.LastSeen)
		}
		for _, t := range inst.Tags {
			if t.Key == "Name" {
				x.Name = t.Value
			}
		}
		if ports != nil {
			if p, ok := ports.AllowedPorts(inst.ID); ok {
				x.AllowedPorts = p
			}
			if p, ok := ports.SSHPort(inst.ID); ok {
				x.SSHPort = p
			}
		}
		out.Instances = append(out.Instances, x)
	}
	return out, nil
}
