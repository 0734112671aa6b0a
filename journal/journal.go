// Package journal owns clustertx's persistent state between runs: the resume
// journal (the outcome per source-file version, the temp files that may exist
// somewhere, the per-host encode speeds observed so far, and the result of
// each host's test encode of each encoder variant) and the run lock that
// keeps two runs off the same journal.
//
// # Storage
//
// The journal is an append-only JSON-lines file (default
// $XDG_STATE_HOME/clustertx/journal.jsonl, see [DefaultPath]). Every line is
// one self-contained record carrying "v":1 and a "type" ("entry", "temp",
// "temp_done", "speed", "encoder_test"), so `cat`, `grep` and `jq` work on it. A record is
// written with a single write(2) of the whole line including its '\n', then
// fsync(2)'d, before the call that wrote it returns. Replay applies the lines
// in order; the last record for a key wins.
//
// # What survives kill -9 (or a crash) at any instant
//
//   - Every record whose Record/AddTemp/DoneTemp/RecordSpeed/RecordEncoderTest call returned nil
//     is on disk (fsync before return) and is seen by the next Open.
//   - A kill in the middle of an append leaves at most one incomplete last
//     line (no trailing '\n', or not valid JSON). Open detects it, drops it
//     and truncates the file to the end of the last good record before
//     anything else is appended, so a torn record can never swallow a later
//     one. The dropped record is one whose call never returned nil.
//   - Temp files are announced with AddTemp (fsync'd) BEFORE they are created
//     and retired with DoneTemp only AFTER they are gone, so a temp file that
//     exists after a kill is always among [Journal.PendingTemps] — on the
//     manager or on a remote host — and the next run can remove it.
//   - Compaction writes a complete new file next to the journal
//     (path+".compact"), fsyncs it, renames it over the journal and fsyncs the
//     directory. A kill before the rename leaves the old journal intact (the
//     leftover .compact file is removed by the next Open); after it, the new
//     one is complete. Nothing else is ever rewritten in place.
//   - The lock is flock(2) on path+".lock", so the kernel releases it when the
//     holder dies, however it dies: no stale lock after kill -9. The lock file
//     itself is never deleted (deleting flock files races with other openers);
//     it holds the holder's pid, host and start time for the error message.
//
// An invalid line in the middle of the file (a hand edit, say) is skipped and
// reported in [Journal.Warnings]; records with a version above 1 (written by a
// newer clustertx) are ignored but kept verbatim through compaction. If a
// write or fsync fails, the partial line is truncated away; if even that is
// impossible the Journal refuses all further writes rather than risk gluing
// records together.
//
// # The life of a source version
//
// A version is a path with a size and mtime (the Key), plus its device,
// inode and ctime where the platform has them (see package fileid). Its
// record moves through these states; the last record for a Key wins:
//
//	(none) seen, planned, encoding — in flight; its temp files are records of their own
//	  │
//	  ├─ skipped            a rule said SKIP
//	  ├─ failed             encode or verification failed (Attempts counts runs)
//	  ├─ kept               kept-original: the threshold was not met, nothing replaced
//	  ├─ changed            the source was not the probed version any more at a
//	  │                     point of no return; the output was discarded
//	  ├─ kept-copy          -k: Output is a verified copy, the source is never touched
//	  └─ (output verified; the Output file gets its own record, state "output")
//	       ├─ in place (a.mkv → a.mkv): renamed over the source ─→ done
//	       └─ new name (a.mp4 → a.mkv): replacing ─→ output linked into place,
//	                                    source removed ─→ done
//
// What a later run may do with each:
//
//   - replacing: the only state in which a run removes a source it did not
//     encode itself, and only when the file at Key.Path is still exactly the
//     recorded version (size, mtime, device, inode, ctime) and the file at
//     Output is still the output record's file. Anything else (a restored
//     copy, a new version, a changed output) is left alone and reported.
//     Records from journals older than the inode fields never qualify.
//   - done, kept-copy: the version is finished; a file with this Key found
//     again (an original restored from a backup with its mtime) is skipped
//     and reported, never removed. --force encodes it again.
//   - output: a file clustertx wrote (including -k copies); it is not
//     transcoded again unless --force.
//   - kept, skipped: skipped until --force; failed: retried until
//     --max-failed-runs; changed: the version is gone, a file with this Key
//     is encoded as new.
//
// # Encoder variant tests
//
// An "encoder_test" record is what one host's test encode of one encoder
// variant gave (see [EncoderTest]): keyed by host and the variant's
// signature (its encoder and input/video arguments), with the ffmpeg
// version it ran on. The last record per key wins. [Journal.EncoderTest]
// answers only for the same ffmpeg version, so an upgraded ffmpeg (or
// driver package that ships one) is tested again; a failure is also
// forgotten after [EncoderTestFailTTL], so hardware that was missing for a
// while (a driver not loaded yet) is tried again.
//
// The journal does not decide policy: callers compare an Entry's Outcome and
// Attempts with --force and --max-attempts themselves, and remove pending
// temps (locally or over SSH) before calling DoneTemp.
package journal

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"clustertx/internal/fileid"
)

