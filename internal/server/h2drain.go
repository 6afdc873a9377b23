package server

import (
	"io"
	"net/http"
)

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
// maxDrain and, in time, by the server's ReadTimeout, which applies to
// HTTP/2 streams too; a body already read to its end costs one read.
func drainH2Body(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.ProtoMajor == 2 && r.Body != nil && r.Body != http.NoBody {
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxDrain))
		}
	})
}
