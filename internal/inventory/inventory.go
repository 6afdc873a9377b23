// Package inventory is the EC2 face of kaginashi's hosts: instances as
// enrolled agents report them, their tags, and the one Instance Connect
// Endpoint the server itself is. It answers DescribeInstances-style queries
// with EC2's filters and paging.
package inventory

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store"
)

// Endpoint is the server seen as an EC2 Instance Connect Endpoint.
type Endpoint struct {
	ID        string // eice-...
	ARN       string
	DNSName   string
	Account   string
	CreatedAt time.Time
	Tags      []store.Tag
}

// Service answers inventory questions.
type Service struct {
	store    store.Store
	account  string
	region   string
	endpoint Endpoint
}

// MetaEndpointID and MetaEndpointCreated are the store meta keys that keep
// the endpoint's identity across restarts and replicas.
const (
	MetaEndpointID      = "endpoint_id"
	MetaEndpointCreated = "endpoint_created"
)

// New makes the service. The endpoint ID is created once and shared by
// every replica (store meta); its DNS name is the public URL's host.
func New(ctx context.Context, st store.Store, account, region, publicURL string, newID func() string, now time.Time) (*Service, error) {
	id, err := st.InitMeta(ctx, MetaEndpointID, newID())
	if err != nil {
		return nil, fmt.Errorf("endpoint ID: %w", err)
	}
	created, err := st.InitMeta(ctx, MetaEndpointCreated, now.UTC().Format(time.RFC3339))
	if err != nil {
		return nil, fmt.Errorf("endpoint creation time: %w", err)
	}
	ct, _ := time.Parse(time.RFC3339, created)
	// DnsName is the host clients open wss://DnsName/openTunnel on, as
	// AWS's are; a public URL on another port than 443 keeps it
	// (host:port), or clients would knock on 443.
	host := publicURL
	if u, err := url.Parse(publicURL); err == nil && u.Host != "" {
		host = u.Hostname()
		if p := u.Port(); p != "" && p != "443" {
			host = u.Host
		}
	}
	return &Service{store: st, account: account, region: region, endpoint: Endpoint{
		ID: id, ARN: EndpointARN(region, account, id), DNSName: host, Account: account, CreatedAt: ct,
	}}, nil
}

// InstanceARN is arn:aws:ec2:REGION:ACCOUNT:instance/ID.
func InstanceARN(region, account, id string) string {
	return "arn:aws:ec2:" + region + ":" + account + ":instance/" + id
}

// EndpointARN is arn:aws:ec2:REGION:ACCOUNT:instance-connect-endpoint/ID.
func EndpointARN(region, account, id string) string {
	return "arn:aws:ec2:" + region + ":" + account + ":instance-connect-endpoint/" + id
}

// InstanceARN of an instance of this deployment.
func (s *Service) InstanceARN(id string) string { return InstanceARN(s.region, s.account, id) }

// Created is when this deployment first started: the endpoint's creation
// time, kept in store meta since the first start, the same start that
// fixed the account ID. IAM answers it as the root user's CreateDate.
func (s *Service) Created() time.Time { return s.endpoint.CreatedAt }

// Endpoint returns the endpoint with its current tags.
func (s *Service) Endpoint(ctx context.Context) (Endpoint, error) {
	e := s.endpoint
	tags, err := s.store.ResourceTags(ctx, e.ID)
	if err != nil {
		return e, apierr.Wrap(err, "reading the endpoint's tags")
	}
	e.Tags = tags
	return e, nil
}

// NewInstanceID returns i- and 17 hex digits, like EC2's.
func NewInstanceID() string { return "i-" + randomHex(17) }

// NewEndpointID returns eice- and 17 hex digits, like EC2's.
func NewEndpointID() string { return "eice-" + randomHex(17) }

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail
	}
	return hex.EncodeToString(b)[:n]
}

var instanceIDRE = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)

// ValidInstanceID checks EC2's instance ID shape.
func ValidInstanceID(id string) error {
	if !instanceIDRE.MatchString(id) {
		return apierr.WithCode(apierr.InvalidInput, "InvalidInstanceID.Malformed", "Invalid id: %q (expecting \"i-...\")", id)
	}
	return nil
}

