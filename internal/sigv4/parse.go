package sigv4

import (
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

const (
	algorithm   = "AWS4-HMAC-SHA256"
	terminator  = "aws4_request"
	amzDateForm = "20060102T150405Z"

	unsignedPayload = "UNSIGNED-PAYLOAD"

	// DefaultPresignExpiry is how long a presigned URL without X-Amz-Expires
	// stays valid after its X-Amz-Date. The Go SDK's PresignHTTP does not set
	// X-Amz-Expires unless its caller adds it (Teleport's EICE client does
	// not), and such URLs work against AWS, so a missing X-Amz-Expires must
	// be accepted; five minutes matches the header form's clock-skew window
	// and is ample for a URL that is used right after it is made (the AWS CLI
	// uses 60 s for EICE).
	DefaultPresignExpiry = 5 * time.Minute
	// MaxPresignExpiry bounds X-Amz-Expires, as AWS does: seven days.
	MaxPresignExpiry = 7 * 24 * time.Hour

	// Bounds on what a client may send; anything beyond is Malformed.
	maxAuthorizationLen    = 8 << 10
	maxSignedHeaders       = 64
	maxHeaderNameLen       = 128
	maxCanonicalHeadersLen = 64 << 10
	maxQueryLen            = 64 << 10
	maxQueryParams         = 1000
	maxPathLen             = 8 << 10
	maxAccessKeyIDLen      = 128
	maxScopePartLen        = 64
	maxSessionTokenLen     = 16 << 10
	maxDateHeaderLen       = 64
)

// Presigned-URL query parameter names (case-sensitive, as on AWS).
const (
	qAlgorithm     = "X-Amz-Algorithm"
	qCredential    = "X-Amz-Credential"
	qDate          = "X-Amz-Date"
	qExpires       = "X-Amz-Expires"
	qSignedHeaders = "X-Amz-SignedHeaders"
	qSignature     = "X-Amz-Signature"
	qSecurityToken = "X-Amz-Security-Token"
	qContentSHA256 = "X-Amz-Content-Sha256"
)

// parsed is everything Verify extracts from a request before it looks the
// key up.
type parsed struct {
	presigned     bool
	accessKeyID   string
	credDate      string // YYYYMMDD from the credential scope
	region        string
	service       string
	signedHeaders []string // lower case, strictly ascending, includes "host"
	signedList    string   // the same joined with ';', as sent
	signature     [32]byte
	signedAt      time.Time
	amzDate       string // signedAt as YYYYMMDDTHHMMSSZ, for the string to sign
	dateHeader    string // header form: "x-amz-date" or "date", whichever gave signedAt
	expires       time.Duration
	sessionToken  string
	contentSHA256 string // the x-amz-content-sha256 value, "" if absent
	query         string // the canonical query string
}

// authFields are the three components of an Authorization header.
type authFields struct {
	credential, signedHeaders, signature string
}

// parseAuthorization splits "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…". Components may come in any order, separated by commas with
// optional spaces (botocore and the Go SDK write ", ").
func parseAuthorization(h string) (authFields, *Error) {
	var f authFields
	if len(h) > maxAuthorizationLen {
		return f, malformed("The Authorization header is longer than %d bytes", maxAuthorizationLen)
	}
	h = strings.Trim(h, " \t")
	if h == "" {
		return f, malformed("The Authorization header is empty")
	}
	alg, rest, _ := strings.Cut(h, " ")
	if alg != algorithm {
		return f, newErr(UnsupportedAlgorithm, "Unsupported authorization type %s; only %s (Signature Version 4) is supported", quote(alg), algorithm)
	}
	rest = strings.TrimLeft(rest, " ")
	var seen [3]bool
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, ",")
		part = strings.Trim(part, " ")
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return f, malformed("%s not a valid key=value pair (missing equal-sign) in Authorization header", quote(part))
		}
		var dst *string
		var i int
		switch name {
		case "Credential":
			dst, i = &f.credential, 0
		case "SignedHeaders":
			dst, i = &f.signedHeaders, 1
		case "Signature":
			dst, i = &f.signature, 2
		default:
			return f, malformed("Unknown component %s in Authorization header; expected Credential, SignedHeaders and Signature", quote(name))
		}
		if seen[i] {
			return f, malformed("Authorization header has the %s component twice", name)
		}
		seen[i] = true
		*dst = val
	}
	var missing []string
	for i, name := range [...]string{"Credential", "SignedHeaders", "Signature"} {
		if !seen[i] {
			missing = append(missing, "Authorization header requires '"+name+"' parameter.")
		}
	}
	if missing != nil {
		return f, malformed("%s", strings.Join(missing, " "))
	}
	return f, nil
}

