package hosts

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// fakeSFTP answers an sftpStream's requests for one file: it may answer
// reads in pairs in reverse order, clamp them to maxRead bytes, or fail
// the read at failAt.
type fakeSFTP struct {
	data    []byte
	swap    bool  // answer two reads of streamReadLen in reverse order
	maxRead int   // if > 0, reads return at most this much
	failAt  int64 // if ≥ 0, the read at this offset fails
	noOpen  bool  // the open fails
	full    int   // reads received for streamReadLen bytes
}

func (f *fakeSFTP) serve(r io.Reader, w io.Writer) {
	packet := func() (byte, []byte, bool) {
		var h [5]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return 0, nil, false
		}
		b := make([]byte, binary.BigEndian.Uint32(h[:4])-1)
		if _, err := io.ReadFull(r, b); err != nil {
			return 0, nil, false
		}
		return h[4], b, true
	}
	send := func(typ byte, parts ...[]byte) {
		n := 1
		for _, p := range parts {
			n += len(p)
		}
		out := binary.BigEndian.AppendUint32(nil, uint32(n))
		out = append(out, typ)
		for _, p := range parts {
			out = append(out, p...)
		}
		w.Write(out)
	}
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	str := func(s []byte) []byte { return append(u32(uint32(len(s))), s...) }
	status := func(id, code uint32, msg string) {
		send(fxpStatus, u32(id), u32(code), str([]byte(msg)), str(nil))
	}
	if typ, _, ok := packet(); !ok || typ != fxpInit {
		return
	}
	send(fxpVersion, u32(3))
	typ, b, ok := packet()
	if !ok || typ != fxpOpen {
		return
	}
	if f.noOpen {
		status(binary.BigEndian.Uint32(b), 3, "permission denied")
		return
	}
	send(fxpHandle, b[:4], str([]byte("h")))
	answer := func(b []byte) {
		id := binary.BigEndian.Uint32(b)
		off := int64(binary.BigEndian.Uint64(b[9:])) // after the id and the 1-byte handle
		n := int64(binary.BigEndian.Uint32(b[17:]))
		if f.maxRead > 0 {
			n = min(n, int64(f.maxRead))
		}
		switch {
		case off == f.failAt:
			status(id, 4, "boom")
		case off >= int64(len(f.data)):
			status(id, fxEOF, "")
		default:
			send(fxpData, u32(id), str(f.data[off:min(off+n, int64(len(f.data)))]))
		}
	}
	var held []byte
	for {
		typ, b, ok := packet()
		if !ok {
			return
		}
		if typ != fxpRead || len(b) != 21 {
			status(binary.BigEndian.Uint32(b), 8, "unexpected request")
			continue
		}
		regular := binary.BigEndian.Uint64(b[9:])%streamReadLen == 0 && binary.BigEndian.Uint32(b[17:]) == streamReadLen
		if binary.BigEndian.Uint32(b[17:]) == streamReadLen {
			f.full++
		}
		switch {
		case !f.swap || !regular:
			answer(b)
		case held == nil:
			held = b
		default:
			answer(b)
			answer(held)
			held = nil
		}
	}
}

// streamCopy runs sftpStream.copy against f and returns what it wrote,
// the SHA-256 of what it hashed, and its error.
func streamCopy(t *testing.T, f *fakeSFTP) ([]byte, string, error) {
	t.Helper()
	reqR, reqW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.serve(reqR, repW)
		repW.Close()
	}()
	defer func() {
		reqW.Close()
		repR.Close()
		<-done
		reqR.Close()
	}()
	d := sha256.New()
	h := newAsyncHash(d, func() string { return hex.EncodeToString(d.Sum(nil)) })
	var got bytes.Buffer
	s := &sftpStream{r: repR, w: reqW}
	n, err := s.copy("file", io.MultiWriter(&got, h), h)
	if n != int64(got.Len()) {
		t.Errorf("copy reported %d bytes, wrote %d", n, got.Len())
	}
	return got.Bytes(), h.Sum(), err
}

// The streamed read writes the file in order, and hashes the same bytes,
// whatever the order of the replies, however short the server makes
// them, and wherever the file ends.
func TestStreamReadReassembles(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		swap    bool
		maxRead int
	}{
		{"in order", 1<<20 + 1234, false, 0},
		{"empty", 0, false, 0},
		{"whole reads only", 2 << 20, true, 0},
		{"replies swapped", 10<<20 + 5, true, 0},
		{"replies clamped", 3<<20 + 77, false, 100000},
		{"swapped and clamped", 10<<20 + 3, true, 50000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := make([]byte, tc.size)
			r := rand.New(rand.NewPCG(1, uint64(tc.size)))
			for i := range data {
				data[i] = byte(r.Uint32())
			}
			got, sum, err := streamCopy(t, &fakeSFTP{data: data, swap: tc.swap, maxRead: tc.maxRead, failAt: -1})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes that differ from the %d of the file", len(got), len(data))
			}
			if want := sha256.Sum256(data); sum != hex.EncodeToString(want[:]) {
				t.Error("the hash was not given the bytes written")
			}
		})
	}
}

// A failed read is an error, after what came before it was written.
func TestStreamReadFails(t *testing.T) {
	data := make([]byte, 4<<20)
	got, _, err := streamCopy(t, &fakeSFTP{data: data, swap: true, failAt: 3 * streamReadLen})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v, want the server's failure", err)
	}
	if len(got) > 3*streamReadLen {
		t.Errorf("wrote %d bytes, past the failed read", len(got))
	}
}

// A file that does not open on the streamed session is left to the caller
// to read another way (errNoStream), with nothing written.
func TestStreamReadOpenFails(t *testing.T) {
	got, _, err := streamCopy(t, &fakeSFTP{data: make([]byte, 1<<20), failAt: -1, noOpen: true})
	if !errors.Is(err, errNoStream) || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("err = %v, want errNoStream with the server's reason", err)
	}
	if len(got) > 0 {
		t.Errorf("wrote %d bytes", len(got))
	}
}

// Once a server has returned less than was asked for, later reads ask for
// no more than that: only the reads already in flight need the rest of
// their bytes asked for, one round trip each.
func TestStreamReadAdaptsToTheServersLimit(t *testing.T) {
	data := make([]byte, 20<<20+9)
	for i := range data {
		data[i] = byte(i * 7)
	}
	f := &fakeSFTP{data: data, maxRead: 64 << 10, failAt: -1}
	got, _, err := streamCopy(t, f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the copy differs")
	}
	if f.full > streamInFlight {
		t.Errorf("%d reads of %d bytes sent to a server that returns %d, want the first %d at most", f.full, streamReadLen, 64<<10, streamInFlight)
	}
}
