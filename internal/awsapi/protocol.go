package awsapi

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"

	"github.com/kaginashi/kaginashi/internal/apierr"
	"github.com/kaginashi/kaginashi/policy"
)

type protocol int

const (
	protoUnknown protocol = iota
	protoIAM              // Query, XML, ErrorResponse envelope
	protoSTS              // same shapes, its own namespace
	protoEC2              // Query, XML, Response/Errors envelope, lowerCamel
	protoEIC              // JSON 1.1 with X-Amz-Target
	protoCT               // CloudTrail: JSON 1.1 with X-Amz-Target (audit lookup)
	protoKG               // kaginashi's own API: JSON 1.1 with X-Amz-Target (join tokens)
)

// targetPrefix is each JSON protocol's X-Amz-Target prefix.
var targetPrefix = map[protocol]string{protoEIC: "AWSEC2InstanceConnectService", protoCT: "CloudTrail_20131101", protoKG: "Kaginashi_20261128"}

func isJSON(p protocol) bool { return p == protoEIC || p == protoCT || p == protoKG }

var apiVersion = map[protocol]string{
	protoIAM: "2010-05-08", protoSTS: "2011-06-15", protoEC2: "2016-11-15", protoEIC: "2018-04-02", protoCT: "2013-11-01", protoKG: "2026-11-28", protoUnknown: "",
}

var serviceName = map[protocol]string{
	protoIAM: "IAM", protoSTS: "STS", protoEC2: "EC2", protoEIC: "EC2 Instance Connect", protoCT: "CloudTrail", protoKG: "kaginashi", protoUnknown: "the API",
}

var namespace = map[protocol]string{
	protoIAM: "https://iam.amazonaws.com/doc/2010-05-08/",
	protoSTS: "https://sts.amazonaws.com/doc/2011-06-15/",
	protoEC2: "http://ec2.amazonaws.com/doc/2016-11-15/",
}

var eventSource = map[protocol]string{
	protoIAM: "iam.amazonaws.com", protoSTS: "sts.amazonaws.com", protoEC2: "ec2.amazonaws.com",
	protoEIC: "ec2-instance-connect.amazonaws.com", protoCT: "cloudtrail.amazonaws.com", protoKG: "kaginashi", protoUnknown: "kaginashi",
}

// protocolOf maps a SigV4 signing name to the protocol that serves it.
func protocolOf(service string) protocol {
	switch service {
	case "iam":
		return protoIAM
	case "sts":
		return protoSTS
	case "ec2":
		return protoEC2
	case "ec2-instance-connect":
		return protoEIC
	case "cloudtrail":
		return protoCT
	case "kaginashi":
		return protoKG
	}
	return protoUnknown
}

// signingName is the SigV4 signing name of the API p serves (protocolOf's
// inverse).
func signingName(p protocol) string {
	for _, svc := range []string{"iam", "sts", "ec2", "ec2-instance-connect", "cloudtrail", "kaginashi"} {
		if protocolOf(svc) == p {
			return svc
		}
	}
	return ""
}

// jsonProtocolOf is the JSON protocol an X-Amz-Target belongs to, or
// protoUnknown. botocore sends the Smithy namespace too:
// com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents.
func jsonProtocolOf(target string) protocol {
	prefix := ""
	if i := strings.LastIndexByte(target, '.'); i > 0 {
		prefix = target[:i]
	}
	for _, p := range []protocol{protoEIC, protoCT, protoKG} {
		if prefix == targetPrefix[p] || strings.HasSuffix(prefix, "."+targetPrefix[p]) {
			return p
		}
	}
	return protoUnknown
}

// queryProtocolOf is the Query protocol whose API version is version, or
// def.
func queryProtocolOf(version string, def protocol) protocol {
	for _, p := range []protocol{protoIAM, protoSTS, protoEC2} {
		if version == apiVersion[p] {
			return p
		}
	}
	return def
}

