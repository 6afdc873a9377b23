package awsapi

import (
	"context"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/inventory"
	"github.com/kaginashi/kaginashi/internal/store"
)

// kaginashi:DeregisterInstance removes a host from the inventory for good:
// a decommissioned host, or a compromised one whose agent must never speak
// for it again. The instance and its tags leave the store, which alone
// revokes it everywhere — SendSSHPublicKey and open-tunnel look the
// instance up (this replica's cache is invalidated by the delete, another
// replica's within 250 ms), and the agent's next connection is refused
// ("enroll again"), whichever replica it dials. Its live session is then
// ended: here at once, on the replica holding it through the peer API.
//
// Keys pushed to it in the last 60 s are not withdrawn: the agent that
// would have to act on a withdrawal is the one being cut off (a compromised
// one would ignore it, a decommissioned one is gone), the keys were
// authorized when pushed and expire on their own within 60 s, and they
// open nothing but that host.

// sessionEnder ends a deregistered instance's agent session: the gateway
// (one server) or the peer router (replicas). ended says a session was
// found and closed.
type sessionEnder interface {
	EndSession(ctx context.Context, instanceID string) (ended bool, err error)
}

// kgInstance is the instance as it last was, in DeregisterInstance's
// answer.
type kgInstance struct {
	InstanceID   string  `json:"InstanceId"`
	State        string  `json:"State"`
	Hostname     string  `json:"Hostname,omitempty"`
	PrivateIP    string  `json:"PrivateIpAddress,omitempty"`
	IPv6         string  `json:"Ipv6Address,omitempty"`
	AgentVersion string  `json:"AgentVersion,omitempty"`
	LaunchTime   string  `json:"LaunchTime,omitempty"`
	LastSeen     string  `json:"LastSeen,omitempty"`
	Tags         []kgTag `json:"Tags"`
}

func kgInstanceOf(in store.Instance) kgInstance {
	out := kgInstance{InstanceID: in.ID, State: in.State, Hostname: in.Hostname, PrivateIP: in.PrivateIP, IPv6: in.IPv6,
		AgentVersion: in.AgentVersion, Tags: kgTagsOf(in.Tags)}
	if !in.LaunchTime.IsZero() {
		out.LaunchTime = isoTime(in.LaunchTime)
	}
	if !in.LastSeen.IsZero() {
		out.LastSeen = isoTime(in.LastSeen)
	}
	return out
}

type deregisterOutput struct {
	Instance kgInstance `json:"Instance"`
	// AgentSessionEnded says the agent was connected (here or to another
	// replica) and its session was ended.
	AgentSessionEnded bool `json:"AgentSessionEnded"`
}

// deregisterInstance is kaginashi:DeregisterInstance. It is authorized on
// the instance's ARN with its tags as aws:ResourceTag/* and
// ec2:ResourceTag/* (a Deny on ec2:ResourceTag/env=prod protects prod
// hosts), read fresh from the store rather than the cache: a tag just
// changed on another replica must not slip past a Deny. As AWS, a caller
// who may not is denied whether or not the instance exists.
func deregisterInstance(c *call) (any, error) {
	var in struct {
		InstanceID string `json:"InstanceId"`
	}
	if err := c.decodeJSON(&in); err != nil {
		return nil, err
	}
	if in.InstanceID == "" {
		return nil, invalidf("InstanceId is required")
	}
	if err := inventory.ValidInstanceID(in.InstanceID); err != nil {
		return nil, err
	}
	inst, err := c.h.deps.Inventory.Instance(c.ctx, in.InstanceID)
	found := err == nil
	if err != nil && apierr.KindOf(err) != apierr.NotFound {
		// The same answer for every instance: nothing leaks.
		return nil, err
	}
	if amb := inventory.AmbiguousTagKeys(inst.Tags); found && len(amb) > 0 {
		c.h.deps.Log.Warn("instance has tag keys that differ only in case; left out of its condition keys until one of each is deleted",
			"requestID", c.requestID, "instance", in.InstanceID, "keys", amb)
	}
	var tags []store.Tag
	if found {
		tags = inst.Tags
	}
	if err := c.authorize(c.h.deps.Inventory.InstanceARN(in.InstanceID), resourceTags(tags, "aws:ResourceTag/", "ec2:ResourceTag/")); err != nil {
		return nil, err
	}
	if !found {
		return nil, apierr.WithCode(apierr.NotFound, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", in.InstanceID)
	}
	if err := c.h.deps.Inventory.Deregister(c.ctx, in.InstanceID); err != nil {
		return nil, err
	}
	out := deregisterOutput{Instance: kgInstanceOf(inst)}
	// The store's delete is the revocation; ending the session is its
	// prompt consequence. A failure to reach the replica holding the
	// agent is logged, not the call's failure: nothing can reach that
	// agent any more, and its next connection is refused.
	if se, ok := c.h.deps.Tunnels.(sessionEnder); ok {
		ended, err := se.EndSession(context.WithoutCancel(c.ctx), in.InstanceID)
		if err != nil {
			c.h.deps.Log.Warn("a deregistered instance's agent session could not be ended; nothing reaches it, and its next connection is refused",
				"requestID", c.requestID, "instance", in.InstanceID, "err", err)
		}
		out.AgentSessionEnded = ended
	}
	c.response = map[string]any{"instanceId": in.InstanceID, "previousState": inst.State, "agentSessionEnded": out.AgentSessionEnded}
	c.h.deps.Log.Info("instance deregistered", "requestID", c.requestID, "instance", in.InstanceID, "by", c.auth.Principal.ARN,
		"agentSessionEnded", out.AgentSessionEnded)
	return out, nil
}
