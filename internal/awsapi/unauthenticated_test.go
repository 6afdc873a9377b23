package awsapi

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/internal/audit"
	"github.com/kaginashi/kaginashi/internal/clientip"
	"github.com/kaginashi/kaginashi/internal/ratelimit"
	"github.com/kaginashi/kaginashi/internal/store"
	"github.com/kaginashi/kaginashi/internal/store/sqlite"
)

// refusingAuth refuses every request: with MissingAuth, or with err when
// set.
type refusingAuth struct{ err error }

func (a refusingAuth) Authenticate(context.Context, *http.Request, []byte) (*Auth, error) {
	if a.err != nil {
		return nil, a.err
	}
	return nil, apierr.New(apierr.MissingAuth, "Request is missing Authentication Token")
}

// countingMetrics counts APICall by code.
type countingMetrics struct {
	mu    sync.Mutex
	codes map[string]int
}

func (m *countingMetrics) APICall(_, code, _ string, _ bool, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.codes[code]++
}
func (m *countingMetrics) TunnelClosed(int64, int64) {}

// TestUnauthenticatedAuditBudget: on a real SQLite store, unsigned calls
// from one source beyond its budget are answered as the others but not
// audited one by one; another source has its own budget; the source is
// the client as the trusted proxy says; a server error is audited
// whatever the budget; the flush's summary counts what was left out.
func TestUnauthenticatedAuditBudget(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.DiscardHandler)
	w := audit.NewWriter(st, nil, log)
	t.Cleanup(func() { w.Close() })
	now := time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	u := &audit.Unauthenticated{Sampler: ratelimit.NewSampler(1, 3, 0, clock), Audit: w, Now: clock, Log: log}
	m := &countingMetrics{codes: map[string]int{}}
	proxy := netip.MustParsePrefix("10.9.9.9/32")
	auth := &refusingAuth{}
	h := New(Config{Region: "us-east-1", Account: "123456789012", Proxies: clientip.New([]netip.Prefix{proxy})},
		Deps{Auth: auth, Audit: w, Log: log, Now: clock, Metrics: m, Unauthenticated: u})

	send := func(client string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("Action=GetCallerIdentity&Version=2011-06-15"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = "10.9.9.9:5555"
		r.Header.Set("X-Forwarded-For", client)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	events := func() map[string]int {
		evs, _, err := st.LookupAudit(t.Context(), store.AuditFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		by := map[string]int{}
		for _, e := range evs {
			var r struct {
				Name string `json:"eventName"`
				IP   string `json:"sourceIPAddress"`
				Code string `json:"errorCode"`
			}
			if err := json.Unmarshal(e.Record, &r); err != nil {
				t.Fatal(err)
			}
			by[r.Name+" "+r.IP+" "+r.Code]++
		}
		return by
	}

	var first string
	for i := range 10 {
		rec := send("192.0.2.7")
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "<Code>MissingAuthenticationToken</Code>") {
			t.Fatalf("call %d answered %d %s, want 403 MissingAuthenticationToken", i, rec.Code, rec.Body)
		}
		// The same answer within and beyond the budget (but the request ID).
		body := strings.Replace(rec.Body.String(), rec.Header().Get("X-Amzn-RequestId"), "ID", 1)
		if first == "" {
			first = body
		} else if body != first {
			t.Fatalf("call %d answered\n%s\nwant as the first\n%s", i, body, first)
		}
	}
	send("198.51.100.1")
	got := events()
	if n := got["GetCallerIdentity 192.0.2.7 MissingAuthenticationToken"]; n != 3 {
		t.Fatalf("%d of 192.0.2.7's calls audited, want its burst of 3: %v", n, got)
	}
	if n := got["GetCallerIdentity 198.51.100.1 MissingAuthenticationToken"]; n != 1 {
		t.Fatalf("another source's call not audited: %v", got)
	}
	if m.codes["MissingAuthenticationToken"] != 11 {
		t.Errorf("metrics saw %d calls, want all 11", m.codes["MissingAuthenticationToken"])
	}

	// A server error is not the caller's doing: always audited.
	auth.err = apierr.Wrap(errors.New("store down"), "looking up the key")
	if rec := send("192.0.2.7"); rec.Code != http.StatusInternalServerError {
		t.Fatalf("answered %d, want 500", rec.Code)
	}
	if n := events()["GetCallerIdentity 192.0.2.7 InternalFailure"]; n != 1 {
		t.Fatalf("the server error was not audited: %v", events())
	}

	if err := u.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got = events()
	if n := got[audit.SuppressedEventName+" 192.0.2.7 "]; n != 1 {
		t.Fatalf("no summary for 192.0.2.7: %v", got)
	}
	evs, _, _ := st.LookupAudit(t.Context(), store.AuditFilter{Limit: 1})
	var sum struct {
		Resp struct {
			Count int            `json:"suppressedCount"`
			Codes map[string]int `json:"errorCodes"`
		} `json:"responseElements"`
	}
	if err := json.Unmarshal(evs[0].Record, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Resp.Count != 7 || sum.Resp.Codes["MissingAuthenticationToken"] != 7 {
		t.Fatalf("summary %+v, want 7 MissingAuthenticationToken", sum.Resp)
	}
}

// TestMethodNotAllowed: other methods on / get 405 with Allow, in the
// error shape of the API the headers name, else a generic one.
func TestMethodNotAllowed(t *testing.T) {
	h := New(Config{Region: "us-east-1", Account: "123456789012", Proxies: clientip.New(nil)}, Deps{Log: slog.New(slog.DiscardHandler)})
	for _, tc := range []struct {
		name, method string
		hdr          map[string]string
		ct, want     string
	}{
		{"sts scope", http.MethodPut, map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00"},
			"text/xml", `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>MethodNotAllowed</Code>`},
		{"form", http.MethodDelete, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "text/xml", `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>MethodNotAllowed</Code>`},
		{"ec2 version", http.MethodPatch, map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/us-east-1/ec2/aws4_request"},
			"text/xml;charset=UTF-8", `<Response><Errors><Error><Code>MethodNotAllowed</Code>`},
		{"eic target", http.MethodOptions, map[string]string{"X-Amz-Target": "AWSEC2InstanceConnectService.SendSSHPublicKey", "Content-Type": "application/x-amz-json-1.1"},
			"application/x-amz-json-1.1", `{"Message":"The HTTP method OPTIONS is not allowed`},
		{"unknown", http.MethodPut, nil, "text/xml", `<Error><Code>MethodNotAllowed</Code><Message>The HTTP method PUT is not allowed on /`},
		{"unknown json", http.MethodPut, map[string]string{"Accept": "application/json"}, "application/json", `{"Message":"The HTTP method PUT is not allowed on /`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/", strings.NewReader("x"))
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeMethodNotAllowed(rec, r)
			if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != AllowedMethods || rec.Header().Get("Content-Type") != tc.ct {
				t.Fatalf("answered %d, Allow %q, Content-Type %q, want 405, %q, %q", rec.Code, rec.Header().Get("Allow"), rec.Header().Get("Content-Type"), AllowedMethods, tc.ct)
			}
			if !strings.Contains(rec.Body.String(), tc.want) || rec.Header().Get("X-Amzn-RequestId") == "" {
				t.Fatalf("body\n%s\nwant it to hold %s (and a request ID header)", rec.Body, tc.want)
			}
			if strings.HasPrefix(tc.ct, "text/xml") {
				if err := xml.Unmarshal(rec.Body.Bytes(), new(struct{})); err != nil {
					t.Fatalf("not XML: %v", err)
				}
			} else if !json.Valid(rec.Body.Bytes()) {
				t.Fatal("not JSON")
			}
		})
	}
}
