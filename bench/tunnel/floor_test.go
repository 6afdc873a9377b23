package main

// The floor under a tunnel's cost per byte, on this machine: what each
// TLS hop must spend (AES-128-GCM, the suite crypto/tls picks on CPUs with
// AES instructions, sealing and opening 16 KiB records) and what the
// client's WebSocket masking costs. A tunnel's bytes are sealed twice and
// opened twice (client → server, server → agent) and masked and unmasked
// once each; `go test -bench . ./bench/tunnel` prints ns/op for one 16 KiB
// record, and the MB/s that ns/byte follows from.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"testing"
)

const recordSize = 16 << 10

func newGCM(b *testing.B) cipher.AEAD {
	block, err := aes.NewCipher(make([]byte, 16))
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	return aead
}

func BenchmarkAESGCMSeal16K(b *testing.B) {
	aead := newGCM(b)
	nonce := make([]byte, aead.NonceSize())
	buf := make([]byte, recordSize, recordSize+aead.Overhead())
	b.SetBytes(recordSize)
	for b.Loop() {
		aead.Seal(buf[:0], nonce, buf[:recordSize], nil)
	}
}

func BenchmarkAESGCMOpen16K(b *testing.B) {
	aead := newGCM(b)
	nonce := make([]byte, aead.NonceSize())
	sealed := aead.Seal(nil, nonce, make([]byte, recordSize), nil)
	out := make([]byte, 0, recordSize)
	b.SetBytes(recordSize)
	for b.Loop() {
		if _, err := aead.Open(out, nonce, sealed, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMask16K is the XOR of RFC 6455's masking, as wstunnel does it.
func BenchmarkMask16K(b *testing.B) {
	src, dst, pat := make([]byte, recordSize), make([]byte, recordSize), make([]byte, recordSize)
	b.SetBytes(recordSize)
	for b.Loop() {
		subtle.XORBytes(dst, src, pat)
	}
}

// BenchmarkCopy16K is one more copy of the bytes in memory.
func BenchmarkCopy16K(b *testing.B) {
	src, dst := make([]byte, recordSize), make([]byte, recordSize)
	b.SetBytes(recordSize)
	for b.Loop() {
		copy(dst, src)
	}
}