// parseCredential splits AKID/YYYYMMDD/REGION/SERVICE/aws4_request. Region
// and service are only checked for shape here; whether they are accepted is
// a WrongScope question for the Verifier.
func (p *parsed) parseCredential(c string) *Error {
	parts := strings.Split(c, "/")
	if len(parts) != 5 {
		return malformed("Credential %s must have the form ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request", quote(c))
	}
	akid, date, region, service, term := parts[0], parts[1], parts[2], parts[3], parts[4]
	if akid == "" || len(akid) > maxAccessKeyIDLen || !allBytes(akid, isKeyIDByte) {
		return malformed("The access key ID in Credential %s is malformed", quote(c))
	}
	if _, ok := parseYMD(date); !ok {
		return malformed("The date in Credential %s is not a valid YYYYMMDD date", quote(c))
	}
	if region == "" || len(region) > maxScopePartLen || !allBytes(region, isScopeByte) {
		return malformed("The region in Credential %s is malformed", quote(c))
	}
	if service == "" || len(service) > maxScopePartLen || !allBytes(service, isScopeByte) {
		return malformed("The service in Credential %s is malformed", quote(c))
	}
	if term != terminator {
		return malformed("Credential should be scoped with a valid terminator: 'aws4_request', not %s.", quote(term))
	}
	p.accessKeyID, p.credDate, p.region, p.service = akid, date, region, service
	return nil
}

// parseSignedHeaders checks "content-type;host;x-amz-date": lower-case
// header names, strictly ascending (which also rules out duplicates), host
// among them. botocore and the Go SDK both send exactly this form.
func (p *parsed) parseSignedHeaders(s string) *Error {
	if s == "" {
		return malformed("SignedHeaders is empty; it must list at least host")
	}
	n := strings.Count(s, ";") + 1
	if n > maxSignedHeaders {
		return malformed("SignedHeaders lists %d headers; at most %d are allowed", n, maxSignedHeaders)
	}
	names := make([]string, 0, n)
	host := false
	prev := ""
	for rest := s; ; {
		name, more, found := strings.Cut(rest, ";")
		if name == "" || len(name) > maxHeaderNameLen || !allBytes(name, isLowerTokenByte) {
			return malformed("SignedHeaders %s must be lower-case header names separated by ';'", quote(s))
		}
		if prev != "" && name <= prev {
			return malformed("SignedHeaders %s must be sorted and without duplicates", quote(s))
		}
		if name == "host" {
			host = true
		}
		names = append(names, name)
		prev = name
		if !found {
			break
		}
		rest = more
	}
	if !host {
		return malformed("'Host' must be a 'SignedHeader' in the AWS Authorization.")
	}
	p.signedHeaders, p.signedList = names, s
	return nil
}

func (p *parsed) parseSignature(s string) *Error {
	if len(s) != 64 || !allBytes(s, isLowerHexByte) {
		return malformed("Signature must be 64 lower-case hexadecimal characters")
	}
	hex.Decode(p.signature[:], []byte(s))
	return nil
}

// parseAmzDate reads the ISO 8601 basic form YYYYMMDDTHHMMSSZ, strictly.
func parseAmzDate(s string) (time.Time, bool) {
	if len(s) != 16 || s[8] != 'T' || s[15] != 'Z' {
		return time.Time{}, false
	}
	d, ok := parseYMD(s[:8])
	if !ok {
		return time.Time{}, false
	}
	hh, ok1 := digits(s[9:11])
	mm, ok2 := digits(s[11:13])
	ss, ok3 := digits(s[13:15])
	if !ok1 || !ok2 || !ok3 || hh > 23 || mm > 59 || ss > 59 {
		return time.Time{}, false
	}
	return d.Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute + time.Duration(ss)*time.Second), true
}

// parseYMD reads YYYYMMDD, rejecting dates that do not exist (20260230).
func parseYMD(s string) (time.Time, bool) {
	if len(s) != 8 {
		return time.Time{}, false
	}
	y, ok1 := digits(s[:4])
	m, ok2 := digits(s[4:6])
	d, ok3 := digits(s[6:8])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d {
		return time.Time{}, false
	}
	return t, true
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(s) > 0
}

// parseHTTPDate reads a Date header: RFC 7231's IMF-fixdate and the two
// obsolete forms (http.ParseTime), or RFC 1123 with a numeric zone, which
// is what botocore writes ("Sat, 28 Nov 2026 10:00:00 -0000").
func parseHTTPDate(s string) (time.Time, bool) {
	if len(s) > maxDateHeaderLen {
		return time.Time{}, false
	}
	if t, err := http.ParseTime(s); err == nil {
		return t.UTC(), true
	}
	if t, err := time.Parse(time.RFC1123Z, s); err == nil {
		return t.UTC(), true
	}
	return time.Time{}, false
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isKeyIDByte(c byte) bool    { return isAlnum(c) || c == '_' || c == '-' || c == '.' }
func isScopeByte(c byte) bool    { return isAlnum(c) || c == '-' || c == '_' }
func isLowerHexByte(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// isLowerTokenByte: RFC 9110 tchar without upper case.
func isLowerTokenByte(c byte) bool {
	if 'A' <= c && c <= 'Z' {
		return false
	}
	if isAlnum(c) {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
