package gateway

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// SealedMeta are the store meta keys of the gateway's values sealed with
// the master key: what a master-key rotation must re-seal.
var SealedMeta = []string{metaAgentCA, metaSigningKey}

// ResealMeta re-seals one of SealedMeta's values, given as stored, with
// reseal (open with the old key, seal with the new one, for owner). The
// gateway owns these formats, so it rewrites them: the agent CA is JSON
// whose "key" holds the sealed key (every other field is kept as it is),
// the signing key is the sealed seed in base64.
func ResealMeta(key string, value []byte, reseal func(ct []byte, owner string) ([]byte, error)) ([]byte, error) {
	reseal64 := func(s string) (string, error) {
		ct, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return "", fmt.Errorf("not base64: %w", err)
		}
		out, err := reseal(ct, key)
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(out), nil
	}
	switch key {
	case metaSigningKey:
		out, err := reseal64(string(value))
		return []byte(out), err
	case metaAgentCA:
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(value, &fields); err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		var sealed string
		if err := json.Unmarshal(fields["key"], &sealed); err != nil {
			return nil, fmt.Errorf("no sealed key: %w", err)
		}
		out, err := reseal64(sealed)
		if err != nil {
			return nil, err
		}
		if fields["key"], err = json.Marshal(out); err != nil {
			return nil, err
		}
		return json.Marshal(fields)
	}
	return nil, fmt.Errorf("%s is not a sealed gateway value", key)
}
