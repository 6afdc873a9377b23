package awsapi

import (
	"encoding/json"
	"encoding/xml"
	"mime"
	"net/http"
	"strings"

	"github.com/kaginashi/kaginashi/internal/apierr"
)

// AllowedMethods are the methods the API answers on /: POST for every API,
// GET (and so HEAD) for a signed Query call (and the console's page).
const AllowedMethods = "GET, HEAD, POST"

// ServeMethodNotAllowed answers any other method on / (PUT, DELETE,
// PATCH, OPTIONS, ...) with 405 and an Allow header, as the router would,
// but in the error shape of the API the request is written for when its
// headers tell (a credential scope, an X-Amz-Target, a Query API's
// Version in the URL, a JSON or form content type), so that an SDK
// reports MethodNotAllowed rather than failing to parse plain text; else
// in a short XML error like AWS's (JSON when the client accepts only
// that).
//
// It is not audited: no API is reached and nothing is decided about a
// caller (as for a path that does not exist), and it would be one more
// way to write rows without credentials.
func (h *Handler) ServeMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	c := &call{ctx: r.Context(), h: h, requestID: newRequestID()}
	msg := "The HTTP method " + truncate(r.Method, 32) + " is not allowed on /; AWS APIs use POST / (or GET / with a signed query)."
	w.Header().Set("Allow", AllowedMethods)
	c.proto = methodProtocol(r)
	if c.proto != protoUnknown {
		h.writeError(statusWriter{w, http.StatusMethodNotAllowed}, c, apierr.WithCode(apierr.InvalidInput, "MethodNotAllowed", "%s", msg))
		return
	}
	hdr := w.Header()
	hdr.Set("X-Amzn-RequestId", c.requestID)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	accept := r.Header.Get("Accept")
	if strings.Contains(ct, "json") || (strings.Contains(accept, "json") && !strings.Contains(accept, "xml")) {
		hdr.Set("Content-Type", "application/json")
		hdr.Set("X-Amzn-ErrorType", "MethodNotAllowed")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": "MethodNotAllowed", "Message": msg})
		return
	}
	hdr.Set("Content-Type", "text/xml")
	type resp struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string   `xml:"Code"`
		Message   string   `xml:"Message"`
		Method    string   `xml:"Method"`
		RequestID string   `xml:"RequestId"`
	}
	writeXML(w, http.StatusMethodNotAllowed, resp{Code: "MethodNotAllowed", Message: msg, Method: truncate(r.Method, 32), RequestID: c.requestID})
}

// methodProtocol is the API a request on / is written for by its headers
// alone (its body is not read): the credential scope's service, an
// X-Amz-Target, a Query API's Version in the URL, or a form body (IAM's
// shape, which STS's SDKs read too); protoUnknown when nothing tells.
func methodProtocol(r *http.Request) protocol {
	if p := protocolOf(scopeService(r)); p != protoUnknown {
		return p
	}
	if p := jsonProtocolOf(r.Header.Get("X-Amz-Target")); p != protoUnknown {
		return p
	}
	if p := queryProtocolOf(r.URL.Query().Get("Version"), protoUnknown); p != protoUnknown {
		return p
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
		return protoIAM
	}
	return protoUnknown
}

// statusWriter answers with its status whatever the handler asks: the
// protocol's error shape with another status than the kind's.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// writeError calls WriteHeader before it writes.
func (s statusWriter) WriteHeader(int) { s.ResponseWriter.WriteHeader(s.status) }
