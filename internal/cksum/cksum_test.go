package cksum

import (
	"bytes"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	"clustertx/internal/testenv"
)

// sizes cover empty input, the 8-byte words reverseBytes works in, the
// 64-byte blocks below which hash/crc32 takes its table path, the chunk
// boundary, and lengths of 1 to 4 bytes once appended.
var sizes = []int{0, 1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 127, 128, 129, 255, 256, 257,
	chunk - 1, chunk, chunk + 1, 2*chunk + 3, 65535, 65536, 65537, 1<<20 + 13, 1<<24 + 1}

func data(n int, seed uint64) []byte {
	p := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// The values match the POSIX definition computed byte by byte, whichever
// way the input is split into writes.
func TestMatchesDefinition(t *testing.T) {
	for _, n := range sizes {
		p := data(n, 1)
		want := refChecksum(p)
		if got := Checksum(p); got != want {
			t.Errorf("%d bytes: Checksum %d, want %d", n, got, want)
		}
		d := New()
		for rest, k := p, 1; len(rest) > 0; k = k*3 + 1 {
			k := min(k, len(rest))
			d.Write(rest[:k])
			rest = rest[k:]
		}
		if got := d.Sum32(); got != want || d.Size() != int64(n) {
			t.Errorf("%d bytes in uneven writes: %d (size %d), want %d", n, got, d.Size(), want)
		}
	}
}

// The values match what the real cksum prints for the same bytes (any
// POSIX cksum; on this project's machines GNU coreutils').
func TestMatchesCksumTool(t *testing.T) {
	testenv.Need(t, "cksum")
	for _, n := range sizes {
		p := data(n, 2)
		cmd := exec.Command("cksum")
		cmd.Stdin = bytes.NewReader(p)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("cksum: %v", err)
		}
		want := fmt.Sprintf("%d %d", Checksum(p), n)
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("%d bytes: cksum printed %q, Checksum gives %q", n, got, want)
		}
	}
}

// Sum32 leaves the digest usable; one flipped bit or two swapped pieces
// (what a reassembly bug does) change the value.
func TestDetects(t *testing.T) {
	p := data(3<<20, 3)
	d := New()
	d.Write(p[:1<<20])
	_ = d.Sum32()
	d.Write(p[1<<20:])
	sum := d.Sum32()
	if sum != refChecksum(p) {
		t.Fatal("Sum32 changed the digest")
	}
	flipped := bytes.Clone(p)
	flipped[2<<20+5] ^= 0x10
	swapped := append(append(bytes.Clone(p[128<<10:256<<10]), p[:128<<10]...), p[256<<10:]...)
	for name, q := range map[string][]byte{"flipped bit": flipped, "swapped pieces": swapped} {
		if Checksum(q) == sum {
			t.Errorf("%s: same value", name)
		}
	}
}

// reverseBytes, in whichever form this machine uses and in the portable
// one, reverses every byte at any length and alignment, and writes nothing
// past len(src).
func TestReverseBytes(t *testing.T) {
	for _, fast := range []bool{useSSSE3, false} {
		old := useSSSE3
		useSSSE3 = fast
		src := data(300, 4)
		for off := 0; off < 17; off++ {
			for n := 0; off+n <= len(src); n += 1 + n/8 {
				s := src[off : off+n]
				dst := make([]byte, n+1)
				dst[n] = 0xa5
				reverseBytes(dst, s)
				for i, c := range s {
					if dst[i] != bits.Reverse8(c) {
						t.Fatalf("fast=%v off=%d n=%d: byte %d is %#x, want %#x", fast, off, n, i, dst[i], bits.Reverse8(c))
					}
				}
				if dst[n] != 0xa5 {
					t.Fatalf("fast=%v off=%d n=%d: wrote past the end", fast, off, n)
				}
			}
		}
		// And the digest of a large input is the definition's.
		p := data(1<<20+29, 5)
		if got, want := Checksum(p), refChecksum(p); got != want {
			t.Errorf("fast=%v: Checksum %d, want %d", fast, got, want)
		}
		useSSSE3 = old
	}
}
