package keyrecord

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"

	"filippo.io/edwards25519"
)

// verifyEd25519 is crypto/ed25519.Verify (pure Ed25519, RFC 8032 §5.1.7,
// with the same cofactorless equation and the same rejections: S ≥ l, a
// public key that does not decode, a non-canonical R), computed differently
// for a reason: authorized-keys is a new process on every SSH login, and
// the standard library's verification precomputes a base-point table on
// first use — 64 field inversions, ~0.4 ms of that process's ~3 ms. Here
// [S]B − [k]A is one VarTimeMultiScalarMult, whose small per-call tables
// need no inversion, so the first verification costs what every later one
// does. FuzzVerifyEd25519 checks it agrees with crypto/ed25519.
func verifyEd25519(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize || sig[63]&224 != 0 {
		return false
	}
	A, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return false
	}
	S, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(pub)
	h.Write(msg)
	k, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	if err != nil {
		return false
	}
	minusA := new(edwards25519.Point).Negate(A)
	R := new(edwards25519.Point).VarTimeMultiScalarMult(
		[]*edwards25519.Scalar{k, S},
		[]*edwards25519.Point{minusA, edwards25519.NewGeneratorPoint()})
	return bytes.Equal(sig[:32], R.Bytes())
}
