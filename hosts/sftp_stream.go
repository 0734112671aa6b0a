package hosts

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A streamed download (see sftpStream) keeps streamInFlight reads of
// streamReadLen bytes in flight and sends them streamBatch at a time.
const (
	streamReadLen  = 128 << 10
	streamInFlight = 64
	streamBatch    = 16 // reads sent together once this many have been answered
	minReadLen     = 4 << 10
)

// SFTP version 3 packet types and status codes (draft-ietf-secsh-filexfer-02).
const (
	fxpInit    = 1
	fxpVersion = 2
	fxpOpen    = 3
	fxpRead    = 5
	fxpStatus  = 101
	fxpHandle  = 102
	fxpData    = 103
	fxfRead    = 1 // SSH_FXF_READ
	fxEOF      = 1 // SSH_FX_EOF
)

// errNoStream says that streamDownload could not start (no session to be
// had, no SFTP subsystem, or the file would not open there): nothing was
// written, and the caller reads the file another way.
var errNoStream = errors.New("no session for a streamed download")

// streamDownload copies the regular file remote to w over its own SFTP
// session (see sftpStream). What w is given must stay unchanged until h
// has hashed it: buffers are reused only after h.then says so. It takes a
// session slot only if one is free, and returns an error that is
// errNoStream, with nothing written, when it cannot start.
func (t *SSHTransport) streamDownload(ctx context.Context, remote string, w io.Writer, h *asyncHash) (int64, error) {
	select {
	case t.sem <- struct{}{}:
		defer func() { <-t.sem }()
	default:
		return 0, errNoStream
	}
	sess, err := t.client.NewSession()
	if err != nil {
		if t.Err() != nil {
			return 0, err
		}
		return 0, errNoStream // refused (MaxSessions)
	}
	defer sess.Close()
	stdin, err := sess.StdinPipe()
	if err != nil {
		return 0, errNoStream
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return 0, errNoStream
	}
	if err := sess.RequestSubsystem("sftp"); err != nil {
		return 0, errNoStream
	}
	stop := context.AfterFunc(ctx, func() { _ = sess.Close() })
	defer stop()
	s := &sftpStream{r: stdout, w: stdin}
	n, err := s.copy(remote, w, h)
	if ctx.Err() != nil {
		return n, ctx.Err()
	}
	return n, err
}

// sftpStream reads a file sequentially over an SFTP session of its own,
// speaking just enough of the protocol (version 3: open, read) to do it
// with less work on this side than pkg/sftp's client: every reply is read
// from the channel straight into a buffer that is then written to the
// local file and hashed where it is, and buffers are reused. pkg/sftp
// allocates a new buffer for every reply, copies it into another, and
// hands it through three goroutines; on a loopback download, CPU-bound on
// two cores, those costs (and the garbage collection and page faults they
// cause) were a third of this side's CPU.
//
// Reads of streamReadLen bytes are sent streamInFlight at a time, in
// batches; replies are matched by id, so a server may answer in any
// order, and go to w in file order. A reply shorter than asked for (a
// server with a smaller read limit, or the end of the file) is followed by
// a read of the rest, and later reads ask for no more than it brought; the
// file ends at the first end-of-file status in file order.
type sftpStream struct {
	r      io.Reader // the server's replies
	w      io.Writer // our requests
	hdr    [13]byte
	out    []byte // requests being built
	nextID uint32
}

// segment is one read: the bytes [off, off+len) of the file, answered
// into buf.
type segment struct {
	id   uint32
	off  int64
	len  int
	buf  []byte
	n    int  // bytes received
	done bool // answered
	eof  bool // answered with end of file
}

func (s *sftpStream) put32(v uint32) { s.out = binary.BigEndian.AppendUint32(s.out, v) }

func (s *sftpStream) putString(p string) {
	s.put32(uint32(len(p)))
	s.out = append(s.out, p...)
}

// packet starts a packet of type typ in s.out; end fills in its length.
func (s *sftpStream) packet(typ byte) int {
	at := len(s.out)
	s.out = append(s.out, 0, 0, 0, 0, typ)
	return at
}

