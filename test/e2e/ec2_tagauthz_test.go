package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"

	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/test/e2e/harness"
)

// TestEC2TagAuthorization, on a server per engine: CreateTags and
// DeleteTags are authorized per resource with that resource's own tags
// (instances and the endpoint), DeleteTags of every tag with all of the
// resource's keys as aws:TagKeys, and one denied resource refuses the
// whole call; tag keys that differ only in case are refused, and ones
// stored before that (or behind kaginashi's back) are left out of the
// condition context, so neither spelling decides what a policy sees.
// (The red team's cases are in TestRedTeamOpenFindings.)
func TestEC2TagAuthorization(t *testing.T) {
	t.Parallel()
	for _, engine := range harness.Engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			testEC2TagAuthorization(t, newEnv(t, engine))
		})
	}
}

func testEC2TagAuthorization(t *testing.T, e *env) {
	ctx := context.Background()
	root := e.EC2(e.Root)
	prod, dev := e.fleet[0], e.fleet[1] // env=prod, env=dev
	i5, i6 := instanceID(5), instanceID(6)
	tg := func(kv ...string) []ec2types.Tag {
		var out []ec2types.Tag
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, ec2types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
		}
		return out
	}
	keysOnly := func(ks ...string) []ec2types.Tag { // DeleteTags whatever the value
		var out []ec2types.Tag
		for _, k := range ks {
			out = append(out, ec2types.Tag{Key: aws.String(k)})
		}
		return out
	}
	tagsOf := func(id string) map[string]string {
		t.Helper()
		ts, err := e.st.ResourceTags(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, x := range ts {
			m[x.Key] = x.Value
		}
		return m
	}
	eps := harness.Must(root.DescribeInstanceConnectEndpoints(ctx, &ec2.DescribeInstanceConnectEndpointsInput{}))(t)
	ep := aws.ToString(eps.InstanceConnectEndpoints[0].InstanceConnectEndpointId)
	harness.Must(root.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{ep}, Tags: tg("env", "prod")}))(t)

	t.Run("PerResource", func(t *testing.T) {
		c := e.EC2(e.newUser(t, "ta-tagger", harness.Doc(
			map[string]any{"Effect": "Allow", "Action": []string{"ec2:CreateTags", "ec2:DeleteTags"}, "Resource": "*"},
			map[string]any{"Effect": "Deny", "Action": []string{"ec2:CreateTags", "ec2:DeleteTags"}, "Resource": "*",
				"Condition": map[string]any{"StringEquals": map[string]any{"ec2:ResourceTag/env": "prod"}}},
		)))
		// One prod resource among others: the whole call is refused and
		// nothing is tagged, whatever the order.
		for _, rs := range [][]string{{dev.ID, prod.ID}, {prod.ID, dev.ID}} {
			_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: rs, Tags: tg("owner", "ta")})
			harness.WantCode(t, err, "UnauthorizedOperation", 403)
		}
		if _, ok := tagsOf(dev.ID)["owner"]; ok {
			t.Errorf("the dev instance was tagged by a call refused for the prod one: %v", tagsOf(dev.ID))
		}
		_, err := c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{dev.ID, prod.ID}, Tags: keysOnly("Name")})
		harness.WantCode(t, err, "UnauthorizedOperation", 403)
		// The endpoint's tags count too (they feed OpenTunnel's conditions).
		_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{ep}, Tags: tg("env", "dev")})
		harness.WantCode(t, err, "UnauthorizedOperation", 403)
		_, err = c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{ep}})
		harness.WantCode(t, err, "UnauthorizedOperation", 403)
		if got := tagsOf(ep)["env"]; got != "prod" {
			t.Errorf("endpoint env=%q after refused calls, want prod", got)
		}
		// Resources without the tag are the user's to tag.
		harness.Must(c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{dev.ID, i5}, Tags: tg("owner", "ta")}))(t)
		if tagsOf(dev.ID)["owner"] != "ta" || tagsOf(i5)["owner"] != "ta" {
			t.Errorf("owner=ta not on both: %v %v", tagsOf(dev.ID), tagsOf(i5))
		}
	})

	t.Run("DeleteAllTagKeys", func(t *testing.T) {
		// A Deny on deleting Name holds against deleting every tag of a
		// resource that has Name, not of one that has not.
		c := e.EC2(e.newUser(t, "ta-untagger", harness.Doc(
			map[string]any{"Effect": "Allow", "Action": "ec2:DeleteTags", "Resource": "*"},
			map[string]any{"Effect": "Deny", "Action": "ec2:DeleteTags", "Resource": "*",
				"Condition": map[string]any{"ForAnyValue:StringEquals": map[string]any{"aws:TagKeys": []string{"Name"}}}},
		)))
		_, err := c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{i6}})
		harness.WantCode(t, err, "UnauthorizedOperation", 403)
		if _, ok := tagsOf(i6)["Name"]; !ok {
			t.Fatalf("Name deleted from %s despite the Deny: %v", i6, tagsOf(i6))
		}
		harness.Must(root.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{ep}, Tags: tg("scratch", "1")}))(t)
		harness.Must(c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{ep}, Tags: keysOnly("scratch")}))(t)
		if _, ok := tagsOf(ep)["scratch"]; ok {
			t.Error("scratch still on the endpoint")
		}
	})

	t.Run("KeyCaseRefused", func(t *testing.T) {
		harness.Must(root.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{i5}, Tags: tg("Team", "prod")}))(t)
		_, err := root.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{i5}, Tags: tg("team", "dev")})
		ae := harness.WantCode(t, err, "InvalidParameterValue", 400)
		if ae != nil && !strings.Contains(ae.ErrorMessage(), `"Team"`) {
			t.Errorf("message %q does not name the existing key Team", ae.ErrorMessage())
		}
		_, err = root.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{dev.ID}, Tags: tg("Rack", "1", "rack", "2")})
		harness.WantCode(t, err, "InvalidParameterValue", 400)
		harness.Must(root.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{i5}, Tags: tg("Team", "web")}))(t) // same spelling: overwrites
		if got := tagsOf(i5); got["Team"] != "web" || got["team"] != "" {
			t.Errorf("tags of %s: %v", i5, got)
		}
	})

	t.Run("StoredCollisionFailsSafe", func(t *testing.T) {
		// Both spellings on one host, as a store from before the check
		// may hold them: ec2:ResourceTag/Team is neither value.
		// (TagResource refuses the pair now; PutInstance writes what it
		// is given.)
		i7 := instanceID(7)
		in7, err := e.st.GetInstance(ctx, i7)
		if err != nil {
			t.Fatal(err)
		}
		in7.Tags = append(in7.Tags, store.Tag{Key: "Team", Value: "prod"}, store.Tag{Key: "team", Value: "dev"})
		if err := e.st.PutInstance(ctx, in7); err != nil {
			t.Fatal(err)
		}
		key := harness.Ed25519Key(t)
		push := func(c harness.Creds) error {
			_, err := e.EIC(c).SendSSHPublicKey(ctx, &ec2instanceconnect.SendSSHPublicKeyInput{
				InstanceId: aws.String(i7), InstanceOSUser: aws.String("admin"), SSHPublicKey: aws.String(key)})
			return err
		}
		allowTeam := func(name, team string) harness.Creds {
			return e.newUser(t, name, harness.Doc(map[string]any{"Effect": "Allow", "Action": "ec2-instance-connect:SendSSHPublicKey", "Resource": e.instanceARN("*"),
				"Condition": map[string]any{"StringEquals": map[string]any{"ec2:ResourceTag/Team": team}}}))
		}
		devs, prods := allowTeam("ta-devs", "dev"), allowTeam("ta-prods", "prod")
		for _, c := range []harness.Creds{devs, prods} {
			if err := push(c); err == nil {
				t.Errorf("%s: SendSSHPublicKey allowed on a host with Team=prod and team=dev", c.Who)
			} else {
				harness.WantCode(t, err, "AuthException", 403)
			}
		}
		// A Deny unless Team=dev (a negated operator) still applies.
		guarded := e.newUser(t, "ta-guarded", harness.Doc(
			map[string]any{"Effect": "Allow", "Action": "ec2-instance-connect:SendSSHPublicKey", "Resource": "*"},
			map[string]any{"Effect": "Deny", "Action": "ec2-instance-connect:SendSSHPublicKey", "Resource": "*",
				"Condition": map[string]any{"StringNotEquals": map[string]any{"ec2:ResourceTag/Team": "dev"}}},
		))
		if err := push(guarded); err == nil {
			t.Error("ta-guarded: SendSSHPublicKey allowed past a Deny unless Team=dev")
		}
		// Deleting one spelling settles it.
		harness.Must(root.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{i7}, Tags: keysOnly("team")}))(t)
		if err := push(prods); err != nil {
			t.Errorf("ta-prods after team was deleted (Team=prod alone): %v", err)
		}
		if err := push(devs); err == nil {
			t.Error("ta-devs after team was deleted (Team=prod alone): allowed")
		}
	})
}
