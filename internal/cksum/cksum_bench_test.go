package cksum

import (
	"crypto/sha256"
	"testing"
)

func BenchmarkDigest(b *testing.B) {
	p := make([]byte, 128<<10)
	for i := range p {
		p[i] = byte(i * 7)
	}
	d := New()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		d.Write(p)
	}
}

func BenchmarkSHA256(b *testing.B) {
	p := make([]byte, 128<<10)
	h := sha256.New()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		h.Write(p)
	}
}

func BenchmarkRef(b *testing.B) {
	p := make([]byte, 128<<10)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		refChecksum(p)
	}
}