// guessProtocol picks the protocol before authentication, for the shape of
// early errors: the signing name in the credential scope, else the
// X-Amz-Target header.
func guessProtocol(r *http.Request) protocol {
	if svc := scopeService(r); svc != "" {
		if p := protocolOf(svc); p != protoUnknown {
			return p
		}
	}
	target := r.Header.Get("X-Amz-Target")
	for p, prefix := range targetPrefix {
		if strings.Contains(target, prefix+".") {
			return p
		}
	}
	return protoIAM
}

// scopeService reads the service from "Credential=AKID/DATE/REGION/SERVICE/aws4_request".
func scopeService(r *http.Request) string {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if a := r.Header.Get("Authorization"); a != "" {
		if i := strings.Index(a, "Credential="); i >= 0 {
			cred = a[i+len("Credential="):]
			if j := strings.IndexAny(cred, ", "); j >= 0 {
				cred = cred[:j]
			}
		}
	}
	parts := strings.Split(cred, "/")
	if len(parts) == 5 {
		return parts[3]
	}
	return ""
}

// errorCode maps an error to the protocol's code and HTTP status, and
// whether it is the caller's fault (Sender) or the server's (Receiver).
func errorCode(p protocol, e *apierr.Error) (code string, status int, sender bool) {
	type m struct {
		code   string
		status int
	}
	var table map[apierr.Kind]m
	switch p {
	case protoEC2:
		table = map[apierr.Kind]m{
			apierr.MissingAuth:       {"AuthFailure", 401},
			apierr.UnknownAccessKey:  {"AuthFailure", 401},
			apierr.SignatureMismatch: {"AuthFailure", 401},
			apierr.ExpiredSignature:  {"RequestExpired", 400},
			apierr.InvalidSignature:  {"AuthFailure", 401},
			apierr.UnknownOperation:  {"InvalidAction", 400},
			apierr.InvalidInput:      {"InvalidParameterValue", 400},
			apierr.MalformedPolicy:   {"InvalidParameterValue", 400},
			apierr.TooLarge:          {"RequestEntityTooLarge", 413},
			apierr.Throttled:         {"RequestLimitExceeded", 503},
			apierr.AccessDenied:      {"UnauthorizedOperation", 403},
			apierr.NotFound:          {"InvalidParameterValue", 400},
			apierr.AlreadyExists:     {"InvalidParameterValue", 400},
			apierr.Conflict:          {"DependencyViolation", 400},
			apierr.LimitExceeded:     {"ResourceLimitExceeded", 400},
			apierr.Unavailable:       {"Unavailable", 503},
			apierr.InvalidState:      {"IncorrectInstanceState", 400},
			apierr.Unsupported:       {"UnsupportedOperation", 400},
			apierr.DryRun:            {"DryRunOperation", 412},
			apierr.Internal:          {"InternalError", 500},
		}
	case protoEIC:
		table = map[apierr.Kind]m{
			apierr.MissingAuth:       {"MissingAuthenticationTokenException", 403},
			apierr.UnknownAccessKey:  {"UnrecognizedClientException", 403},
			apierr.SignatureMismatch: {"InvalidSignatureException", 403},
			apierr.ExpiredSignature:  {"InvalidSignatureException", 403},
			apierr.InvalidSignature:  {"IncompleteSignatureException", 400},
			apierr.UnknownOperation:  {"UnknownOperationException", 400},
			apierr.InvalidInput:      {"InvalidArgsException", 400},
			apierr.MalformedPolicy:   {"InvalidArgsException", 400},
			apierr.TooLarge:          {"InvalidArgsException", 413},
			apierr.Throttled:         {"ThrottlingException", 429},
			apierr.AccessDenied:      {"AuthException", 403},
			apierr.NotFound:          {"EC2InstanceNotFoundException", 404},
			apierr.AlreadyExists:     {"InvalidArgsException", 400},
			apierr.Conflict:          {"InvalidArgsException", 400},
			apierr.LimitExceeded:     {"ThrottlingException", 429},
			apierr.Unavailable:       {"EC2InstanceUnavailableException", 503},
			apierr.InvalidState:      {"EC2InstanceStateInvalidException", 400},
			apierr.Unsupported:       {"InvalidArgsException", 400},
			apierr.Internal:          {"ServiceException", 500},
		}
	case protoCT, protoKG:
		table = map[apierr.Kind]m{
			apierr.MissingAuth:       {"MissingAuthenticationTokenException", 403},
			apierr.UnknownAccessKey:  {"UnrecognizedClientException", 403},
			apierr.SignatureMismatch: {"InvalidSignatureException", 403},
			apierr.ExpiredSignature:  {"InvalidSignatureException", 403},
			apierr.InvalidSignature:  {"IncompleteSignatureException", 400},
			apierr.UnknownOperation:  {"UnknownOperationException", 400},
			apierr.InvalidInput:      {"InvalidParameterException", 400},
			apierr.TooLarge:          {"InvalidParameterException", 413},
			apierr.Throttled:         {"ThrottlingException", 400},
			apierr.AccessDenied:      {"AccessDeniedException", 400},
			apierr.Unsupported:       {"UnsupportedOperationException", 400},
			apierr.NotFound:          {"ResourceNotFoundException", 404},
			apierr.Internal:          {"InternalFailure", 500},
		}
	default: // IAM and STS
		table = map[apierr.Kind]m{
			apierr.MissingAuth:       {"MissingAuthenticationToken", 403},
			apierr.UnknownAccessKey:  {"InvalidClientTokenId", 403},
			apierr.SignatureMismatch: {"SignatureDoesNotMatch", 403},
			apierr.ExpiredSignature:  {"SignatureDoesNotMatch", 403},
			apierr.InvalidSignature:  {"IncompleteSignature", 400},
			apierr.UnknownOperation:  {"InvalidAction", 400},
			apierr.InvalidInput:      {"InvalidInput", 400},
			apierr.MalformedPolicy:   {"MalformedPolicyDocument", 400},
			apierr.TooLarge:          {"RequestEntityTooLarge", 413},
			apierr.Throttled:         {"Throttling", 400},
			apierr.AccessDenied:      {"AccessDenied", 403},
			apierr.NotFound:          {"NoSuchEntity", 404},
			apierr.AlreadyExists:     {"EntityAlreadyExists", 409},
			apierr.Conflict:          {"DeleteConflict", 409},
			apierr.LimitExceeded:     {"LimitExceeded", 409},
			apierr.Unavailable:       {"ServiceUnavailable", 503},
			apierr.InvalidState:      {"InvalidInput", 400},
			apierr.Unsupported:       {"InvalidInput", 400},
			apierr.Internal:          {"ServiceFailure", 500},
		}
		if p == protoSTS {
			table[apierr.InvalidInput] = m{"ValidationError", 400}
			table[apierr.Internal] = m{"InternalFailure", 500}
		}
	}
	entry, ok := table[e.Kind]
	if !ok {
		entry = table[apierr.Internal]
	}
	code, status = entry.code, entry.status
	if e.Code != "" {
		code = e.Code
		if s, ok := codeStatus[code]; ok {
			status = s
		}
	}
	return code, status, status < 500
}

