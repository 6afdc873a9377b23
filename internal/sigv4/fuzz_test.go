package sigv4

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzParseAuthorization rewrites the Authorization header of a genuine
// SDK-signed request. Nothing may panic; a rejection must be a printable
// *Error; and the request may only verify if the header says what the
// genuine one says (components reordered or spaced differently, nothing
// more).
func FuzzParseAuthorization(f *testing.F) {
	base, body := signedJSON(f, testCreds, "ec2-instance-connect", testRegion, nil, nil)
	genuine := base.Header.Get("Authorization")
	want, e := parseAuthorization(genuine)
	if e != nil {
		f.Fatal(e)
	}
	cred := "Credential=" + want.credential
	sh := "SignedHeaders=" + want.signedHeaders
	sig := "Signature=" + want.signature
	for _, s := range append([]string{
		genuine,
		"AWS4-HMAC-SHA256 " + sig + "," + cred + "," + sh,
		"AWS4-HMAC-SHA256   " + cred + " ,  " + sh + " , " + sig + " ",
		"AWS4-HMAC-SHA256 " + cred + ", " + sh + ", " + strings.ToUpper(sig),
		"AWS4-HMAC-SHA256 " + cred + ", " + sh + ";x-extra, " + sig,
		"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host, " + sig,
		"AWS4-HMAC-SHA256 " + strings.Replace(cred, "us-east-1", "US-EAST-1", 1) + ", " + sh + ", " + sig,
	}, hostileAuthorizations...) {
		f.Add(s)
	}
	v, _ := newVerifier(f, testTime, false)
	vm, _ := newVerifier(f, testTime, true)
	f.Fuzz(func(t *testing.T, h string) {
		fields, perr := parseAuthorization(h)
		r := base.Clone(context.Background())
		r.Header["Authorization"] = []string{h}
		for _, v := range []*Verifier{v, vm} {
			id, err := v.Verify(context.Background(), r, body)
			if err != nil {
				if KindOf(err) == 0 || id != nil {
					t.Fatalf("Verify(%q) = %+v, %v", h, id, err)
				}
				checkMessage(t, err)
				continue
			}
			if perr != nil || fields != want {
				t.Fatalf("accepted Authorization %q, which does not say what %q says", h, genuine)
			}
		}
	})
}

// FuzzParsePresigned replaces the query of a genuine presigned openTunnel
// URL. Nothing may panic; the URL may only verify if its query decodes to
// exactly the genuine parameters (in any order and percent-encoding).
func FuzzParsePresigned(f *testing.F) {
	u := tunnelURL(f, "60")
	_, genuine, _ := strings.Cut(u, "?")
	want, ok := decodePairs(genuine)
	if !ok {
		f.Fatal("cannot decode", genuine)
	}
	f.Add(genuine)
	f.Add(strings.ReplaceAll(genuine, "%2F", "%2f"))
	f.Add(strings.ReplaceAll(genuine, "-", "%2D"))
	f.Add(genuine + "&")
	f.Add("&" + strings.ReplaceAll(genuine, "&", "&&"))
	f.Add(genuine + "&extra=1")
	f.Add(strings.Replace(genuine, "X-Amz-Expires=60", "X-Amz-Expires=600", 1))
	f.Add(strings.Replace(genuine, "remotePort=22", "remotePort=22&remotePort=22", 1))
	f.Add(strings.Replace(genuine, "remotePort=22", "remotePort=2%32", 1))
	f.Add(strings.Replace(genuine, "remotePort=22", "remotePort=+22", 1))
	f.Add(strings.Replace(genuine, "X-Amz-Algorithm", "x-amz-algorithm", 1))
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=%zz")
	f.Add("X-Amz-Credential=%00%ff;&X-Amz-Algorithm")
	v, _ := newVerifier(f, testTime, false)
	vm, _ := newVerifier(f, testTime, true)
	f.Fuzz(func(t *testing.T, raw string) {
		r := &http.Request{
			Method:     "GET",
			URL:        &url.URL{Path: "/openTunnel", RawQuery: raw},
			Host:       eiceHost,
			RequestURI: "/openTunnel?" + raw,
			Header:     http.Header{"Upgrade": {"websocket"}},
		}
		for _, v := range []*Verifier{v, vm} {
			id, err := v.Verify(context.Background(), r, nil)
			if err != nil {
				if KindOf(err) == 0 || id != nil {
					t.Fatalf("Verify(%q) = %+v, %v", raw, id, err)
				}
				checkMessage(t, err)
				continue
			}
			got, ok := decodePairs(raw)
			if !ok || !slices.Equal(got, want) {
				t.Fatalf("accepted query %q, which does not decode to %q", raw, genuine)
			}
		}
	})
}

