package benchpolicy

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/kaginashi/kaginashi/policy"
	minio "github.com/minio/pkg/v3/policy"
	"github.com/minio/pkg/v3/policy/condition"
)

// MinIO's policy JSON parser only accepts S3 and MinIO ARNs and its own
// condition keys, so documents are handed to it already parsed (by
// kaginashi's parser, which only reads the grammar) and built with MinIO's
// exported constructors. Its evaluator itself is generic: it matches actions
// and resources with its wildcard matcher and looks condition keys up in the
// request's map, so EC2/IAM actions and ARNs evaluate as they would for S3.

// ToMinIO converts one (subset) document into a MinIO policy.
func ToMinIO(d Doc) (minio.Policy, error) {
	p, err := policy.Parse(d.JSON)
	if err != nil {
		return minio.Policy{}, fmt.Errorf("%s: %w", d.Name, err)
	}
	mp := minio.Policy{Version: p.Version}
	for _, s := range p.Statements {
		st := minio.Statement{SID: minio.ID(s.Sid), Effect: minio.Allow}
		if s.Effect == policy.Deny {
			st.Effect = minio.Deny
		}
		st.Actions = actionSet(s.Action)
		st.NotActions = actionSet(s.NotAction)
		st.Resources = resourceSet(s.Resource)
		st.NotResources = resourceSet(s.NotResource)
		var fns []condition.Function
		for _, c := range s.Conditions {
			fn, err := minioCondition(c)
			if err != nil {
				return minio.Policy{}, fmt.Errorf("%s/%s: %s %s: %w", d.Name, s.Sid, c.Operator, c.Key, err)
			}
			fns = append(fns, fn)
		}
		st.Conditions = condition.NewFunctions(fns...)
		mp.Statements = append(mp.Statements, st)
	}
	return mp, nil
}

// MinIOSet converts the documents and merges them into the one policy MinIO
// evaluates for a user (as its server does with MergePolicies).
func MinIOSet(docs []Doc) (minio.Policy, error) {
	var ps []minio.Policy
	for _, d := range docs {
		p, err := ToMinIO(d)
		if err != nil {
			return minio.Policy{}, err
		}
		ps = append(ps, p)
	}
	return minio.MergePolicies(ps...), nil
}

func actionSet(as []string) minio.ActionSet {
	if as == nil {
		return nil
	}
	set := minio.NewActionSet()
	for _, a := range as {
		set.Add(minio.Action(a))
	}
	return set
}

func resourceSet(rs []string) minio.ResourceSet {
	if rs == nil {
		return nil
	}
	set := minio.NewResourceSet()
	for _, r := range rs {
		// MinIO's matcher reads only Pattern; keep the whole ARN there.
		set.Add(minio.NewResource(r))
	}
	return set
}

// minioKey splits "aws:ResourceTag/team" into name and variable as MinIO's
// own key parser does.
func minioKey(k string) condition.Key {
	name, variable, _ := strings.Cut(k, "/")
	return condition.NewKey(condition.KeyName(name), variable)
}

func minioCondition(c policy.Condition) (condition.Function, error) {
	op, qual := c.Operator, ""
	if q, rest, ok := strings.Cut(op, ":"); ok {
		qual, op = q, rest
	}
	key := minioKey(c.Key)
	single := func() (string, error) {
		if qual != "" {
			return "", fmt.Errorf("MinIO takes no %s: qualifier here", qual)
		}
		if len(c.Values) != 1 {
			return "", fmt.Errorf("MinIO takes exactly one value here, not %d", len(c.Values))
		}
		return c.Values[0], nil
	}
	num := func(f func(condition.Key, int) (condition.Function, error)) (condition.Function, error) {
		v, err := single()
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("MinIO compares integers only: %w", err)
		}
		return f(key, n)
	}
	date := func(f func(condition.Key, time.Time) (condition.Function, error)) (condition.Function, error) {
		v, err := single()
		if err != nil {
			return nil, err
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, fmt.Errorf("MinIO takes RFC 3339 dates only: %w", err)
		}
		return f(key, t)
	}
	ip := func(f func(condition.Key, ...*net.IPNet) (condition.Function, error)) (condition.Function, error) {
		var nets []*net.IPNet
		for _, v := range c.Values {
			if !strings.Contains(v, "/") {
				v += "/32"
			}
			_, n, err := net.ParseCIDR(v)
			if err != nil {
				return nil, err
			}
			nets = append(nets, n)
		}
		return f(key, nets...)
	}
	boolean := func(f func(condition.Key, bool) (condition.Function, error)) (condition.Function, error) {
		v, err := single()
		if err != nil {
			return nil, err
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, err
		}
		return f(key, b)
	}
	switch op {
	case "StringEquals":
		return condition.NewStringEqualsFunc(qual, key, c.Values...)
	case "StringNotEquals":
		return condition.NewStringNotEqualsFunc(qual, key, c.Values...)
	case "StringEqualsIgnoreCase":
		return condition.NewStringEqualsIgnoreCaseFunc(qual, key, c.Values...)
	case "StringNotEqualsIgnoreCase":
		return condition.NewStringNotEqualsIgnoreCaseFunc(qual, key, c.Values...)
	case "StringLike":
		return condition.NewStringLikeFunc(qual, key, c.Values...)
	case "StringNotLike":
		return condition.NewStringNotLikeFunc(qual, key, c.Values...)
	case "NumericEquals":
		return num(condition.NewNumericEqualsFunc)
	case "NumericNotEquals":
		return num(condition.NewNumericNotEqualsFunc)
	case "NumericLessThan":
		return num(condition.NewNumericLessThanFunc)
	case "NumericLessThanEquals":
		return num(condition.NewNumericLessThanEqualsFunc)
	case "NumericGreaterThan":
		return num(condition.NewNumericGreaterThanFunc)
	case "NumericGreaterThanIfExists":
		return num(condition.NewNumericGreaterThanIfExistsFunc)
	case "NumericGreaterThanEquals":
		return num(condition.NewNumericGreaterThanEqualsFunc)
	case "DateEquals":
		return date(condition.NewDateEqualsFunc)
	case "DateNotEquals":
		return date(condition.NewDateNotEqualsFunc)
	case "DateLessThan":
		return date(condition.NewDateLessThanFunc)
	case "DateLessThanEquals":
		return date(condition.NewDateLessThanEqualsFunc)
	case "DateGreaterThan":
		return date(condition.NewDateGreaterThanFunc)
	case "DateGreaterThanEquals":
		return date(condition.NewDateGreaterThanEqualsFunc)
	case "Bool":
		return boolean(condition.NewBoolFunc)
	case "Null":
		return boolean(condition.NewNullFunc)
	case "IpAddress":
		return ip(condition.NewIPAddressFunc)
	case "NotIpAddress":
		return ip(condition.NewNotIPAddressFunc)
	}
	return nil, fmt.Errorf("MinIO has no %s operator", c.Operator)
}

// MinIOArgs builds MinIO's request arguments. MinIO looks condition keys up
// by their short names (aws:SourceIp → SourceIp, aws:ResourceTag/team →
// ResourceTag/team), as its server fills them, and rebuilds the resource
// from a bucket and an object name: the ARN is split at its first "/".
func MinIOArgs(r Request) minio.Args {
	vals := map[string][]string{}
	for k, v := range r.Context {
		vals[minioKey(k).Name()] = v
	}
	bucket, object, _ := strings.Cut(r.Resource, "/")
	return minio.Args{
		AccountName:     "alice",
		Action:          minio.Action(r.Action),
		BucketName:      bucket,
		ObjectName:      object,
		ConditionValues: vals,
	}
}
