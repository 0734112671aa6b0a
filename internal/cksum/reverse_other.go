//go:build !amd64 || purego

package cksum

// useSSSE3 is false: only amd64 has the assembly form.
var useSSSE3 = false

// reverseBytes sets dst[i] to src[i] with its bits in reverse order;
// len(dst) >= len(src).
func reverseBytes(dst, src []byte) { reverseBytesGeneric(dst, src) }