// codeStatus is the HTTP status of explicit codes whose status differs from
// their kind's default.
var codeStatus = map[string]int{
	"SerialConsoleAccessDisabledException": 403, // the Smithy model's status
	"PasswordPolicyViolation":              400,
	"InvalidAuthenticationCode":            403, // IAM's model: InvalidAuthenticationCodeException
}

type xmlError struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// writeError answers an error in the protocol's shape.
func (h *Handler) writeError(w http.ResponseWriter, c *call, e *apierr.Error) {
	code, status, sender := errorCode(c.proto, e)
	msg := e.Message
	if e.Kind == apierr.Internal {
		msg = "We encountered an internal error. Please try again. (request " + c.requestID + ")"
	}
	hdr := w.Header()
	switch c.proto {
	case protoEIC, protoCT, protoKG:
		hdr.Set("Content-Type", "application/x-amz-json-1.1")
		hdr.Set("X-Amzn-RequestId", c.requestID)
		hdr.Set("X-Amzn-ErrorType", code)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "Message": msg})
	case protoEC2:
		hdr.Set("Content-Type", "text/xml;charset=UTF-8")
		hdr.Set("X-Amzn-RequestId", c.requestID)
		type resp struct {
			XMLName xml.Name `xml:"Response"`
			Errors  []struct {
				Code    string `xml:"Code"`
				Message string `xml:"Message"`
			} `xml:"Errors>Error"`
			RequestID string `xml:"RequestID"`
		}
		r := resp{RequestID: c.requestID}
		r.Errors = append(r.Errors, struct {
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		}{code, msg})
		writeXML(w, status, r)
	default:
		hdr.Set("Content-Type", "text/xml")
		hdr.Set("X-Amzn-RequestId", c.requestID)
		typ := "Sender"
		if !sender {
			typ = "Receiver"
		}
		type resp struct {
			XMLName   xml.Name `xml:"ErrorResponse"`
			Xmlns     string   `xml:"xmlns,attr"`
			Error     xmlError `xml:"Error"`
			RequestID string   `xml:"RequestId"`
		}
		writeXML(w, status, resp{Xmlns: namespace[c.proto], Error: xmlError{typ, code, msg}, RequestID: c.requestID})
	}
}

