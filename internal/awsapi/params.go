package awsapi

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store"
)

// params reads an AWS Query request's form values: scalars, lists
// (Name.member.N for IAM, Name.N for EC2), and lists of structures. Every
// read of a missing required value or a malformed one records an error;
// the handler checks err() once after decoding.
type params struct {
	v    url.Values
	errs []string
	// code is the wire code of decoding problems when the protocol has
	// one of its own (IAM: ValidationError); "" is the kind's default.
	code string
}

func newParams(v url.Values) *params { return &params{v: v} }

func (p *params) fail(format string, args ...any) {
	p.errs = append(p.errs, fmt.Sprintf(format, args...))
}

// err returns the decoding problems as one InvalidInput error.
func (p *params) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return apierr.WithCode(apierr.InvalidInput, p.code, "%s", strings.Join(p.errs, "; "))
}

// str returns an optional scalar.
func (p *params) str(name string) string { return p.v.Get(name) }

// has reports whether a parameter was sent (even empty).
func (p *params) has(name string) bool {
	_, ok := p.v[name]
	return ok
}

// req returns a required scalar.
func (p *params) req(name string) string {
	v := p.v.Get(name)
	if v == "" {
		p.fail("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(name))
	}
	return v
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// boolean reads "true"/"false"; absent is def.
func (p *params) boolean(name string, def bool) bool {
	v := p.v.Get(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail("%s must be true or false", name)
	}
	return b
}

// integer reads an optional integer within [lo, hi]; absent is def.
func (p *params) integer(name string, def, lo, hi int) int {
	v := p.v.Get(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail("%s must be an integer from %d to %d", name, lo, hi)
		return def
	}
	return n
}

// indexed returns the values of prefix.1, prefix.2, ... in order. Gaps end
// the list, as AWS's parsers do; at most max items are read.
func (p *params) indexed(prefix string, max int) []string {
	var out []string
	for i := 1; i <= max+1; i++ {
		v, ok := p.v[prefix+"."+strconv.Itoa(i)]
		if !ok {
			break
		}
		if i > max {
			p.fail("%s has more than %d members", prefix, max)
			break
		}
		out = append(out, v[0])
	}
	return out
}

// members reads an IAM-style list: Name.member.1, Name.member.2, ...
func (p *params) members(name string, max int) []string { return p.indexed(name+".member", max) }

// tags reads a list of Key/Value structures under prefix (e.g.
// "Tags.member" for IAM, "Tag" for EC2).
func (p *params) tags(prefix string, max int) []store.Tag {
	var out []store.Tag
	for i := 1; ; i++ {
		k, ok := p.v[fmt.Sprintf("%s.%d.Key", prefix, i)]
		if !ok {
			break
		}
		if i > max {
			p.fail("%s has more than %d members", prefix, max)
			break
		}
		out = append(out, store.Tag{Key: k[0], Value: p.v.Get(fmt.Sprintf("%s.%d.Value", prefix, i))})
	}
	return out
}

// tagMatches reads EC2 DeleteTags' Tag.N.Key / optional Tag.N.Value.
func (p *params) tagMatches(prefix string, max int) []store.TagMatch {
	var out []store.TagMatch
	for i := 1; ; i++ {
		k, ok := p.v[fmt.Sprintf("%s.%d.Key", prefix, i)]
		if !ok {
			break
		}
		if i > max {
			p.fail("%s has more than %d members", prefix, max)
			break
		}
		vk := fmt.Sprintf("%s.%d.Value", prefix, i)
		_, hasValue := p.v[vk]
		out = append(out, store.TagMatch{Key: k[0], Value: p.v.Get(vk), MatchValue: hasValue})
	}
	return out
}

// filter is an EC2 Filter.N.Name / Filter.N.Value.M.
type filter struct {
	Name   string
	Values []string
}

func (p *params) filters(max int) []filter {
	var out []filter
	for i := 1; ; i++ {
		name, ok := p.v[fmt.Sprintf("Filter.%d.Name", i)]
		if !ok {
			break
		}
		if i > max {
			p.fail("more than %d filters", max)
			break
		}
		out = append(out, filter{Name: name[0], Values: p.indexed(fmt.Sprintf("Filter.%d.Value", i), 200)})
	}
	return out
}

// contextEntries reads SimulatePrincipalPolicy's ContextEntries.member.N.
func (p *params) contextEntries(max int) map[string][]string {
	out := map[string][]string{}
	for i := 1; ; i++ {
		base := fmt.Sprintf("ContextEntries.member.%d", i)
		name, ok := p.v[base+".ContextKeyName"]
		if !ok {
			break
		}
		if i > max {
			p.fail("more than %d context entries", max)
			break
		}
		out[name[0]] = append(out[name[0]], p.members(base+".ContextKeyValues", 100)...)
	}
	return out
}

// record returns the request's parameters for the audit log: every form
// value except the protocol's own, as a sorted map.
func (p *params) record() map[string]any {
	out := map[string]any{}
	keys := make([]string, 0, len(p.v))
	for k := range p.v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "Action", "Version":
			continue
		}
		if strings.HasPrefix(k, "X-Amz-") {
			continue
		}
		out[lowerFirst(k)] = p.v.Get(k)
	}
	return out
}
