package server

import (
	"io"
	"net/http"
	"time"
)

// readTimeout is the API and peer listeners' http.Server.ReadTimeout
// (newHTTPServer), which drainH2Body also holds a drain to.
const readTimeout = 60 * time.Second

// maxDrain is how much of an HTTP/2 request body the server still reads,
// and throws away, after a handler answered without reading all of it (a
// body over awsapi.MaxBody, or one refused before it was read). A
// mistaken upload of a few MiB gets its complete error answer; a larger
// one is cut (see drainH2Body).
const maxDrain = 8 << 20

// drainH2Body reads, after h answered, what is left of an HTTP/2 request
// body, up to maxDrain bytes, before the answer goes out.
//
// Why: net/http's HTTP/2 server, when a handler returns before the client
// finished sending, sends the complete answer and then RST_STREAM
// (NO_ERROR), as RFC 9113 §8.1 allows. Go's client copes, but curl
// (7.88 with nghttp2 1.52, Debian 12's) throws the buffered answer away on
// that reset: `curl --http2` streaming 3 MB got the 413's headers and then
// "transfer closed with 320 bytes remaining". Once the client has sent
// its whole body, the stream ends normally and every client gets the
// answer. The answer (an error body of a few hundred bytes) stays in the
// response writer's buffer until h and this function return, so nothing
// is sent before the drain ends.
//
// HTTP/1.1 is left alone: net/http answers there and closes the
// connection, which every client handles. The drain is bounded by
// maxDrain and, in time, by timeout from the request's start (the
// server's ReadTimeout): the stream's read deadline is set to that again
// before draining, because a handler may have lifted it for a long-lived
// answer (the console's terminal and instance stream clear it before
// they find out they cannot serve) and a client that keeps its body open
// without sending would otherwise hold the stream, and this goroutine,
// for as long as it likes. A request without a body (Content-Length 0,
// as every GET without one is over HTTP/2) is not drained.
func drainH2Body(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		if r.ProtoMajor != 2 || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			return
		}
		// A deadline already past ends the body at once (a stream open
		// longer than timeout is not drained at all).
		_ = http.NewResponseController(w).SetReadDeadline(start.Add(timeout))
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxDrain))
	})
}
