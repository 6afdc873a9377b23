package inventory

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
)

func newService(t *testing.T) (*Service, store.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := New(ctx, st, "123456789012", "ap-northeast-1", "https://kaginashi.example:8443", NewEndpointID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i, in := range []store.Instance{
		{ID: "i-0000000000000000a", State: store.StateRunning, PrivateIP: "10.0.0.1", Tags: []store.Tag{{Key: "Name", Value: "web-1"}, {Key: "team", Value: "web"}}},
		{ID: "i-0000000000000000b", State: store.StateRunning, PrivateIP: "10.0.0.2", Tags: []store.Tag{{Key: "Name", Value: "web-2"}, {Key: "team", Value: "web"}}},
		{ID: "i-0000000000000000c", State: store.StateStopped, PrivateIP: "10.0.1.1", Tags: []store.Tag{{Key: "Name", Value: "db-1"}}},
	} {
		in.LaunchTime, in.LastSeen = now.Add(time.Duration(i)*time.Second), now
		if err := st.PutInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	return s, st
}

func ids(p Page) []string {
	var out []string
	for _, in := range p.Instances {
		out = append(out, in.ID)
	}
	return out
}

func TestDescribe(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		ids     []string
		filters []Filter
		want    int
	}{
		{"all", nil, nil, 3},
		{"by id", []string{"i-0000000000000000b"}, nil, 1},
		{"running", nil, []Filter{{"instance-state-name", []string{"running"}}}, 2},
		{"tag value, OR of values", nil, []Filter{{"tag:Name", []string{"web-1", "db-1"}}}, 2},
		{"tag wildcard", nil, []Filter{{"tag:Name", []string{"web-*"}}}, 2},
		{"tag key", nil, []Filter{{"tag-key", []string{"team"}}}, 2},
		{"AND of filters", nil, []Filter{{"tag:team", []string{"web"}}, {"private-ip-address", []string{"10.0.0.2"}}}, 1},
		{"ip wildcard ?", nil, []Filter{{"private-ip-address", []string{"10.0.?.1"}}}, 2},
		{"state code", nil, []Filter{{"instance-state-code", []string{"80"}}}, 1},
		{"no match", nil, []Filter{{"tag:Name", []string{"nope"}}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.Describe(ctx, tt.ids, tt.filters, 0, "")
			if err != nil || len(p.Instances) != tt.want {
				t.Fatalf("got %v %v, want %d", ids(p), err, tt.want)
			}
		})
	}
	// Paging.
	p1, err := s.Describe(ctx, nil, nil, 2, "")
	if err != nil || len(p1.Instances) != 2 || p1.NextToken == "" {
		t.Fatalf("page 1: %v %v", ids(p1), err)
	}
	p2, err := s.Describe(ctx, nil, nil, 2, p1.NextToken)
	if err != nil || len(p2.Instances) != 1 || p2.NextToken != "" || p2.Instances[0].ID != "i-0000000000000000c" {
		t.Fatalf("page 2: %v %v", ids(p2), err)
	}
	// Errors, with EC2's codes.
	for _, tt := range []struct {
		ids     []string
		filters []Filter
		max     int
		token   string
		code    string
	}{
		{ids: []string{"i-0000000000000000f"}, code: "InvalidInstanceID.NotFound"},
		{ids: []string{"i-XYZ"}, code: "InvalidInstanceID.Malformed"},
		{filters: []Filter{{"bogus", []string{"x"}}}, code: "InvalidParameterValue"},
		{ids: []string{"i-0000000000000000a"}, max: 5, code: "InvalidParameterCombination"},
		{token: "!!", code: "InvalidParameterValue"},
	} {
		_, err := s.Describe(ctx, tt.ids, tt.filters, tt.max, tt.token)
		if apierr.As(err).Code != tt.code {
			t.Errorf("%+v: %v, want %s", tt, err, tt.code)
		}
	}
}

func TestTagsAndEndpoint(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	e, err := s.Endpoint(ctx)
	if err != nil || !regexp.MustCompile(`^eice-[0-9a-f]{17}$`).MatchString(e.ID) || e.DNSName != "kaginashi.example:8443" ||
		e.ARN != "arn:aws:ec2:ap-northeast-1:123456789012:instance-connect-endpoint/"+e.ID {
		t.Fatalf("endpoint %+v %v", e, err)
	}
	if err := s.CreateTags(ctx, []string{"i-0000000000000000c", e.ID}, []store.Tag{{Key: "env", Value: "prod"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTags(ctx, []string{"i-0000000000000000f"}, []store.Tag{{Key: "env", Value: "x"}}); apierr.As(err).Code != "InvalidInstanceID.NotFound" {
		t.Errorf("tagging a missing instance: %v", err)
	}
	if err := s.CreateTags(ctx, []string{"i-0000000000000000a"}, []store.Tag{{Key: "aws:x", Value: "x"}}); apierr.KindOf(err) != apierr.InvalidInput {
		t.Errorf("reserved tag key: %v", err)
	}
	tags, err := s.DescribeTags(ctx, []Filter{{"key", []string{"env"}}})
	if err != nil || len(tags) != 2 {
		t.Fatalf("DescribeTags: %+v %v", tags, err)
	}
	if err := s.DeleteTags(ctx, []string{"i-0000000000000000c"}, []store.TagMatch{{Key: "env", Value: "dev", MatchValue: true}}); err != nil {
		t.Fatal(err)
	}
	if tags, _ := s.DescribeTags(ctx, []Filter{{"resource-id", []string{"i-0000000000000000c"}}, {"key", []string{"env"}}}); len(tags) != 1 {
		t.Errorf("DeleteTags with another value removed the tag: %+v", tags)
	}
	s.DeleteTags(ctx, []string{"i-0000000000000000c"}, []store.TagMatch{{Key: "env"}})
	if tags, _ := s.DescribeTags(ctx, []Filter{{"resource-type", []string{"instance"}}, {"key", []string{"env"}}}); len(tags) != 0 {
		t.Errorf("DeleteTags by key kept: %+v", tags)
	}
}

func TestWildcard(t *testing.T) {
	for _, tt := range []struct {
		p, s string
		want bool
	}{
		{"web-*", "web-1", true}, {"web-?", "web-12", false}, {`a\*b`, "a*b", true}, {`a\*b`, "axb", false},
		{"*", "", true}, {"exact", "exact", true}, {"exact", "Exact", false}, {"a.b", "axb", false},
	} {
		if got := wildcard(tt.p, tt.s); got != tt.want {
			t.Errorf("wildcard(%q, %q) = %v", tt.p, tt.s, got)
		}
	}
}

func TestPageTags(t *testing.T) {
	var rows []TagDescription
	for _, id := range []string{"i-00000000000000001", "i-00000000000000002"} {
		for _, k := range []string{"Name", "env", "team"} {
			rows = append(rows, TagDescription{ResourceID: id, ResourceType: "instance", Key: k, Value: "v"})
		}
	}
	var got []TagDescription
	token, pages := "", 0
	for {
		page, next, err := PageTags(rows, 4, token)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 4 {
			t.Fatalf("page of %d rows, want at most 4", len(page))
		}
		got = append(got, page...)
		pages++
		if next == "" {
			break
		}
		token = next
	}
	if pages != 2 || len(got) != len(rows) {
		t.Fatalf("%d pages, %d rows; want 2 pages, %d rows", pages, len(got), len(rows))
	}
	for i := range rows {
		if got[i] != rows[i] {
			t.Fatalf("row %d = %+v, want %+v", i, got[i], rows[i])
		}
	}
	if all, next, _ := PageTags(rows, 0, ""); len(all) != len(rows) || next != "" {
		t.Fatalf("maxResults 0: %d rows, token %q", len(all), next)
	}
	for _, bad := range []string{"!!", "bm90b2tlbg"} {
		if _, _, err := PageTags(rows, 4, bad); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
}