// Version is the record format written by this package (the "v" field).
const Version = 1

// Outcome is the state a source-file version (or an output) is in; see
// "The life of a source version" in the package doc.
type Outcome string

// States of a version. An Entry with Outcome Output describes a file
// clustertx wrote, not a source.
const (
	Done      Outcome = "done"      // replaced: the verified Output took the source's place (or its name)
	Kept      Outcome = "kept"      // kept-original: encoded, but the threshold was not met
	KeptCopy  Outcome = "kept-copy" // -k: Output is a verified copy; the source is never touched
	Replacing Outcome = "replacing" // the replace of this version into Output started and did not finish
	Changed   Outcome = "changed"   // the source changed during the encode; the output was discarded
	Failed    Outcome = "failed"    // Entry.Reason, Entry.Attempts
	Skipped   Outcome = "skipped"   // skipped by a rule
	Output    Outcome = "output"    // this file was written by clustertx from Entry.Source
)

func (o Outcome) valid() bool {
	switch o {
	case Done, Kept, KeptCopy, Replacing, Changed, Failed, Skipped, Output:
		return true
	}
	return false
}

// Key identifies one version of a source file: its absolute path, size and
// modification time. A file that changes gets a new Key.
type Key struct {
	Path    string
	Size    int64
	MtimeNs int64
}

// KeyOf returns the Key of the file at path as it is now: the absolute,
// cleaned path (symlinks are not resolved) and os.Stat's size and mtime.
func KeyOf(path string) (Key, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Key{}, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return Key{}, err
	}
	return Key{Path: abs, Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}, nil
}

// Entry is the recorded state of a source-file version (or of an output).
type Entry struct {
	Key
	Outcome  Outcome
	Output   string // Done, KeptCopy, Replacing, Kept: the output path
	Source   string // Output: the source it was encoded from
	Reason   string // Failed: why; Skipped: which rule
	Host     string
	Profile  string
	Attempts int       // Failed: attempts so far (the caller accumulates them)
	Time     time.Time // zero: set to now by Record
	Quality  *Quality  // files with a quality target: what the search chose

	// The version's device, inode and inode change time, where the platform
	// has them (zero: unknown). Replacing records carry them: resume removes
	// a source only while it is still exactly this file.
	Dev, Ino uint64
	CtimeNs  int64
}

// HasInode reports whether the entry knows its file's device and inode.
func (e Entry) HasInode() bool { return e.Dev != 0 || e.Ino != 0 }

// Version is the identity the entry records for its file.
func (e Entry) Version() fileid.ID {
	return fileid.ID{Path: e.Path, Size: e.Size, MtimeNs: e.MtimeNs, Dev: e.Dev, Ino: e.Ino, CtimeNs: e.CtimeNs}
}

// KeyOfID is the journal key of a file version.
func KeyOfID(id fileid.ID) Key { return Key{Path: id.Path, Size: id.Size, MtimeNs: id.MtimeNs} }

// WithVersion returns e with the key and identity of version id.
func (e Entry) WithVersion(id fileid.ID) Entry {
	e.Key = KeyOfID(id)
	e.Dev, e.Ino, e.CtimeNs = id.Dev, id.Ino, id.CtimeNs
	return e
}

// Temp is a temporary file that may exist: announced before it is created,
// retired (DoneTemp) after it has been renamed into place or deleted.
type Temp struct {
	ID   string // unique; see NewTempID
	Host string // "" = the manager itself
	Path string
	Time time.Time // zero: set to now by AddTemp
}

// NewTempID returns a random ID for a Temp. It is also suitable as part of
// the temp file's name, which then cannot collide with a leftover.
func NewTempID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("journal: closed")

// ErrReadOnly is returned by writes to a journal opened with OpenReadOnly.
var ErrReadOnly = errors.New("journal: opened read-only")

