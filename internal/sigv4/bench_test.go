package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"net/http"
	"sync"
	"testing"
	"time"
)

// The floor: one HMAC-SHA256 of a string to sign (the last of the five a
// SigV4 verification computes, after four to derive the key and two
// SHA-256 hashes). Each Verify benchmark also reports its cost as a
// multiple of this floor, timed in the same run ("x-hmac").
func BenchmarkHMACFloor(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		floorHMAC()
	}
}

var floorKey, floorMsg = make([]byte, 32), []byte("AWS4-HMAC-SHA256\n20261128T100000Z\n20261128/us-east-1/ec2-instance-connect/aws4_request\n" +
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")

func floorHMAC() (sum [32]byte) {
	m := hmac.New(sha256.New, floorKey)
	m.Write(floorMsg)
	m.Sum(sum[:0])
	return sum
}

// floorNs times floorHMAC for 200 ms (testing.Benchmark cannot run inside
// a benchmark: both take the benchmark lock).
var floorNs = sync.OnceValue(func() float64 {
	n, start := 0, time.Now()
	for time.Since(start) < 200*time.Millisecond {
		for range 1000 {
			floorHMAC()
		}
		n += 1000
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
})

func benchVerify(b *testing.B, r *http.Request, body []byte, manual bool) {
	v, _ := newVerifier(b, testTime.Add(time.Minute), manual)
	v.trace = nil
	ctx := context.Background()
	if _, err := v.Verify(ctx, r, body); err != nil {
		b.Fatal(err)
	}
	floor := floorNs()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(ctx, r, body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/floor, "x-hmac")
}

// BenchmarkVerify: a SendSSHPublicKey call (header form, 104-byte JSON
// body, five signed headers) verified the default way, with the SDK signer.
func BenchmarkVerify(b *testing.B) {
	r, body := signedJSON(b, testCreds, "ec2-instance-connect", testRegion, nil, nil)
	benchVerify(b, r, body, false)
}

// BenchmarkVerifyHandBuilt: the same request, canonical request built by
// hand (the fallback path).
func BenchmarkVerifyHandBuilt(b *testing.B) {
	r, body := signedJSON(b, testCreds, "ec2-instance-connect", testRegion, nil, nil)
	benchVerify(b, r, body, true)
}

// BenchmarkVerifyPresigned: the openTunnel URL.
func BenchmarkVerifyPresigned(b *testing.B) {
	r := presignedServerRequest(b, tunnelURL(b, "60"))
	benchVerify(b, r, nil, false)
}