// writeXML answers status with v encoded as an XML document.
func writeXML(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	if err := xml.NewEncoder(&b).Encode(v); err != nil {
		http.Error(w, "encoding the response failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// writeResult answers success in the protocol's shape.
func (h *Handler) writeResult(w http.ResponseWriter, c *call, result any) {
	hdr := w.Header()
	hdr.Set("X-Amzn-RequestId", c.requestID)
	switch c.proto {
	case protoEIC, protoCT, protoKG:
		hdr.Set("Content-Type", "application/x-amz-json-1.1")
		b, _ := json.Marshal(result)
		hdr.Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
	case protoEC2:
		hdr.Set("Content-Type", "text/xml;charset=UTF-8")
		if env, ok := result.(ec2Response); ok {
			env.setEnvelope(c.requestID)
		}
		writeXML(w, http.StatusOK, result)
	default:
		hdr.Set("Content-Type", "text/xml")
		var b bytes.Buffer
		enc := xml.NewEncoder(&b)
		start := xml.StartElement{Name: xml.Name{Local: c.op.name + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: namespace[c.proto]}}}
		_ = enc.EncodeToken(start)
		if result != nil {
			_ = enc.EncodeElement(result, xml.StartElement{Name: xml.Name{Local: c.op.name + "Result"}})
		}
		type meta struct {
			RequestID string `xml:"RequestId"`
		}
		_ = enc.EncodeElement(meta{c.requestID}, xml.StartElement{Name: xml.Name{Local: "ResponseMetadata"}})
		_ = enc.EncodeToken(start.End())
		_ = enc.Flush()
		hdr.Set("Content-Length", strconv.Itoa(b.Len()))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b.Bytes())
	}
}

// jsonRecord is a JSON body's fields for the audit log.
func jsonRecord(body []byte) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return map[string]any{"unparsedBody": truncate(string(body), 256)}
	}
	// CloudTrail's requestParameters are lowerCamel, as for the Query APIs.
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[lowerFirst(k)] = v
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// findingsMessage is a short list of findings for error messages.
func findingsMessage(fs []policy.Finding) string {
	var parts []string
	for _, f := range fs {
		if f.Type == policy.FindingError {
			parts = append(parts, f.Path+": "+f.Code)
		}
	}
	return strings.Join(parts, "; ")
}

// ec2Response is an EC2 result: the whole <OpResponse> element, whose
// envelope (namespace, requestId) the handler fills.
type ec2Response interface{ setEnvelope(requestID string) }

// ec2Envelope is embedded in every EC2 response type.
type ec2Envelope struct {
	Xmlns     string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
}

func (e *ec2Envelope) setEnvelope(id string) { e.Xmlns, e.RequestID = namespace[protoEC2], id }
