package sigv4

import (
	"crypto/subtle"
	"sync"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// signerCache keeps one SDK signer per access key, so that the SDK's own
// cache of derived signing keys (four HMACs per request otherwise) serves
// a key's requests of one day. The SDK keys that cache by access key ID,
// region, service and day, not by the secret — right for a client holding
// one key, not for a server that looks secrets up — so each signer here is
// used only with the secret it was made for: an entry whose secret differs
// from the one looked up now (constant-time compare) is replaced, never
// used.
type signerCache struct {
	mu sync.Mutex
	m  map[string]*cachedSigner
}

type cachedSigner struct {
	secret string
	signer *v4.Signer
}

// maxSigners bounds the cache: when it is full, it starts over.
const maxSigners = 4096

func newSignerCache() *signerCache { return &signerCache{m: map[string]*cachedSigner{}} }

func newSDKSigner() *v4.Signer {
	return v4.NewSigner(func(o *v4.SignerOptions) { o.DisableHeaderHoisting = true })
}

// get returns the signer for accessKeyID with secret (nil cache: a new one).
func (c *signerCache) get(accessKeyID, secret string) *v4.Signer {
	if c == nil {
		return newSDKSigner()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[accessKeyID]; e != nil && len(e.secret) == len(secret) &&
		subtle.ConstantTimeCompare([]byte(e.secret), []byte(secret)) == 1 {
		return e.signer
	}
	if len(c.m) >= maxSigners {
		clear(c.m)
	}
	s := newSDKSigner()
	c.m[accessKeyID] = &cachedSigner{secret: secret, signer: s}
	return s
}