// decodePairs decodes a query into sorted "key=value" strings, the way
// url.QueryUnescape reads form encoding; it is independent of parseQuery.
func decodePairs(q string) ([]string, bool) {
	var out []string
	for _, p := range strings.Split(q, "&") {
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, false
		}
		out = append(out, dk+"="+dv)
	}
	slices.Sort(out)
	return out, true
}

// FuzzSDKAgreement checks that the hand-built canonical request and the
// SDK signer agree on every request the SDK signer is used for: arbitrary
// method, path, query and one extra signed header, in both forms, read
// from the wire by net/http as a server would.
func FuzzSDKAgreement(f *testing.F) {
	f.Add("POST", "/", "Action=GetUser&Version=2010-05-08", "Content-Type", "application/x-www-form-urlencoded; charset=utf-8", false)
	f.Add("GET", "/openTunnel", "remotePort=22&privateIpAddress=10.0.1.23", "X-Custom", "  a   b \t c  ", true)
	f.Add("GET", "/a%20b/%2F/ü/./..//", "a+b=c+d&%7E=~&e&=f", "X-Multi", "x,  y", false)
	f.Add("PUT", "/x", "a=%zz", "Content-Length", "12", false)
	f.Add("GET", "/", "", "x-amz-date", "20261128T100000Z", true)
	f.Add("OPTIONS", "*", "", "x-a", "b", false)
	f.Add("GET", "http://other.example/abs/path", "q=1", "x-a", "b", false)
	f.Fuzz(func(t *testing.T, method, path, query, hname, hvalue string, presign bool) {
		hname = strings.ToLower(hname)
		if hname == "" || hname == "host" || !allBytes(hname, isLowerTokenByte) || len(hname) > maxHeaderNameLen {
			return
		}
		names := []string{"host", hname}
		if !presign {
			names = append(names, "x-amz-date")
		}
		slices.Sort(names)
		names = slices.Compact(names)
		signed := strings.Join(names, ";")
		const cred = testAKID + "/20261128/us-east-1/ec2/aws4_request"
		sig := strings.Repeat("0", 64)
		target := path
		if query != "" || presign {
			target += "?" + query
		}
		var head strings.Builder
		if presign {
			if query != "" {
				target += "&"
			}
			target += "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + url.QueryEscape(cred) +
				"&X-Amz-Date=20261128T100000Z&X-Amz-SignedHeaders=" + url.QueryEscape(signed) + "&X-Amz-Signature=" + sig
		} else {
			head.WriteString("Authorization: " + authWith(cred, signed, sig) + "\r\n")
			if hname != "x-amz-date" {
				head.WriteString("X-Amz-Date: 20261128T100000Z\r\n")
			}
		}
		head.WriteString(hname + ": " + hvalue + "\r\n")
		wire := method + " " + target + " HTTP/1.1\r\nHost: example.com:8443\r\n" + head.String() + "\r\n"
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(wire)))
		if err != nil {
			return
		}
		p, params, e := parseRequest(r)
		if e != nil || p.credDate != p.amzDate[:8] { // Verify refuses the latter (WrongScope)
			return
		}
		hs, e := gatherHeaders(r, p.signedHeaders)
		if e != nil {
			return
		}
		in := &canonInput{method: r.Method, query: canonicalQuery(params, p.presigned), headers: hs, p: p}
		cl, ok := sdkCanSign(in)
		if !ok {
			return
		}
		key := signingKey(testSecret, p.credDate, p.region, p.service)
		for _, path := range []string{wirePath(r), removeDotSegments(wirePath(r))} {
			for _, ph := range []string{hexSHA256(nil), unsignedPayload} {
				sdk, ok := sdkSignature(context.Background(), nil, in, cl, testSecret, path, ph)
				if !ok {
					if path != "" && path[0] != '/' {
						continue
					}
					t.Fatalf("the SDK signer signed other headers than %q for %q", signed, wire)
				}
				manual, _ := manualSignature(nil, in, key, path, ph)
				if sdk != manual {
					cr := appendCanonicalRequest(nil, in, path, ph)
					t.Fatalf("SDK and hand-built signatures differ for %q; hand-built canonical request:\n%s", wire, cr)
				}
			}
		}
	})
}