// Compaction trigger for Open: the log has more than compactMinLines lines
// and more than compactRatio times the live records.
const (
	compactMinLines = 1000
	compactRatio    = 4
	maxWarnings     = 20
	speedAlpha      = 0.3 // EWMA weight of a new speed observation (after warm-up)
)

// DefaultPath is $XDG_STATE_HOME/clustertx/journal.jsonl, or
// ~/.local/state/clustertx/journal.jsonl when XDG_STATE_HOME is unset or not
// absolute (as the XDG spec requires). It is "" when neither is known; Open("")
// fails with a message saying so.
func DefaultPath() string {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "clustertx", "journal.jsonl")
	}
	if runtime.GOOS == "windows" { // %LocalAppData%, where Windows programs keep state
		if d, err := os.UserCacheDir(); err == nil {
			return filepath.Join(d, "clustertx", "journal.jsonl")
		}
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".local", "state", "clustertx", "journal.jsonl")
}

// Journal is an open, locked journal. Its methods are safe for concurrent use.
type Journal struct {
	path string

	mu     sync.Mutex
	f      *os.File // the log, O_APPEND; nil after Close
	lock   *os.File
	size   int64 // bytes of good records in f
	lines  int   // lines in f (records plus skipped ones)
	broken error // a write could not be undone: refuse further writes

	readOnly bool // OpenReadOnly: no lock, no file kept open, no writes

	seq     uint64
	entries map[Key]seqEntry
	byPath  map[string]Key
	temps   map[string]seqTemp
	speeds  map[string]map[string]speedState
	tests   map[testKey]EncoderTest
	opaque  [][]byte // lines from a newer version, kept verbatim

	warnings []string
	dropped  int // warnings not kept beyond maxWarnings
}

type seqEntry struct {
	e   Entry
	seq uint64
}

type seqTemp struct {
	t   Temp
	seq uint64
}

type speedState struct {
	speed float64 // smoothed
	obs   float64 // last observation
	n     int     // observations so far
	time  time.Time
}

