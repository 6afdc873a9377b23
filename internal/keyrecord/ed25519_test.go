package keyrecord

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
)

// A verification that always said yes, or always no, fails here.
func TestVerifyEd25519(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	msg := []byte("kaginashi-key-record-v1\nrequest=r\n")
	sig := ed25519.Sign(priv, msg)
	if !verifyEd25519(pub, msg, sig) {
		t.Fatal("a good signature is refused")
	}
	bad := func(name string, pub ed25519.PublicKey, msg, sig []byte) {
		t.Helper()
		if verifyEd25519(pub, msg, sig) {
			t.Errorf("%s: accepted", name)
		}
		if ed25519.Verify(pub, msg, sig) {
			t.Errorf("%s: crypto/ed25519 accepts it (the test is wrong)", name)
		}
	}
	flip := func(b []byte, i int) []byte { c := append([]byte(nil), b...); c[i] ^= 1; return c }
	bad("another key", other, msg, sig)
	bad("another message", pub, flip(msg, 3), sig)
	bad("R changed", pub, msg, flip(sig, 0))
	bad("S changed", pub, msg, flip(sig, 40))
	bad("short signature", pub, msg, sig[:63])
	if verifyEd25519(pub[:31], msg, sig) { // crypto/ed25519 panics here
		t.Error("short key: accepted")
	}
	// S + l: the same point equation holds, but S is not canonical.
	l := []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	malleable := append([]byte(nil), sig...)
	var carry uint16
	for i := 0; i < 32; i++ {
		s := uint16(malleable[32+i]) + uint16(l[i]) + carry
		malleable[32+i], carry = byte(s), s>>8
	}
	if carry == 0 && malleable[63]&224 == 0 {
		bad("S+l", pub, msg, malleable)
	}
}

// FuzzVerifyEd25519: the fast verification decides exactly as
// crypto/ed25519 does, on valid signatures and on any mangled input.
func FuzzVerifyEd25519(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	f.Add([]byte("m"), uint8(0), uint8(0), []byte{})
	f.Add([]byte("another message"), uint8(33), uint8(1), []byte{})
	f.Add([]byte("x"), uint8(100), uint8(0), make([]byte, 64))
	f.Fuzz(func(t *testing.T, msg []byte, pos, mask uint8, raw []byte) {
		sig := ed25519.Sign(priv, msg)
		if pos < 64 {
			sig[pos] ^= mask
		}
		for _, s := range [][]byte{sig, raw} {
			if got, want := verifyEd25519(pub, msg, s), ed25519.Verify(pub, msg, s); got != want {
				t.Fatalf("verify(sig %x) = %v, crypto/ed25519 says %v", s, got, want)
			}
		}
		if len(raw) >= 32 {
			k := ed25519.PublicKey(raw[:32])
			if got, want := verifyEd25519(k, msg, sig), ed25519.Verify(k, msg, sig); got != want {
				t.Fatalf("verify(key %x) = %v, crypto/ed25519 says %v", k, got, want)
			}
		}
	})
}

func BenchmarkVerifyEd25519(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := []byte("kaginashi-key-record-v1\n")
	sig := ed25519.Sign(priv, msg)
	b.Run("keyrecord", func(b *testing.B) {
		for b.Loop() {
			verifyEd25519(pub, msg, sig)
		}
	})
	b.Run("crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			ed25519.Verify(pub, msg, sig)
		}
	})
}
