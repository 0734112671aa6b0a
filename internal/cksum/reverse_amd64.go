//go:build !purego

package cksum

import "golang.org/x/sys/cpu"

// useSSSE3 says whether reverseBytes may use reverse16SSSE3 (a variable so
// that the tests can check the other path too).
var useSSSE3 = cpu.X86.HasSSSE3

// reverse16SSSE3 reverses the bits of each of blocks×16 bytes from src
// into dst, 16 at a time with two nibble look-ups (PSHUFB). It is about
// five times as fast as the word-at-a-time reversal in Go, which took
// three quarters of Digest's time: about 0.3 s of CPU per GiB
// downloaded.
//
//go:noescape
func reverse16SSSE3(dst, src *byte, blocks int)

// reverseBytes sets dst[i] to src[i] with its bits in reverse order;
// len(dst) >= len(src).
func reverseBytes(dst, src []byte) {
	n := 0
	if useSSSE3 {
		n = len(src) &^ 15
		if n > 0 {
			_ = dst[n-1]
			reverse16SSSE3(&dst[0], &src[0], n/16)
		}
	}
	reverseBytesGeneric(dst[n:], src[n:])
}