// Open opens (creating it and its directories if needed) and locks the
// journal at path, then replays it. If another process holds the lock it
// returns a *LockedError at once. A torn last line is dropped and the file
// truncated; other problems become Warnings. Leftovers of an interrupted
// compaction are removed, and the log is compacted when it has grown well
// past its live records.
func Open(path string) (*Journal, error) {
	if path == "" {
		return nil, errors.New("journal: no path (neither XDG_STATE_HOME nor HOME is set; give the journal path explicitly)")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	path = abs
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	lock, err := acquireLock(path)
	if err != nil {
		return nil, err
	}
	j := &Journal{
		path:    path,
		lock:    lock,
		entries: map[Key]seqEntry{},
		byPath:  map[string]Key{},
		temps:   map[string]seqTemp{},
		speeds:  map[string]map[string]speedState{},
		tests:   map[testKey]EncoderTest{},
	}
	if err := j.open(); err != nil {
		if j.f != nil {
			j.f.Close()
		}
		releaseLock(lock)
		return nil, err
	}
	return j, nil
}

// OpenReadOnly reads the journal at path without locking or changing it,
// for --dry-run: a dry run may look while a real run holds the lock. A
// missing file is an empty journal (nothing is created). A torn last line —
// a record being appended right now — is left out of the view, not
// truncated; nothing is compacted. Writes return ErrReadOnly.
func OpenReadOnly(path string) (*Journal, error) {
	if path == "" {
		return nil, errors.New("journal: no path (neither XDG_STATE_HOME nor HOME is set; give the journal path explicitly)")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	j := &Journal{
		path:     abs,
		readOnly: true,
		entries:  map[Key]seqEntry{},
		byPath:   map[string]Key{},
		temps:    map[string]seqTemp{},
		speeds:   map[string]map[string]speedState{},
		tests:    map[testKey]EncoderTest{},
	}
	f, err := os.Open(abs)
	if errors.Is(err, os.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	if _, err := j.replay(f); err != nil {
		return nil, fmt.Errorf("journal %s: %w", abs, err)
	}
	return j, nil
}

func (j *Journal) open() error {
	// We hold the lock, so a compaction file can only be a leftover.
	if err := os.Remove(j.compactPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("journal: removing leftover %s: %w", j.compactPath(), err)
	}
	_, statErr := os.Stat(j.path)
	created := errors.Is(statErr, os.ErrNotExist)
	f, err := os.OpenFile(j.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	j.f = f
	if created {
		if err := syncDir(filepath.Dir(j.path)); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	good, err := j.replay(f)
	if err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if fi.Size() > good {
		if err := f.Truncate(good); err != nil {
			return fmt.Errorf("journal %s: truncating torn tail: %w", j.path, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("journal %s: %w", j.path, err)
		}
	}
	j.size = good
	if j.lines > compactMinLines && j.lines > compactRatio*j.live() {
		if err := j.compactLocked(); err != nil {
			j.warn("compaction failed (the journal is still good): %v", err)
		}
	}
	return nil
}

// Path returns the journal's absolute path.
func (j *Journal) Path() string { return j.path }

func (j *Journal) compactPath() string { return j.path + ".compact" }

// Warnings returns what Open found and tolerated: skipped lines, a dropped
// torn tail, records from a newer version, a failed compaction.
func (j *Journal) Warnings() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	w := append([]string(nil), j.warnings...)
	if j.dropped > 0 {
		w = append(w, fmt.Sprintf("… and %d more", j.dropped))
	}
	return w
}

func (j *Journal) warn(format string, args ...any) {
	if len(j.warnings) >= maxWarnings {
		j.dropped++
		return
	}
	j.warnings = append(j.warnings, fmt.Sprintf("journal %s: ", j.path)+fmt.Sprintf(format, args...))
}

func (j *Journal) live() int {
	n := len(j.entries) + len(j.temps) + len(j.opaque) + len(j.tests)
	for _, m := range j.speeds {
		n += len(m)
	}
	return n
}

// replay reads every line, applies the good ones and returns the offset just
// after the last line that is a complete JSON record: everything after it is
// a torn tail to be truncated.
func (j *Journal) replay(f *os.File) (int64, error) {
	r := bufio.NewReaderSize(f, 64<<10)
	var off, good int64
	var tail []string // invalid lines after the last good one
	lineNo := 0
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			lineNo++
			off += int64(len(line))
			complete := line[len(line)-1] == '\n'
			if !complete {
				tail = append(tail, fmt.Sprintf("line %d (no newline): %s", lineNo, excerpt(line)))
			} else if problem, ok := j.apply(line); !ok {
				tail = append(tail, fmt.Sprintf("line %d: %s", lineNo, problem))
			} else {
				// Invalid lines followed by a good one are in the middle.
				for _, t := range tail {
					j.warn("skipped invalid %s", t)
				}
				tail = tail[:0]
				good = off
				j.lines = lineNo
				if problem != "" {
					j.warn("line %d: %s", lineNo, problem)
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	for _, t := range tail {
		j.warn("dropped torn/invalid tail %s", t)
	}
	return good, nil
}

func excerpt(b []byte) string {
	b = bytes.TrimRight(b, "\n")
	if len(b) > 80 {
		return strconv.Quote(string(b[:80])) + "…"
	}
	return strconv.Quote(string(b))
}

type header struct {
	V    int    `json:"v"`
	Type string `json:"type"`
}

// apply decodes one complete line. ok is false when the line is not a JSON
// record at all (a candidate torn tail); a record that is JSON but unusable is
// ok with a problem to warn about.
func (j *Journal) apply(line []byte) (problem string, ok bool) {
	var h header
	if err := json.Unmarshal(line, &h); err != nil {
		return fmt.Sprintf("not JSON (%v): %s", err, excerpt(line)), false
	}
	if h.V < 1 {
		return fmt.Sprintf("no version field: %s", excerpt(line)), false
	}
	if h.V > Version {
		j.opaque = append(j.opaque, append([]byte(nil), line...))
		return fmt.Sprintf("record of version %d (newer clustertx?) ignored, kept as is", h.V), true
	}
	var err error
	switch h.Type {
	case "entry":
		var r entryRec
		if err = json.Unmarshal(line, &r); err == nil {
			var e Entry
			if e, err = r.entry(); err == nil {
				j.applyEntry(e)
			}
		}
	case "temp":
		var r tempRec
		if err = json.Unmarshal(line, &r); err == nil {
			var t Temp
			if t, err = r.temp(); err == nil {
				j.applyTemp(t)
			}
		}
	case "temp_done":
		var r tempDoneRec
		if err = json.Unmarshal(line, &r); err == nil {
			if r.ID == "" {
				err = errors.New("temp_done without id")
			} else {
				delete(j.temps, r.ID)
			}
		}
	case "speed":
		var r speedRec
		if err = json.Unmarshal(line, &r); err == nil {
			if err = r.check(); err == nil {
				j.applySpeed(r)
			}
		}
	case "encoder_test":
		var r encoderTestRec
		if err = json.Unmarshal(line, &r); err == nil {
			if r.Host == "" || r.Sig == "" {
				err = errors.New("encoder_test without host or sig")
			} else {
				j.tests[testKey{r.Host, r.Sig}] = r.EncoderTest
			}
		}
	default:
		j.opaque = append(j.opaque, append([]byte(nil), line...))
		return fmt.Sprintf("unknown record type %q ignored, kept as is", h.Type), true
	}
	if err != nil {
		return fmt.Sprintf("skipped %s record: %v", h.Type, err), true
	}
	return "", true
}

func (j *Journal) applyEntry(e Entry) {
	j.seq++
	j.entries[e.Key] = seqEntry{e, j.seq}
	j.byPath[e.Path] = e.Key
}

func (j *Journal) applyTemp(t Temp) {
	j.seq++
	j.temps[t.ID] = seqTemp{t, j.seq}
}

func (j *Journal) applySpeed(r speedRec) {
	m := j.speeds[r.Host]
	if m == nil {
		m = map[string]speedState{}
		j.speeds[r.Host] = m
	}
	m[r.Profile] = speedState{speed: r.Speed, obs: r.Obs, n: r.N, time: r.Time}
}

// Lookup returns the latest entry for exactly this version of the file.
func (j *Journal) Lookup(k Key) (Entry, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	s, ok := j.entries[k]
	return s.e, ok
}

// LookupPath returns the latest entry for path, whatever its size and mtime
// were (e.g. to report "already done" for a file replaced by its output).
func (j *Journal) LookupPath(path string) (Entry, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	k, ok := j.byPath[path]
	if !ok {
		return Entry{}, false
	}
	return j.entries[k].e, true
}

// Record appends e and fsyncs it before returning. A zero Time is set to now.
func (j *Journal) Record(e Entry) error {
	if e.Path == "" {
		return errors.New("journal: Record: empty path")
	}
	if !e.Outcome.valid() {
		return fmt.Errorf("journal: Record: invalid outcome %q", e.Outcome)
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.Round(0)
	line, err := marshalLine(entryRecOf(e))
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.appendLocked(line); err != nil {
		return err
	}
	j.applyEntry(e)
	return nil
}

// AddTemp records that t.Path on t.Host may exist from now on. Call it, and
// let it return, BEFORE creating the file. IDs must be unique among pending
// temps (NewTempID).
func (j *Journal) AddTemp(t Temp) error {
	if t.ID == "" || t.Path == "" {
		return errors.New("journal: AddTemp: empty id or path")
	}
	if t.Time.IsZero() {
		t.Time = time.Now()
	}
	t.Time = t.Time.Round(0)
	line, err := marshalLine(tempRecOf(t))
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, dup := j.temps[t.ID]; dup {
		return fmt.Errorf("journal: AddTemp: id %q is already pending", t.ID)
	}
	if err := j.appendLocked(line); err != nil {
		return err
	}
	j.applyTemp(t)
	return nil
}

// DoneTemp records that the temp is gone. Call it only AFTER the file has
// been renamed into place or deleted (or found absent). Unknown IDs are
// not an error.
func (j *Journal) DoneTemp(id string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.temps[id]; !ok {
		if j.f == nil {
			return ErrClosed
		}
		return nil
	}
	line, err := marshalLine(tempDoneRec{V: Version, Type: "temp_done", ID: id, Time: time.Now().Round(0)})
	if err != nil {
		return err
	}
	if err := j.appendLocked(line); err != nil {
		return err
	}
	delete(j.temps, id)
	return nil
}

// PendingTemps returns the temps added and not yet done, oldest first: at
// the start of a run, the leftovers of a run that was killed. Remove each
// (on its host) and then call DoneTemp.
func (j *Journal) PendingTemps() []Temp {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := make([]seqTemp, 0, len(j.temps))
	for _, t := range j.temps {
		s = append(s, t)
	}
	sort.Slice(s, func(a, b int) bool { return s[a].seq < s[b].seq })
	out := make([]Temp, len(s))
	for i, t := range s {
		out[i] = t.t
	}
	return out
}

// RecordSpeed records an observed encode speed (seconds of media per second
// of wall time) of host with profile and updates its smoothed value: the mean
// of the first observations, then an exponentially weighted moving average
// giving each new observation a weight of 0.3.
func (j *Journal) RecordSpeed(host, profile string, mediaSecPerSec float64) error {
	if host == "" || profile == "" {
		return errors.New("journal: RecordSpeed: empty host or profile")
	}
	if !(mediaSecPerSec > 0) || math.IsInf(mediaSecPerSec, 0) {
		return fmt.Errorf("journal: RecordSpeed: invalid speed %v", mediaSecPerSec)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	prev := j.speeds[host][profile]
	n := prev.n + 1
	w := math.Max(1/float64(n), speedAlpha)
	r := speedRec{
		V: Version, Type: "speed", Host: host, Profile: profile,
		Obs:   mediaSecPerSec,
		Speed: prev.speed + w*(mediaSecPerSec-prev.speed),
		N:     n,
		Time:  time.Now().Round(0),
	}
	line, err := marshalLine(r)
	if err != nil {
		return err
	}
	if err := j.appendLocked(line); err != nil {
		return err
	}
	j.applySpeed(r)
	return nil
}

// Speeds returns a copy of the smoothed speeds: host → profile → media
// seconds per second.
func (j *Journal) Speeds() map[string]map[string]float64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make(map[string]map[string]float64, len(j.speeds))
	for h, m := range j.speeds {
		out[h] = make(map[string]float64, len(m))
		for p, s := range m {
			out[h][p] = s.speed
		}
	}
	return out
}

// EncoderTest is the result of one host's test encode of one encoder
// variant.
type EncoderTest struct {
	Host    string    `json:"host"`
	Sig     string    `json:"sig"`     // the variant's signature: encoder, input and video arguments
	Encoder string    `json:"encoder"` // for people reading the journal
	FFmpeg  string    `json:"ffmpeg"`  // the host's ffmpeg version it ran on (first line of ffmpeg -version)
	OK      bool      `json:"ok"`
	Reason  string    `json:"reason,omitempty"` // why it failed: ffmpeg's stderr line
	Time    time.Time `json:"time"`
}

// EncoderTestFailTTL is how long a failed test is believed: after it the
// variant is tested again even on the same ffmpeg.
const EncoderTestFailTTL = 7 * 24 * time.Hour

type testKey struct{ host, sig string }

type encoderTestRec struct {
	V    int    `json:"v"`
	Type string `json:"type"`
	EncoderTest
}

// RecordEncoderTest records the result of a test encode (the last one per
// host and signature wins).
func (j *Journal) RecordEncoderTest(t EncoderTest) error {
	if t.Host == "" || t.Sig == "" {
		return errors.New("journal: RecordEncoderTest: empty host or signature")
	}
	if t.Time.IsZero() {
		t.Time = time.Now()
	}
	t.Time = t.Time.Round(0)
	j.mu.Lock()
	defer j.mu.Unlock()
	line, err := marshalLine(encoderTestRec{V: Version, Type: "encoder_test", EncoderTest: t})
	if err != nil {
		return err
	}
	if err := j.appendLocked(line); err != nil {
		return err
	}
	j.tests[testKey{t.Host, t.Sig}] = t
	return nil
}

// EncoderTest returns the remembered test of the variant with signature
// sig on host, if it ran on the same ffmpeg version (a different version,
// or a failure older than EncoderTestFailTTL at now, is no answer: test
// again).
func (j *Journal) EncoderTest(host, sig, ffmpeg string, now time.Time) (EncoderTest, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	t, ok := j.tests[testKey{host, sig}]
	if !ok || t.FFmpeg != ffmpeg || ffmpeg == "" {
		return EncoderTest{}, false
	}
	if !t.OK && now.Sub(t.Time) > EncoderTestFailTTL {
		return EncoderTest{}, false
	}
	return t, true
}

// appendLocked writes one line and fsyncs it. On failure it truncates the
// partial line away; if it cannot, the journal refuses further writes.
func (j *Journal) appendLocked(line []byte) error {
	if j.readOnly {
		return ErrReadOnly
	}
	if j.f == nil {
		return ErrClosed
	}
	if j.broken != nil {
		return fmt.Errorf("journal %s: unusable after an earlier write error: %w", j.path, j.broken)
	}
	if _, err := j.f.Write(line); err != nil {
		if terr := j.f.Truncate(j.size); terr != nil {
			j.broken = err
		}
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		// After a failed fsync the page cache cannot be trusted (the line may
		// or may not reach the disk): stop writing.
		j.broken = err
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	j.size += int64(len(line))
	j.lines++
	return nil
}

// Compact rewrites the journal atomically with only the live records: the
// latest entry per Key (in their original order), pending temps, the speeds,
// and records of newer versions verbatim. Lookups answer the same before and
// after. Open calls it when the log has grown past 4× its live records.
func (j *Journal) Compact() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.readOnly {
		return ErrReadOnly
	}
	if j.f == nil {
		return ErrClosed
	}
	return j.compactLocked()
}

func (j *Journal) compactLocked() error {
	if j.broken != nil {
		return fmt.Errorf("journal %s: unusable after an earlier write error: %w", j.path, j.broken)
	}
	var buf bytes.Buffer
	lines := 0
	add := func(v any) error {
		line, err := marshalLine(v)
		if err != nil {
			return err
		}
		buf.Write(line)
		lines++
		return nil
	}
	es := make([]seqEntry, 0, len(j.entries))
	for _, e := range j.entries {
		es = append(es, e)
	}
	sort.Slice(es, func(a, b int) bool { return es[a].seq < es[b].seq })
	for _, e := range es {
		if err := add(entryRecOf(e.e)); err != nil {
			return err
		}
	}
	ts := make([]seqTemp, 0, len(j.temps))
	for _, t := range j.temps {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(a, b int) bool { return ts[a].seq < ts[b].seq })
	for _, t := range ts {
		if err := add(tempRecOf(t.t)); err != nil {
			return err
		}
	}
	hosts := make([]string, 0, len(j.speeds))
	for h := range j.speeds {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		profiles := make([]string, 0, len(j.speeds[h]))
		for p := range j.speeds[h] {
			profiles = append(profiles, p)
		}
		sort.Strings(profiles)
		for _, p := range profiles {
			s := j.speeds[h][p]
			if err := add(speedRec{V: Version, Type: "speed", Host: h, Profile: p, Obs: s.obs, Speed: s.speed, N: s.n, Time: s.time}); err != nil {
				return err
			}
		}
	}
	tks := make([]testKey, 0, len(j.tests))
	for k := range j.tests {
		tks = append(tks, k)
	}
	sort.Slice(tks, func(a, b int) bool {
		if tks[a].host != tks[b].host {
			return tks[a].host < tks[b].host
		}
		return tks[a].sig < tks[b].sig
	})
	for _, k := range tks {
		if err := add(encoderTestRec{V: Version, Type: "encoder_test", EncoderTest: j.tests[k]}); err != nil {
			return err
		}
	}
	for _, o := range j.opaque {
		buf.Write(o)
		lines++
	}

	tmp := j.compactPath()
	_ = os.Remove(tmp)
	nf, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: compact: %w", err)
	}
	fail := func(err error) error {
		nf.Close()
		os.Remove(tmp)
		return fmt.Errorf("journal: compact: %w", err)
	}
	if _, err := nf.Write(buf.Bytes()); err != nil {
		return fail(err)
	}
	if err := nf.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fail(err)
	}
	// From here the path names the new file: append to it whatever happens.
	old := j.f
	j.f, j.size, j.lines = nf, int64(buf.Len()), lines
	old.Close()
	if err := syncDir(filepath.Dir(j.path)); err != nil {
		return fmt.Errorf("journal: compact: %w", err)
	}
	return nil
}

// Close releases the lock. Every record is already on disk. Closing a
// read-only journal does nothing.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.readOnly {
		return nil
	}
	if j.f == nil {
		return ErrClosed
	}
	err := j.f.Close()
	j.f = nil
	if lerr := releaseLock(j.lock); err == nil {
		err = lerr
	}
	j.lock = nil
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ---- wire format ----

func marshalLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return append(b, '\n'), nil
}

// pathStr is a file path on the wire: a JSON string when it is valid UTF-8,
// else {"b64": "..."} so that no byte of a non-UTF-8 file name is lost
// (encoding/json would replace it with U+FFFD and the file would never match
// again).
type pathStr string

func (p pathStr) MarshalJSON() ([]byte, error) {
	if utf8.ValidString(string(p)) {
		return json.Marshal(string(p))
	}
	return json.Marshal(struct {
		B64 string `json:"b64"`
	}{base64.StdEncoding.EncodeToString([]byte(p))})
}

func (p *pathStr) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		var o struct {
			B64 string `json:"b64"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		raw, err := base64.StdEncoding.DecodeString(o.B64)
		if err != nil {
			return err
		}
		*p = pathStr(raw)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*p = pathStr(s)
	return nil
}

type entryRec struct {
	V        int       `json:"v"`
	Type     string    `json:"type"`
	Path     pathStr   `json:"path"`
	Size     int64     `json:"size"`
	MtimeNs  int64     `json:"mtime_ns"`
	Outcome  Outcome   `json:"outcome"`
	Output   pathStr   `json:"output,omitempty"`
	Source   pathStr   `json:"source,omitempty"`
	Dev      uint64    `json:"dev,omitempty"`
	Ino      uint64    `json:"ino,omitempty"`
	CtimeNs  int64     `json:"ctime_ns,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Host     string    `json:"host,omitempty"`
	Profile  string    `json:"profile,omitempty"`
	Attempts int       `json:"attempts,omitempty"`
	Time     time.Time `json:"time"`
	Quality  *Quality  `json:"quality,omitempty"`
}

// Quality is what a quality search chose for a file (issue 17): the level,
// what it predicted, and what the search cost.
type Quality struct {
	Metric         string  `json:"metric"`
	Target         float64 `json:"target"`
	Option         string  `json:"option,omitempty"` // "-crf"; empty when no level met the target
	Level          float64 `json:"level,omitempty"`
	PredictedScore float64 `json:"predicted_score,omitempty"`
	PredictedBytes int64   `json:"predicted_bytes,omitempty"`
	SampleEncodes  int     `json:"sample_encodes"`
	SearchSeconds  float64 `json:"search_seconds"`
	MeasuredScore  float64 `json:"measured_score,omitempty"` // the finished file's, on the samples' stretches; 0: not measured
}

func entryRecOf(e Entry) entryRec {
	return entryRec{
		V: Version, Type: "entry",
		Path: pathStr(e.Path), Size: e.Size, MtimeNs: e.MtimeNs,
		Outcome: e.Outcome, Output: pathStr(e.Output), Source: pathStr(e.Source),
		Dev: e.Dev, Ino: e.Ino, CtimeNs: e.CtimeNs, Reason: e.Reason,
		Host: e.Host, Profile: e.Profile, Attempts: e.Attempts, Time: e.Time, Quality: e.Quality,
	}
}

func (r entryRec) entry() (Entry, error) {
	if r.Path == "" {
		return Entry{}, errors.New("empty path")
	}
	if !r.Outcome.valid() {
		return Entry{}, fmt.Errorf("invalid outcome %q", r.Outcome)
	}
	e := Entry{
		Key:     Key{Path: string(r.Path), Size: r.Size, MtimeNs: r.MtimeNs},
		Outcome: r.Outcome, Output: string(r.Output), Source: string(r.Source),
		Dev: r.Dev, Ino: r.Ino, CtimeNs: r.CtimeNs, Reason: r.Reason,
		Host: r.Host, Profile: r.Profile, Attempts: r.Attempts, Time: r.Time, Quality: r.Quality,
	}
	// Journals written before the lifecycle had states of its own said
	// "done" for three things; the reason tells them apart.
	if e.Outcome == Done {
		switch e.Reason {
		case legacyOutputReason:
			e.Outcome = Output
		case legacyReplacingReason:
			e.Outcome = Replacing // without an inode: resume never removes the source
		}
	}
	return e, nil
}

// Reasons that marked states in journals of earlier versions.
const (
	legacyOutputReason    = "output of clustertx"
	legacyReplacingReason = "output in place; source to be removed"
)

type tempRec struct {
	V    int       `json:"v"`
	Type string    `json:"type"`
	ID   string    `json:"id"`
	Host string    `json:"host,omitempty"`
	Path pathStr   `json:"path"`
	Time time.Time `json:"time"`
}

func tempRecOf(t Temp) tempRec {
	return tempRec{V: Version, Type: "temp", ID: t.ID, Host: t.Host, Path: pathStr(t.Path), Time: t.Time}
}

func (r tempRec) temp() (Temp, error) {
	if r.ID == "" || r.Path == "" {
		return Temp{}, errors.New("empty id or path")
	}
	return Temp{ID: r.ID, Host: r.Host, Path: string(r.Path), Time: r.Time}, nil
}

type tempDoneRec struct {
	V    int       `json:"v"`
	Type string    `json:"type"`
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
}

type speedRec struct {
	V       int       `json:"v"`
	Type    string    `json:"type"`
	Host    string    `json:"host"`
	Profile string    `json:"profile"`
	Obs     float64   `json:"obs"`   // this observation
	Speed   float64   `json:"speed"` // smoothed, including this observation
	N       int       `json:"n"`     // observations so far
	Time    time.Time `json:"time"`
}

func (r speedRec) check() error {
	if r.Host == "" || r.Profile == "" {
		return errors.New("empty host or profile")
	}
	if !(r.Speed > 0) || math.IsInf(r.Speed, 0) || r.N < 1 {
		return fmt.Errorf("invalid speed %v (n=%d)", r.Speed, r.N)
	}
	return nil
}
