package benchpolicy

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/kaginashi/kaginashi/policy"
	"github.com/minio/pkg/v3/policy/condition"
)

// MinIO's engine does not speak all of the IAM policy language, so the
// baseline comparison runs on a subset both engines understand: each
// fixture document rewritten by the rules below, and BOTH engines evaluate
// the rewritten documents. The rules keep every statement and change no
// benchmark decision (the parity test checks that the rewritten set decides
// every request as the full set does):
//
//  1. A policy variable MinIO cannot substitute (it only knows its "common"
//     keys such as ${aws:username}, not ${aws:PrincipalTag/team}) is inlined
//     with the caller's value, as if the policies were compiled per user.
//  2. An ...IfExists operator becomes the plain operator (MinIO only knows
//     NumericGreaterThanIfExists); every benchmark request carries the key.
//  3. IpAddress/NotIpAddress on a key other than aws:SourceIp (MinIO allows
//     no other key) becomes StringLike/StringNotLike with the equivalent
//     dotted-quad pattern (10.0.0.0/16 → "10.0.*"); only octet-aligned IPv4
//     ranges can be rewritten.
//  4. Bool on a key other than aws:SecureTransport (MinIO allows no other
//     key) becomes StringEquals "true"/"false" — which is what MinIO's Bool
//     does anyway: it compares the request value with the text "true".
//
// Anything else MinIO cannot express is an error rather than a silent drop.

// Rewrite is one change the subset made, for the report.
type Rewrite struct {
	Policy, Sid, What string
}

func (r Rewrite) String() string { return r.Policy + "/" + r.Sid + ": " + r.What }

// MinIOSubset rewrites the documents into the subset MinIO understands.
// caller supplies the values of inlined variables.
func MinIOSubset(docs []Doc, caller map[string][]string) ([]Doc, []Rewrite, error) {
	var out []Doc
	var rws []Rewrite
	for _, d := range docs {
		p, err := policy.Parse(d.JSON)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", d.Name, err)
		}
		jp := jsonPolicy{Version: p.Version}
		for _, s := range p.Statements {
			note := func(format string, args ...any) {
				rws = append(rws, Rewrite{Policy: d.Name, Sid: s.Sid, What: fmt.Sprintf(format, args...)})
			}
			inline := func(v string) (string, error) {
				nv, err := inlineVars(v, caller)
				if err == nil && nv != v {
					note("inlined %s → %s", v, nv)
				}
				return nv, err
			}
			js := jsonStatement{Sid: s.Sid, Effect: s.Effect.String(), Action: s.Action, NotAction: s.NotAction}
			for _, lists := range []struct {
				in  []string
				out *[]string
			}{{s.Resource, &js.Resource}, {s.NotResource, &js.NotResource}} {
				for _, r := range lists.in {
					nr, err := inline(r)
					if err != nil {
						return nil, nil, fmt.Errorf("%s/%s: %w", d.Name, s.Sid, err)
					}
					*lists.out = append(*lists.out, nr)
				}
			}
			for _, c := range s.Conditions {
				op, key, vals := c.Operator, c.Key, []string{}
				for _, v := range c.Values {
					nv, err := inline(v)
					if err != nil {
						return nil, nil, fmt.Errorf("%s/%s: %w", d.Name, s.Sid, err)
					}
					vals = append(vals, nv)
				}
				if base, ok := strings.CutSuffix(op, "IfExists"); ok && op != "NumericGreaterThanIfExists" {
					note("%s %s → %s", op, key, base)
					op = base
				}
				if (op == "IpAddress" || op == "NotIpAddress") && !strings.EqualFold(key, string(condition.AWSSourceIP)) {
					like := "StringLike"
					if op == "NotIpAddress" {
						like = "StringNotLike"
					}
					pats, err := cidrPatterns(vals)
					if err != nil {
						return nil, nil, fmt.Errorf("%s/%s: %s %s: %w", d.Name, s.Sid, op, key, err)
					}
					note("%s %s %v → %s %v", op, key, vals, like, pats)
					op, vals = like, pats
				}
				if op == "Bool" && !strings.EqualFold(key, string(condition.AWSSecureTransport)) {
					note("Bool %s → StringEquals", key)
					op = "StringEquals"
					for i := range vals {
						vals[i] = strings.ToLower(vals[i])
					}
				}
				if js.Condition == nil {
					js.Condition = map[string]map[string][]string{}
				}
				if js.Condition[op] == nil {
					js.Condition[op] = map[string][]string{}
				}
				if _, dup := js.Condition[op][key]; dup {
					return nil, nil, fmt.Errorf("%s/%s: rewriting made two %s conditions on %s", d.Name, s.Sid, op, key)
				}
				js.Condition[op][key] = vals
			}
			jp.Statement = append(jp.Statement, js)
		}
		data, err := json.MarshalIndent(jp, "", "  ")
		if err != nil {
			return nil, nil, err
		}
		out = append(out, Doc{Name: d.Name, JSON: data})
	}
	return out, rws, nil
}

type jsonPolicy struct {
	Version   string          `json:"Version,omitempty"`
	Statement []jsonStatement `json:"Statement"`
}

type jsonStatement struct {
	Sid         string                         `json:"Sid,omitempty"`
	Effect      string                         `json:"Effect"`
	Action      []string                       `json:"Action,omitempty"`
	NotAction   []string                       `json:"NotAction,omitempty"`
	Resource    []string                       `json:"Resource,omitempty"`
	NotResource []string                       `json:"NotResource,omitempty"`
	Condition   map[string]map[string][]string `json:"Condition,omitempty"`
}

// minioVariable reports whether MinIO substitutes ${key} itself.
func minioVariable(key string) bool {
	for _, k := range condition.CommonKeys {
		if string(k) == key {
			return true
		}
	}
	return false
}

// inlineVars replaces the ${...} variables MinIO cannot substitute with the
// caller's values.
func inlineVars(s string, caller map[string][]string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break
		}
		key := s[i+2 : i+j]
		b.WriteString(s[:i])
		if minioVariable(key) {
			b.WriteString(s[i : i+j+1])
		} else {
			v, ok := lookupFold(caller, key)
			if !ok || len(v) != 1 {
				return "", fmt.Errorf("variable ${%s}: MinIO cannot substitute it and the caller has no single value to inline", key)
			}
			b.WriteString(v[0])
		}
		s = s[i+j+1:]
	}
	b.WriteString(s)
	return b.String(), nil
}

func lookupFold(m map[string][]string, key string) ([]string, bool) {
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// cidrPatterns turns octet-aligned IPv4 ranges into StringLike patterns.
func cidrPatterns(cidrs []string) ([]string, error) {
	var out []string
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, err
		}
		if !p.Addr().Is4() || p.Bits()%8 != 0 {
			return nil, fmt.Errorf("%s is not an octet-aligned IPv4 range", c)
		}
		octets := strings.Split(p.Masked().Addr().String(), ".")
		n := p.Bits() / 8
		if n == 4 {
			out = append(out, p.Addr().String())
			continue
		}
		out = append(out, strings.Join(append(octets[:n:n], "*"), "."))
	}
	return out, nil
}
