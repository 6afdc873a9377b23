package awsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/connect"
	"github.com/kaginashi/kaginashi/internal/inventory"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/policy"
)

// decodeJSON reads a JSON 1.1 body into v. Unknown fields are ignored, as
// AWS does; a body that is not a JSON object is InvalidArgs.
func (c *call) decodeJSON(v any) error {
	body := bytes.TrimSpace(c.body)
	if len(body) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return invalidf("The request body must be a JSON object, not a JSON %s", te.Value)
			}
			return invalidf("Invalid input parameter: %s must be a %s", te.Field, jsonTypeName(te.Type))
		}
		return invalidf("The request body is not valid JSON: %v", err)
	}
	if dec.More() {
		return invalidf("The request body has text after the JSON object")
	}
	return nil
}

// jsonTypeName names a Go type as the JSON a caller must send, for
// messages: never a Go type name.
func jsonTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Pointer:
		return jsonTypeName(t.Elem())
	}
	return "JSON object"
}

type sendKeyInput struct {
	InstanceID       string `json:"InstanceId"`
	InstanceOSUser   string `json:"InstanceOSUser"`
	SSHPublicKey     string `json:"SSHPublicKey"`
	AvailabilityZone string `json:"AvailabilityZone"`
	SerialPort       *int   `json:"SerialPort"`
}

type sendKeyOutput struct {
	RequestID string `json:"RequestId"`
	Success   bool   `json:"Success"`
}

// InstanceReader is the instance read of the SendSSHPublicKey hot path:
// store.Store's CachedInstance, which answers from memory while the
// inventory generation is unchanged (changes through this server seen at
// once, other replicas' within 250 ms, as for IAM policies).
type InstanceReader interface {
	CachedInstance(ctx context.Context, id string) (store.Instance, error)
}

// instanceContext reads the instance's tags for authorization without
// revealing whether it exists: a caller without permission is denied the
// same way either way.
func (c *call) instanceContext(id string) (store.Instance, bool, func(*policy.Context), error) {
	var in store.Instance
	var err error
	if c.h.deps.Instances != nil {
		in, err = c.h.deps.Instances.CachedInstance(c.ctx, id)
	} else {
		in, err = c.h.deps.Inventory.Instance(c.ctx, id)
	}
	found := err == nil
	if amb := inventory.AmbiguousTagKeys(in.Tags); found && len(amb) > 0 {
		// Left out of the condition keys (resourceTags); worth an
		// administrator's look, since an Allow on them no longer matches.
		c.h.deps.Log.Warn("instance has tag keys that differ only in case; left out of its condition keys until one of each is deleted",
			"requestID", c.requestID, "instance", id, "keys", amb)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) && apierr.KindOf(err) != apierr.NotFound {
		// A failing store is not a missing instance: answer an internal
		// error rather than EC2InstanceNotFoundException. Nothing leaks
		// about existence — the answer is the same for every instance.
		return in, false, nil, apierr.Wrap(err, "reading the instance")
	}
	return in, found, func(rc *policy.Context) {
		if found {
			resourceTags(in.Tags, "aws:ResourceTag/", "ec2:ResourceTag/")(rc)
		}
	}, nil
}

func eicOps() map[string]*op {
	return map[string]*op{
		"SendSSHPublicKey": {name: "SendSSHPublicKey", action: "ec2-instance-connect:SendSSHPublicKey", run: func(c *call) (any, error) {
			var in sendKeyInput
			if err := c.decodeJSON(&in); err != nil {
				return nil, err
			}
			if err := connect.ValidInstanceID(in.InstanceID); err != nil {
				return nil, invalidf("%v", err)
			}
			if err := connect.ValidOSUser(in.InstanceOSUser); err != nil {
				return nil, invalidf("%v", err)
			}
			if in.AvailabilityZone != "" {
				if err := connect.ValidAvailabilityZone(in.AvailabilityZone); err != nil {
					return nil, invalidf("%v", err)
				}
			}
			key, err := connect.ParsePublicKey(in.SSHPublicKey)
			if err != nil {
				return nil, invalidf("Invalid input parameter received for Illegal argument exception: %v", err)
			}
			inst, found, tags, err := c.instanceContext(in.InstanceID)
			if err != nil {
				return nil, err
			}
			if err := c.authorize(c.h.deps.Inventory.InstanceARN(in.InstanceID), func(rc *policy.Context) {
				rc.Set("ec2:osuser", in.InstanceOSUser)
				tags(rc)
			}); err != nil {
				return nil, err
			}
			if !found {
				return nil, apierr.New(apierr.NotFound, "Instance %s not found", in.InstanceID)
			}
			// The key record's write is queued, and waited for once the
			// audit event is recorded (runOp), so that both commit in one
			// transaction.
			rec, wait, err := c.h.deps.Connect.PushQueued(c.ctx, connect.PushInput{
				RequestID: c.requestID, Instance: inst, OSUser: in.InstanceOSUser, Key: key, CallerARN: c.auth.Principal.ARN,
			})
			if err != nil {
				return nil, err
			}
			c.afterRecord = wait
			c.extra = map[string]any{"keyFingerprint": rec.Fingerprint, "keyExpiresAt": isoTime(rec.ExpiresAt)}
			c.response = map[string]any{"requestId": c.requestID, "success": true}
			return sendKeyOutput{RequestID: c.requestID, Success: true}, nil
		}},
		"SendSerialConsoleSSHPublicKey": {name: "SendSerialConsoleSSHPublicKey", action: "ec2-instance-connect:SendSerialConsoleSSHPublicKey", run: func(c *call) (any, error) {
			var in sendKeyInput
			if err := c.decodeJSON(&in); err != nil {
				return nil, err
			}
			if err := connect.ValidInstanceID(in.InstanceID); err != nil {
				return nil, invalidf("%v", err)
			}
			if in.SerialPort != nil && *in.SerialPort != 0 {
				return nil, invalidf("SerialPort must be 0")
			}
			if _, err := connect.ParsePublicKey(in.SSHPublicKey); err != nil {
				return nil, invalidf("Invalid input parameter received for Illegal argument exception: %v", err)
			}
			_, _, tags, err := c.instanceContext(in.InstanceID)
			if err != nil {
				return nil, err
			}
			if err := c.authorize(c.h.deps.Inventory.InstanceARN(in.InstanceID), tags); err != nil {
				return nil, err
			}
			return nil, apierr.WithCode(apierr.Unsupported, "SerialConsoleAccessDisabledException",
				"kaginashi hosts have no EC2 serial console. Log in over SSH instead: SendSSHPublicKey, or `kaginashi ssh %s`.", in.InstanceID)
		}},
	}
}
