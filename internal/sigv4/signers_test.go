package sigv4

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// TestSignerCacheFollowsTheSecret: a verifier reuses the SDK signer (and
// its derived signing key) of an access key only with the secret it was
// made for. When the key's secret changes, a request signed with the old
// secret is refused and one signed with the new secret is accepted, on
// the same day, in either order.
func TestSignerCacheFollowsTheSecret(t *testing.T) {
	var mu sync.Mutex
	secret := testSecret
	v, err := New(Config{
		Region: testRegion, Services: testServices, Now: func() time.Time { return testTime },
		Lookup: func(context.Context, string) (string, error) { mu.Lock(); defer mu.Unlock(); return secret, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	v.trace = func(sdk bool) {
		if !sdk {
			t.Error("verified without the SDK signer: the test does not test the cache")
		}
	}
	verify := func(signWith string) error {
		t.Helper()
		body := []byte(`{"InstanceId":"i-0123456789abcdef0"}`)
		req := newClientRequest(t, http.MethodPost, "https://ec2-instance-connect."+testRegion+".amazonaws.com/", body)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		sdkSign(t, req, body, aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: signWith}, "ec2-instance-connect", testTime)
		r, b := serverRequest(t, req)
		_, err := v.Verify(context.Background(), r, b)
		return err
	}
	const newSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYNEWSECRETKEY"
	for range 2 {
		if err := verify(testSecret); err != nil {
			t.Fatalf("signed with the current secret: %v", err)
		}
	}
	mu.Lock()
	secret = newSecret
	mu.Unlock()
	if err := verify(testSecret); err == nil {
		t.Fatal("a request signed with the old secret verified after the secret changed")
	}
	if err := verify(newSecret); err != nil {
		t.Fatalf("signed with the new secret: %v", err)
	}
	mu.Lock()
	secret = testSecret
	mu.Unlock()
	if err := verify(newSecret); err == nil {
		t.Fatal("a request signed with the replaced secret verified")
	}
	if err := verify(testSecret); err != nil {
		t.Fatalf("signed with the secret again: %v", err)
	}
}