func (s *sftpStream) end(at int) {
	binary.BigEndian.PutUint32(s.out[at:], uint32(len(s.out)-at-4))
}

func (s *sftpStream) flush() error {
	if len(s.out) == 0 {
		return nil
	}
	_, err := s.w.Write(s.out)
	s.out = s.out[:0]
	return err
}

// maxReplyLen bounds the replies read whole (version, handle, status).
const maxReplyLen = 64 << 10

// reply reads a packet's length and type and, with id, its request id.
func (s *sftpStream) reply(id bool) (length uint32, typ byte, rid uint32, err error) {
	k := 5
	if id {
		k = 9
	}
	if _, err := io.ReadFull(s.r, s.hdr[:k]); err != nil {
		return 0, 0, 0, fmt.Errorf("sftp: reading a reply: %w", noEOF(err))
	}
	length = binary.BigEndian.Uint32(s.hdr[:4])
	if length < uint32(k-4) {
		return 0, 0, 0, fmt.Errorf("sftp: reply of %d bytes", length)
	}
	if id {
		rid = binary.BigEndian.Uint32(s.hdr[5:9])
	}
	return length - uint32(k-4), s.hdr[4], rid, nil
}

// body reads the rest of a reply (rest bytes) whole.
func (s *sftpStream) body(rest uint32) ([]byte, error) {
	if rest > maxReplyLen {
		return nil, fmt.Errorf("sftp: reply of %d bytes", rest)
	}
	b := make([]byte, rest)
	if _, err := io.ReadFull(s.r, b); err != nil {
		return nil, fmt.Errorf("sftp: reading a reply: %w", noEOF(err))
	}
	return b, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// status turns a status reply's body into an error (nil for OK).
func status(b []byte) error {
	if len(b) < 4 {
		return errors.New("sftp: short status reply")
	}
	code := binary.BigEndian.Uint32(b)
	if code == 0 {
		return nil
	}
	msg := ""
	if len(b) >= 8 {
		if l := binary.BigEndian.Uint32(b[4:]); int64(l) <= int64(len(b)-8) {
			msg = string(b[8 : 8+l])
		}
	}
	return fmt.Errorf("sftp: status %d: %s", code, msg)
}

// open does the version exchange and opens remote for reading.
func (s *sftpStream) open(remote string) (string, error) {
	at := s.packet(fxpInit)
	s.put32(3)
	s.end(at)
	at = s.packet(fxpOpen)
	s.nextID++
	openID := s.nextID
	s.put32(openID)
	s.putString(remote)
	s.put32(fxfRead)
	s.put32(0) // no attributes
	s.end(at)
	if err := s.flush(); err != nil {
		return "", err
	}
	rest, typ, _, err := s.reply(false)
	if err != nil {
		return "", err
	}
	if typ != fxpVersion {
		return "", fmt.Errorf("sftp: reply of type %d to init", typ)
	}
	if _, err := s.body(rest); err != nil { // version and extensions
		return "", err
	}
	rest, typ, id, err := s.reply(true)
	if err != nil {
		return "", err
	}
	b, err := s.body(rest)
	switch {
	case err != nil:
		return "", err
	case id != openID:
		return "", fmt.Errorf("sftp: reply to request %d, expected %d", id, openID)
	case typ == fxpStatus:
		if err := status(b); err != nil {
			return "", err
		}
		return "", errors.New("sftp: open returned no handle")
	case typ != fxpHandle || len(b) < 4 || int64(binary.BigEndian.Uint32(b)) != int64(len(b)-4):
		return "", fmt.Errorf("sftp: reply of type %d to open", typ)
	}
	return string(b[4:]), nil
}

// copy opens remote and writes it to w from offset 0 to its end (see
// sftpStream).
func (s *sftpStream) copy(remote string, w io.Writer, h *asyncHash) (written int64, err error) {
	handle, err := s.open(remote)
	if err != nil {
		// Nothing is written yet: pkg/sftp's client, which opened the
		// file, can still read it.
		return 0, fmt.Errorf("%w: %v", errNoStream, err)
	}
	// Buffers come back from the hash's goroutine once hashed. The queue
	// holds at most streamInFlight, read into or waiting for an earlier
	// one, and the hash's channel a few more; maxBufs leaves room for
	// both, so that getBuf does not wait for long, if at all.
	const maxBufs = streamInFlight + 2*streamBatch
	free := make(chan []byte, maxBufs)
	nbufs := 0
	getBuf := func() []byte {
		select {
		case b := <-free:
			return b
		default:
		}
		if nbufs < maxBufs {
			nbufs++
			return make([]byte, streamReadLen)
		}
		return <-free
	}
	var queue []*segment // in file order; queue[0] is written next
	byID := make(map[uint32]*segment, streamInFlight)
	read := func(off int64, n int) *segment {
		s.nextID++
		seg := &segment{id: s.nextID, off: off, len: n, buf: getBuf()}
		at := s.packet(fxpRead)
		s.put32(seg.id)
		s.putString(handle)
		s.out = binary.BigEndian.AppendUint64(s.out, uint64(off))
		s.put32(uint32(n))
		s.end(at)
		byID[seg.id] = seg
		return seg
	}
	readLen := streamReadLen // lowered to what a server returns, if less
	var next int64           // offset of the next read to send
	atEnd := false           // an end-of-file reply has come: send no more reads
	for {
		if !atEnd && len(queue) <= streamInFlight-streamBatch {
			for len(queue) < streamInFlight {
				queue = append(queue, read(next, readLen))
				next += int64(readLen)
			}
		}
		if err := s.flush(); err != nil {
			return written, err
		}
		rest, typ, id, err := s.reply(true)
		if err != nil {
			return written, err
		}
		seg := byID[id]
		if seg == nil {
			return written, fmt.Errorf("sftp: reply to request %d, which is not pending", id)
		}
		delete(byID, id)
		seg.done = true
		switch typ {
		case fxpData:
			if rest < 4 {
				return written, fmt.Errorf("sftp: data reply of %d bytes", rest)
			}
			if _, err := io.ReadFull(s.r, s.hdr[:4]); err != nil {
				return written, fmt.Errorf("sftp: reading a reply: %w", noEOF(err))
			}
			n := binary.BigEndian.Uint32(s.hdr[:4])
			if n != rest-4 || int64(n) > int64(seg.len) {
				return written, fmt.Errorf("sftp: %d bytes of data in a reply of %d to a read of %d", n, rest, seg.len)
			}
			if _, err := io.ReadFull(s.r, seg.buf[:n]); err != nil {
				return written, fmt.Errorf("sftp: reading a reply: %w", noEOF(err))
			}
			seg.n = int(n)
			if seg.n < seg.len && seg.n >= minReadLen {
				// The server's limit (older OpenSSH returns 64 KiB),
				// or the end of the file: ask for no more than that from
				// now on, so that only the reads in flight need their
				// rest asked for, one by one, at the head of the queue.
				readLen = min(readLen, seg.n)
			}
		case fxpStatus:
			b, err := s.body(rest)
			if err != nil {
				return written, err
			}
			if len(b) >= 4 && binary.BigEndian.Uint32(b) == fxEOF {
				seg.eof, atEnd = true, true
				break
			}
			if err := status(b); err != nil {
				return written, err
			}
			return written, fmt.Errorf("sftp: read at %d answered with no data", seg.off)
		default:
			return written, fmt.Errorf("sftp: reply of type %d to a read", typ)
		}
		for len(queue) > 0 && queue[0].done {
			seg := queue[0]
			if seg.n > 0 {
				n, err := w.Write(seg.buf[:seg.n])
				written += int64(n)
				if err != nil {
					return written, err
				}
			}
			buf := seg.buf
			h.then(func() { free <- buf })
			if seg.eof {
				return written, nil
			}
			if seg.n < seg.len {
				// Ask for the rest of this one before those after it.
				queue[0] = read(seg.off+int64(seg.n), seg.len-seg.n)
				continue
			}
			queue[0] = nil
			queue = queue[1:]
		}
	}
}
