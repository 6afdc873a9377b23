package sigv4

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// The SDK signer is handed a request rebuilt from what the client signed —
// method, path, canonical query, exactly the signed headers — and signs it
// with the same time, scope and payload hash; its signature is the expected
// one. It cannot reproduce every request a client may sign, because it adds
// and skips headers on its own:
//
//   - It always signs host, and content-length only when ContentLength > 0,
//     taken from the field, never from the header.
//   - Header form: it sets and signs X-Amz-Date itself, so it cannot
//     reproduce a request dated by the Date header (botocore does that when
//     the caller sets Date), nor one that did not sign x-amz-date.
//   - It never signs Authorization, User-Agent, X-Amzn-Trace-Id, Expect or
//     Transfer-Encoding (aws/signer/internal/v4 IgnoredHeaders; the list
//     cannot be changed through SignerOptions), while other clients may
//     sign them.
//   - It leaves out headers that are absent, while a client that signed a
//     header the request lacks signed "name:" with an empty value.
//   - It takes the path from URL.Opaque ("//host/path"), so a target that
//     does not start with '/' ("*") comes out as "/".
//
// For those requests Verify builds the canonical request by hand
// (appendCanonicalRequest); sdkCanSign tells which way to go. As a second
// guard, sdkSignature checks that the SDK signed exactly the client's
// header list and reports failure otherwise, and Verify then falls back too.
// FuzzSDKAgreement checks that both ways agree wherever the SDK is used.
//
// Options: DisableHeaderHoisting keeps PresignHTTP from moving signed
// X-Amz-* headers into the query; DisableURIPathEscaping stays off (it is
// for S3 only: every other service double-encodes the path).
var sdkIgnored = map[string]bool{
	"authorization":     true,
	"user-agent":        true,
	"x-amzn-trace-id":   true,
	"expect":            true,
	"transfer-encoding": true,
}

// sdkCanSign reports whether the SDK signer reproduces the canonical
// request of in; contentLength is what to put in the rebuilt request's
// ContentLength field.
func sdkCanSign(in *canonInput) (contentLength int64, ok bool) {
	p := in.p
	if !p.presigned && p.dateHeader != "x-amz-date" {
		return 0, false
	}
	dateSigned := false
	for _, h := range in.headers {
		switch {
		case h.name == "host":
		case sdkIgnored[h.name]:
			return 0, false
		case len(h.values) == 0:
			return 0, false
		case h.name == "content-length":
			if len(h.values) != 1 {
				return 0, false
			}
			n, err := strconv.ParseInt(h.values[0], 10, 64)
			if err != nil || n <= 0 || strconv.FormatInt(n, 10) != h.values[0] {
				return 0, false
			}
			contentLength = n
		case h.name == "x-amz-date":
			dateSigned = true
		}
	}
	if !p.presigned && !dateSigned {
		return 0, false
	}
	return contentLength, true
}

// sdkSignature signs the rebuilt request with the SDK and returns the
// signature it computed. ok is false if the SDK signed a different header
// list than the client did — a canonicalization sdkCanSign did not foresee;
// the caller then falls back to the hand-built canonical request rather
// than trusting either.
func sdkSignature(ctx context.Context, signers *signerCache, in *canonInput, contentLength int64, secret, path, payloadHash string) (sig [32]byte, ok bool) {
	p := in.p
	if path != "" && path[0] != '/' {
		// "*" (OPTIONS *): the SDK finds no path in the Opaque form and signs
		// "/", while the client would have signed the target it sent.
		return sig, false
	}
	req := &http.Request{
		Method: in.method,
		// The SDK takes the path from Opaque ("//host/path") as is and escapes
		// it once more, which is what the client did with the path it sent.
		URL:           &url.URL{Opaque: "//h" + path, RawQuery: in.query},
		Header:        make(http.Header, len(in.headers)),
		ContentLength: contentLength,
	}
	for _, h := range in.headers {
		switch h.name {
		case "host":
			req.Host = h.values[0]
		case "content-length":
		default:
			// Copies: SignHTTP writes X-Amz-Date into the slice it finds
			// (append(h[:0], date)), which would write into r.Header.
			req.Header[textproto.CanonicalMIMEHeaderKey(h.name)] = slices.Clone(h.values)
		}
	}
	// No session token in the credentials: a signed X-Amz-Security-Token
	// header or query parameter is already in the request as sent.
	creds := aws.Credentials{AccessKeyID: p.accessKeyID, SecretAccessKey: secret}
	// One signer per access key and secret (signerCache): the SDK's
	// derived-key cache is keyed by access key ID, region, service and day
	// but not by the secret.
	signer := signers.get(p.accessKeyID, secret)
	var got, gotHeaders string
	if p.presigned {
		u, signed, err := signer.PresignHTTP(ctx, creds, req, payloadHash, p.service, p.region, p.signedAt)
		if err != nil {
			return sig, false
		}
		const k = "&" + qSignature + "="
		i := strings.LastIndex(u, k)
		if i < 0 {
			return sig, false
		}
		got = u[i+len(k):]
		if len(signed) != len(p.signedHeaders) {
			return sig, false
		}
		for _, name := range p.signedHeaders {
			if _, ok := signed[textproto.CanonicalMIMEHeaderKey(name)]; !ok {
				return sig, false
			}
		}
		gotHeaders = p.signedList
	} else {
		if err := signer.SignHTTP(ctx, creds, req, payloadHash, p.service, p.region, p.signedAt); err != nil {
			return sig, false
		}
		a := req.Header.Get("Authorization")
		const sh, sg = "SignedHeaders=", ", Signature="
		i, j := strings.Index(a, sh), strings.LastIndex(a, sg)
		if i < 0 || j < i {
			return sig, false
		}
		gotHeaders, got = a[i+len(sh):j], a[j+len(sg):]
	}
	if gotHeaders != p.signedList || len(got) != 64 {
		return sig, false
	}
	if _, err := hex.Decode(sig[:], []byte(got)); err != nil {
		return sig, false
	}
	return sig, true
}