// Instance returns one instance, or a NotFound error with EC2's code.
func (s *Service) Instance(ctx context.Context, id string) (store.Instance, error) {
	in, err := s.store.GetInstance(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return in, apierr.WithCode(apierr.NotFound, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
	}
	if err != nil {
		return in, apierr.Wrap(err, "reading the instance")
	}
	return in, nil
}

// Filter is an EC2 filter: a name and the values any of which may match.
type Filter struct {
	Name   string
	Values []string
}

// Page is one page of a listing.
type Page struct {
	Instances []store.Instance
	NextToken string
}

// Describe lists instances, as DescribeInstances: by ID (each must exist),
// filtered, in pages of maxResults (0: all).
func (s *Service) Describe(ctx context.Context, ids []string, filters []Filter, maxResults int, nextToken string) (Page, error) {
	for _, f := range filters {
		if !knownFilter(f.Name) {
			return Page{}, apierr.WithCode(apierr.InvalidInput, "InvalidParameterValue", "The filter '%s' is invalid", f.Name)
		}
	}
	if len(ids) > 0 && maxResults > 0 {
		return Page{}, apierr.WithCode(apierr.InvalidInput, "InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
	}
	for _, id := range ids {
		if err := ValidInstanceID(id); err != nil {
			return Page{}, err
		}
	}
	after := ""
	if nextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(nextToken)
		if err != nil || !instanceIDRE.Match(b) {
			return Page{}, apierr.WithCode(apierr.InvalidInput, "InvalidParameterValue", "Invalid NextToken")
		}
		after = string(b)
	}
	var all []store.Instance
	cursor := after
	for {
		batch, next, err := s.store.ListInstances(ctx, store.InstanceFilter{IDs: ids, Limit: 500, After: cursor})
		if err != nil {
			return Page{}, apierr.Wrap(err, "listing instances")
		}
		all = append(all, batch...)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(ids) > 0 && after == "" {
		found := map[string]bool{}
		for _, in := range all {
			found[in.ID] = true
		}
		var missing []string
		for _, id := range ids {
			if !found[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return Page{}, apierr.WithCode(apierr.NotFound, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", strings.Join(missing, "', '"))
		}
	}
	var out []store.Instance
	for _, in := range all {
		if matchAll(in, filters) {
			out = append(out, in)
		}
	}
	page := Page{Instances: out}
	if maxResults > 0 && len(out) > maxResults {
		page.Instances = out[:maxResults]
		page.NextToken = base64.RawURLEncoding.EncodeToString([]byte(out[maxResults-1].ID))
	}
	return page, nil
}

var instanceFilters = []string{"instance-id", "instance-state-name", "instance-state-code", "tag-key", "private-ip-address",
	"ip-address", "private-dns-name", "availability-zone", "platform-details", "architecture", "vpc-id", "subnet-id"}

func knownFilter(name string) bool {
	if strings.HasPrefix(name, "tag:") && len(name) > 4 {
		return true
	}
	for _, f := range instanceFilters {
		if f == name {
			return true
		}
	}
	return false
}

// matchAll applies EC2's rule: every filter must match (AND), any of a
// filter's values may (OR); values may use * and ? wildcards.
func matchAll(in store.Instance, filters []Filter) bool {
	for _, f := range filters {
		if !matchFilter(in, f) {
			return false
		}
	}
	return true
}

func matchFilter(in store.Instance, f Filter) bool {
	var candidates []string
	switch {
	case f.Name == "instance-id":
		candidates = []string{in.ID}
	case f.Name == "instance-state-name":
		candidates = []string{in.State}
	case f.Name == "instance-state-code":
		candidates = []string{fmt.Sprint(StateCode(in.State))}
	case f.Name == "private-ip-address":
		candidates = []string{in.PrivateIP}
	case f.Name == "private-dns-name":
		candidates = []string{PrivateDNSName(in)}
	case f.Name == "availability-zone":
		candidates = []string{in.AvailabilityZ}
	case f.Name == "platform-details":
		candidates = []string{in.Platform}
	case f.Name == "architecture":
		candidates = []string{in.Architecture}
	case f.Name == "tag-key":
		for _, t := range AllTags(in) {
			candidates = append(candidates, t.Key)
		}
	case strings.HasPrefix(f.Name, "tag:"):
		key := strings.TrimPrefix(f.Name, "tag:")
		tags := in.Tags
		if strings.HasPrefix(strings.ToLower(key), SystemTagPrefix) {
			tags = SystemTags(in) // built only when a filter asks for one
		}
		for _, t := range tags {
			if t.Key == key {
				candidates = append(candidates, t.Value)
			}
		}
	default: // ip-address, vpc-id, subnet-id: kaginashi hosts have none
	}
	for _, v := range f.Values {
		for _, c := range candidates {
			if wildcard(v, c) {
				return true
			}
		}
	}
	return false
}

// wildcard matches EC2 filter values: * any run, ? one character,
// \ escapes.
func wildcard(pattern, s string) bool {
	if !strings.ContainsAny(pattern, `*?\`) {
		return pattern == s
	}
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		case '\\':
			if i+1 < len(pattern) {
				i++
				re.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
			}
		default:
			re.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	re.WriteString("$")
	ok, err := regexp.MatchString(re.String(), s)
	return err == nil && ok
}

// StateCode is EC2's numeric instance state code.
func StateCode(state string) int {
	switch state {
	case store.StatePending:
		return 0
	case store.StateRunning:
		return 16
	case "shutting-down":
		return 32
	case store.StateTerminated:
		return 48
	case "stopping":
		return 64
	case store.StateStopped:
		return 80
	}
	return 0
}

// PrivateDNSName is EC2's ip-10-0-0-1.REGION.compute.internal form; hosts
// with a real host name keep theirs.
func PrivateDNSName(in store.Instance) string {
	if in.Hostname != "" && strings.Contains(in.Hostname, ".") {
		return in.Hostname
	}
	if ip := net.ParseIP(in.PrivateIP); ip != nil && ip.To4() != nil {
		return "ip-" + strings.ReplaceAll(in.PrivateIP, ".", "-") + ".ec2.internal"
	}
	return in.Hostname
}

// --- tags ---------------------------------------------------------------

// checkResource accepts the resource IDs EC2 tagging takes here: instances
// (which must exist) and the endpoint.
func (s *Service) checkResource(ctx context.Context, id string) error {
	switch {
	case id == s.endpoint.ID:
		return nil
	case strings.HasPrefix(id, "i-"):
		if err := ValidInstanceID(id); err != nil {
			return err
		}
		_, err := s.Instance(ctx, id)
		return err
	}
	return apierr.WithCode(apierr.InvalidInput, "InvalidID", "The ID '%s' is not valid", id)
}

// ResourceARN is the ARN authorization sees for a taggable resource ID.
func (s *Service) ResourceARN(id string) string {
	if strings.HasPrefix(id, "eice-") {
		return EndpointARN(s.region, s.account, id)
	}
	return InstanceARN(s.region, s.account, id)
}

// SystemTagPrefix starts the tags kaginashi shows for a host's inventory.
const SystemTagPrefix = "kaginashi:"

// SystemTags are the host's facts as its agent reported them, shown as
// read-only tags (EC2's DescribeInstances has no fields for them, and tags
// are what every EC2 client displays and filters on: tag:kaginashi:os-id).
// They are not stored as tags and cannot be set.
func SystemTags(in store.Instance) []store.Tag {
	var out []store.Tag
	add := func(k, v string) {
		if v == "" {
			return
		}
		if len(v) > 256 {
			v = v[:256]
		}
		out = append(out, store.Tag{Key: SystemTagPrefix + k, Value: v})
	}
	add("hostname", in.Hostname)
	add("os", in.OSPrettyName)
	add("os-id", in.OSID)
	add("os-version", in.OSVersion)
	add("kernel", in.Kernel)
	add("default-user", in.DefaultUser)
	if in.DefaultUser != "" {
		add("default-user-exists", strconv.FormatBool(in.DefaultUserExists))
	}
	add("agent-version", in.AgentVersion)
	add("sshd-version", in.SSHDVersion)
	if in.AgentVersion != "" {
		add("sshd-configured", strconv.FormatBool(in.SSHDConfigured))
		add("clock-skew-ms", strconv.FormatInt(in.ClockSkewMillis, 10))
	}
	if !in.LastSeen.IsZero() {
		add("last-seen", in.LastSeen.UTC().Format(time.RFC3339))
	}
	return out
}

// AllTags are an instance's own tags and its system tags.
func AllTags(in store.Instance) []store.Tag {
	return append(append([]store.Tag(nil), in.Tags...), SystemTags(in)...)
}

// CheckTags applies EC2's tag rules.
func CheckTags(tags []store.Tag) error {
	for _, t := range tags {
		switch {
		case t.Key == "" || len(t.Key) > 128:
			return apierr.WithCode(apierr.InvalidInput, "InvalidParameterValue", "Tag keys must be 1 to 128 characters")
		case len(t.Value) > 256:
			return apierr.WithCode(apierr.InvalidInput, "InvalidParameterValue", "Tag values must be at most 256 characters")
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return apierr.WithCode(apierr.InvalidInput, "InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
		case strings.HasPrefix(strings.ToLower(t.Key), SystemTagPrefix):
			return apierr.WithCode(apierr.InvalidInput, "InvalidParameterValue", "Tag keys starting with '%s' are reserved: they show what the host's agent reports", SystemTagPrefix)
		}
	}
	return nil
}

// CheckTagKeyCase refuses tags whose keys differ only in case from one
// another or from a tag the resource has (existing). EC2 itself allows
// Team and team side by side, but condition keys ignore case, so
// ec2:ResourceTag/Team would have to pick one of them — and whoever may
// add "team" would decide what a policy on Team sees. kaginashi chooses
// safety over that bit of EC2 compatibility (docs/SECURITY.md). The same
// key spelled the same way is no collision: CreateTags overwrites it. The
// rule is the store's (store.CheckTagKeyCase, which TagResource runs in
// its write), so both agree, also on pairs stored before it: either
// stored spelling may still be set.
func CheckTagKeyCase(existing, tags []store.Tag) error {
	keys := make([]string, len(existing))
	for i, t := range existing {
		keys[i] = t.Key
	}
	sort.Strings(keys)
	return tagKeyCaseError(store.CheckTagKeyCase("", keys, tags), tags)
}

// tagKeyCaseError is the API's answer to the store's *TagKeyCaseError
// (the same rule, run before authorization on the request alone, before
// tagging on each resource's tags, and by the store inside its write);
// other errors pass as they are.
func tagKeyCaseError(err error, tags []store.Tag) error {
	var tc *store.TagKeyCaseError
	if !errors.As(err, &tc) {
		return err
	}
	if slices.ContainsFunc(tags, func(t store.Tag) bool { return t.Key == tc.Existing }) {
		return apierr.WithCode(apierr.InvalidInput, "InvalidParameterValue",
			"Tag keys %q and %q differ only in case: condition keys such as ec2:ResourceTag/%s ignore case, so one resource cannot have both; use one spelling",
			truncate(tc.Existing, 128), truncate(tc.Key, 128), truncate(tc.Existing, 128))
	}
	return apierr.WithCode(apierr.InvalidInput, "InvalidParameterValue",
		"Tag key %q differs only in case from the resource's existing tag %q: condition keys such as ec2:ResourceTag/%s ignore case, so one resource cannot have both; use %q",
		truncate(tc.Key, 128), tc.Existing, tc.Existing, tc.Existing)
}

// ParseAddr reads an instance address as the API and the inventory keep
// it: an IP address without a zone, IPv4 unmapped from IPv6. Addresses
// are condition keys (ec2-instance-connect:privateIpAddress) and look-up
// keys, so one address has one spelling, and wildcards or names are none.
func ParseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// AmbiguousTagKeys are the keys, in lower case and sorted, that tags
// spell in more than one case (Team and team): stored before CreateTags
// refused such pairs (CheckTagKeyCase). Authorization leaves them out of
// the condition context (see the awsapi package's resourceTags).
func AmbiguousTagKeys(tags []store.Tag) []string {
	spelling := make(map[string]string, len(tags))
	var out []string
	for _, t := range tags {
		lk := strings.ToLower(t.Key)
		k, ok := spelling[lk]
		switch {
		case !ok:
			spelling[lk] = t.Key
		case k != t.Key && !slices.Contains(out, lk):
			out = append(out, lk)
		}
	}
	sort.Strings(out)
	return out
}

// ResourceTags are the stored tags of a taggable resource (an instance or
// the endpoint), none for one that does not exist: what authorization of
// tagging sees as ec2:ResourceTag/* and, for DeleteTags of every tag,
// aws:TagKeys.
func (s *Service) ResourceTags(ctx context.Context, id string) ([]store.Tag, error) {
	tags, err := s.store.ResourceTags(ctx, id)
	if err != nil {
		return nil, apierr.Wrap(err, "reading the tags of "+id)
	}
	return tags, nil
}

// CreateTags adds or overwrites tags on resources. A key that differs
// only in case from another in the request, or from a tag the resource
// has, is refused (CheckTagKeyCase) before any resource is tagged.
func (s *Service) CreateTags(ctx context.Context, ids []string, tags []store.Tag) error {
	if err := CheckTags(tags); err != nil {
		return err
	}
	if err := CheckTagKeyCase(nil, tags); err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.checkResource(ctx, id); err != nil {
			return err
		}
		cur, err := s.ResourceTags(ctx, id)
		if err != nil {
			return err
		}
		if err := CheckTagKeyCase(cur, tags); err != nil {
			return err
		}
	}
	for _, id := range ids {
		if err := s.store.TagResource(ctx, id, tags); err != nil {
			// The check above read the tags outside the store's write; the
			// store checks again inside it, and refuses the loser of a race
			// (Team and team at once) the same way.
			if errors.As(err, new(*store.TagKeyCaseError)) {
				return tagKeyCaseError(err, tags)
			}
			return apierr.Wrap(err, "tagging "+id)
		}
	}
	return nil
}

// DeleteTags removes tags from resources.
func (s *Service) DeleteTags(ctx context.Context, ids []string, tags []store.TagMatch) error {
	for _, id := range ids {
		if err := s.checkResource(ctx, id); err != nil {
			return err
		}
	}
	for _, id := range ids {
		if err := s.store.UntagResource(ctx, id, tags); err != nil {
			return apierr.Wrap(err, "untagging "+id)
		}
	}
	return nil
}

// TagDescription is one DescribeTags row.
type TagDescription struct {
	ResourceID   string
	ResourceType string // instance, instance-connect-endpoint
	Key, Value   string
}

// DescribeTags lists tags with EC2's filters: resource-id, resource-type,
// key, value.
func (s *Service) DescribeTags(ctx context.Context, filters []Filter) ([]TagDescription, error) {
	for _, f := range filters {
		switch f.Name {
		case "resource-id", "resource-type", "key", "value", "tag-key":
		default:
			if !strings.HasPrefix(f.Name, "tag:") {
				return nil, apierr.WithCode(apierr.InvalidInput, "InvalidParameterValue", "The filter '%s' is invalid", f.Name)
			}
		}
	}
	rts, err := s.store.ListResourceTags(ctx, nil)
	if err != nil {
		return nil, apierr.Wrap(err, "listing tags")
	}
	var out []TagDescription
	for _, rt := range rts {
		d := TagDescription{ResourceID: rt.ResourceID, ResourceType: "instance", Key: rt.Key, Value: rt.Value}
		if strings.HasPrefix(rt.ResourceID, "eice-") {
			d.ResourceType = "instance-connect-endpoint"
		}
		if tagMatches(d, filters) {
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].ResourceID != out[j].ResourceID {
			return out[i].ResourceID < out[j].ResourceID
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

// PageTags cuts DescribeTags' sorted rows into pages of maxResults (0:
// all). The token is the last row's resource ID and key, so a page stays
// right when tags change between calls (rows are neither repeated nor
// skipped, except ones deleted meanwhile).
func PageTags(rows []TagDescription, maxResults int, nextToken string) ([]TagDescription, string, error) {
	if nextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(nextToken)
		id, key, ok := strings.Cut(string(b), "\n")
		if err != nil || !ok || id == "" {
			return nil, "", apierr.WithCode(apierr.InvalidInput, "InvalidParameterValue", "Invalid NextToken")
		}
		i := sort.Search(len(rows), func(i int) bool {
			r := rows[i]
			return r.ResourceID > id || (r.ResourceID == id && r.Key > key)
		})
		rows = rows[i:]
	}
	if maxResults <= 0 || len(rows) <= maxResults {
		return rows, "", nil
	}
	last := rows[maxResults-1]
	return rows[:maxResults], base64.RawURLEncoding.EncodeToString([]byte(last.ResourceID + "\n" + last.Key)), nil
}

func tagMatches(d TagDescription, filters []Filter) bool {
	for _, f := range filters {
		var c string
		switch f.Name {
		case "resource-id":
			c = d.ResourceID
		case "resource-type":
			c = d.ResourceType
		case "key", "tag-key":
			c = d.Key
		case "value":
			c = d.Value
		default:
			if strings.TrimPrefix(f.Name, "tag:") != d.Key {
				return false
			}
			c = d.Value
		}
		ok := false
		for _, v := range f.Values {
			if wildcard(v, c) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
