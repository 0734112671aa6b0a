package hosts

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// hostileNames are the argument shapes every quoting function must survive.
var hostileNames = []struct{ name, arg string }{
	{"plain", "movie.mkv"},
	{"path", "/media/tv/Show/S01E01.mkv"},
	{"space", "my movie.mkv"},
	{"single-quote", "it's.mkv"},
	{"double-quote", `say "hi".mkv`},
	{"command-subst", "$(touch x).mkv"},
	{"backticks", "`id`.mkv"},
	{"semicolon", "a;rm -rf b"},
	{"ampersand", "a & b"},
	{"pipe", "a|b"},
	{"percent-path", "%PATH%"},
	{"percent-lone", "100%.mkv"},
	{"percent-double", "a%%b%c%"},
	{"bang", "!x!"},
	{"caret", "a^b"},
	{"parens-redirect", "(a)<b>c"},
	{"newline", "line1\nline2"},
	{"carriage-return", "a\rb"},
	{"tab", "a\tb"},
	{"leading-dash", "-i"},
	{"glob", "*?[a-z]"},
	{"tilde", "~root"},
	{"equals-first", "=ls"},
	{"key-value", "a=b"},
	{"braces", "{a,b}"},
	{"dollar-var", "$HOME"},
	{"backslash", `a\b`},
	{"trailing-backslash", `C:\dir\`},
	{"windows-path-spaces", `C:\Program Files\ffmpeg\bin\ffmpeg.exe`},
	{"unicode-e", "café.mkv"},
	{"unicode-cjk", "日本語.mkv"},
	{"emoji", "🎬 film.mkv"},
	{"non-utf8", "bad\xff\xfename.mkv"},
	{"empty", ""},
	{"hash", "#comment"},
	{"only-quote", "'"},
}

func goldenCompare(t *testing.T, file string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "quote", file)
	if os.Getenv("UPDATE") == "1" {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (regenerate with UPDATE=1 go test ./hosts -run Golden)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden (regenerate with UPDATE=1 after review):\n--- got\n%s\n--- want\n%s", p, got, want)
	}
}

// goldenValue writes v raw when that is unambiguous, else Go-quoted.
func goldenValue(b *bytes.Buffer, key, v string) {
	if utf8.ValidString(v) && !strings.ContainsAny(v, "\n\r") {
		fmt.Fprintf(b, "%s:  %s\n", key, v)
	} else {
		fmt.Fprintf(b, "%sq: %s\n", key, strconv.Quote(v))
	}
}

func TestQuotePOSIXGolden(t *testing.T) {
	var b bytes.Buffer
	for _, h := range hostileNames {
		fmt.Fprintf(&b, "# %s\nin:   %s\n", h.name, strconv.Quote(h.arg))
		goldenValue(&b, "out", QuotePOSIX(h.arg))
	}
	all := make([]string, 0, len(hostileNames))
	for _, h := range hostileNames {
		all = append(all, h.arg)
	}
	fmt.Fprintf(&b, "# all, as one argv\n")
	goldenValue(&b, "out", QuotePOSIX(all...))
	goldenCompare(t, "posix.golden", b.Bytes())
}

func TestQuoteCmdGolden(t *testing.T) {
	var b bytes.Buffer
	for _, h := range hostileNames {
		fmt.Fprintf(&b, "# %s\nin:   %s\n", h.name, strconv.Quote(h.arg))
		got, err := QuoteCmd("ffmpeg", h.arg)
		if err != nil {
			fmt.Fprintf(&b, "err:  %v\n", err)
			continue
		}
		goldenValue(&b, "out", got)
	}
	fmt.Fprintf(&b, "# program path needing quotes\n")
	got, err := QuoteCmd(`C:\Program Files\ffmpeg\bin\ffmpeg.exe`, "-i", `D:\in %x%\a b.mkv`)
	if err != nil {
		t.Fatal(err)
	}
	goldenValue(&b, "out", got)
	goldenCompare(t, "cmd.golden", b.Bytes())
}

// ------------------------------------------------------ POSIX word parser

// parsePOSIXWords splits a command line the way a POSIX shell would for
// the subset QuotePOSIX may produce, and fails on anything that would be
// subject to expansion or be an operator: unquoted characters must be
// "safe" (or '=' not at the start of a word).
func parsePOSIXWords(s string) ([]string, error) {
	var words []string
	var cur []byte
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, string(cur))
				cur, inWord = nil, false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote at %d", i)
			}
			cur = append(cur, s[i+1:i+1+j]...)
			inWord = true
			i += j + 1
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("trailing backslash")
			}
			if s[i+1] == '\n' {
				return nil, errors.New("line continuation")
			}
			cur = append(cur, s[i+1])
			inWord = true
			i++
		case posixSafe(c) || (c == '=' && inWord):
			cur = append(cur, c)
			inWord = true
		default:
			return nil, fmt.Errorf("unquoted special byte %q at %d in %q", c, i, s)
		}
	}
	if inWord {
		words = append(words, string(cur))
	}
	return words, nil
}

func shRoundTrip(t *testing.T, shell string, args []string) {
	t.Helper()
	line := "printf '%s\\0' " + QuotePOSIX(args...)
	dir := t.TempDir()
	cmd := exec.Command(shell, "-c", line)
	cmd.Dir = dir // a $(touch x) that slipped through would land here
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s -c %q: %v", shell, line, err)
	}
	got := strings.Split(string(out), "\x00")
	got = got[:len(got)-1]
	if len(args) == 0 {
		// printf with no argument still prints one empty field
		args = []string{""}
	}
	if len(got) != len(args) {
		t.Fatalf("%s saw %d args %q, want %d %q (line %q)", shell, len(got), got, len(args), args, line)
	}
	for i := range args {
		if got[i] != args[i] {
			t.Fatalf("%s arg %d = %q, want %q (line %q)", shell, i, got[i], args[i], line)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("%s: command created files in its directory: %v", shell, ents)
	}
}

func shells() []string {
	var out []string
	for _, s := range []string{"/bin/sh", "/bin/dash", "/bin/bash", "/usr/bin/zsh", "/bin/mksh"} {
		if _, err := os.Stat(s); err == nil {
			out = append(out, s)
		}
	}
	return out
}

func TestQuotePOSIXRealShells(t *testing.T) {
	var args []string
	for _, h := range hostileNames {
		args = append(args, h.arg)
		if w, err := parsePOSIXWords(QuotePOSIX(h.arg)); err != nil || len(w) != 1 || w[0] != h.arg {
			t.Errorf("%s: parser saw %q, %v", h.name, w, err)
		}
	}
	for _, sh := range shells() {
		t.Run(filepath.Base(sh), func(t *testing.T) {
			shRoundTrip(t, sh, args)
			for _, h := range hostileNames {
				shRoundTrip(t, sh, []string{h.arg})
			}
		})
	}
}

// FuzzQuotePOSIX: input bytes split on NUL form argv; the quoted line must
// parse back to exactly argv with the strict word parser, and /bin/sh must
// see exactly argv too.
func FuzzQuotePOSIX(f *testing.F) {
	for _, h := range hostileNames {
		f.Add([]byte(h.arg))
	}
	f.Add([]byte("a\x00b c\x00'\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		args := strings.Split(string(in), "\x00")
		line := QuotePOSIX(args...)
		words, err := parsePOSIXWords(line)
		if err != nil {
			t.Fatalf("QuotePOSIX(%q) = %q: %v", args, line, err)
		}
		if len(words) != len(args) {
			t.Fatalf("QuotePOSIX(%q) = %q parsed as %d words %q", args, line, len(words), words)
		}
		for i := range args {
			if words[i] != args[i] {
				t.Fatalf("word %d: %q != %q (line %q)", i, words[i], args[i], line)
			}
		}
		if len(line) < 64<<10 {
			shRoundTrip(t, "/bin/sh", args)
		}
	})
}

// ------------------------------------------------------ cmd.exe emulation

// emulateCmd models what happens to a QuoteCmd line on Win32-OpenSSH:
// `cmd.exe /c LINE` (quote stripping), phase 1 percent expansion in
// command-line mode (with EVERY plausible variable defined, so only the
// caret trick can save a '%'), phase 2 caret/quote processing (an unquoted
// & | < > ( ) is an error), then MSVCRT 2008 argv splitting.
func emulateCmd(line string) ([]string, error) {
	// cmd /c: a line starting with a quote that has more than two quotes
	// loses its first and last quote.
	if strings.HasPrefix(line, `"`) {
		if strings.Count(line, `"`) <= 2 {
			return nil, errors.New("ambiguous cmd /c quote rule (two quotes)")
		}
		last := strings.LastIndexByte(line, '"')
		line = line[1:last] + line[last+1:]
	}
	// Phase 1 (command line: undefined variables are left as-is, and the
	// scan continues at the closing %).
	var p1 strings.Builder
	for i := 0; i < len(line); i++ {
		if line[i] != '%' {
			p1.WriteByte(line[i])
			continue
		}
		j := strings.IndexByte(line[i+1:], '%')
		if j < 0 {
			p1.WriteString(line[i:])
			break
		}
		name := line[i+1 : i+1+j]
		if name != "" && !strings.HasSuffix(name, "^") {
			p1.WriteString("<EXPANDED:" + name + ">")
			i += j + 1
			continue
		}
		p1.WriteByte('%')
	}
	// Phase 2.
	var p2 strings.Builder
	s := p1.String()
	inQ := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inQ = !inQ
			p2.WriteByte(c)
		case !inQ && c == '^':
			if i+1 < len(s) {
				i++
				p2.WriteByte(s[i])
			}
		case !inQ && strings.IndexByte("&|<>()", c) >= 0:
			return nil, fmt.Errorf("unquoted %q reaches cmd.exe", c)
		default:
			p2.WriteByte(c)
		}
	}
	if strings.Contains(p2.String(), "<EXPANDED:") {
		return nil, fmt.Errorf("variable expanded: %s", p2.String())
	}
	return msvcrtSplit(p2.String()), nil
}

// msvcrtSplit is CommandLineToArgvW / MSVCRT (2008+) splitting for the
// arguments after the program name; the program name ends at whitespace
// outside quotes and has no backslash processing.
func msvcrtSplit(s string) []string {
	var args []string
	i := 0
	// program name
	var name []byte
	inQ := false
	for ; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			inQ = !inQ
			continue
		}
		if !inQ && (c == ' ' || c == '\t') {
			break
		}
		name = append(name, c)
	}
	args = append(args, string(name))
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return args
		}
		var cur []byte
		inQ = false
		for i < len(s) {
			c := s[i]
			if c == '\\' {
				n := 0
				for i < len(s) && s[i] == '\\' {
					n++
					i++
				}
				if i < len(s) && s[i] == '"' {
					cur = append(cur, bytes.Repeat([]byte{'\\'}, n/2)...)
					if n%2 == 1 {
						cur = append(cur, '"')
						i++
					}
				} else {
					cur = append(cur, bytes.Repeat([]byte{'\\'}, n)...)
				}
				continue
			}
			if c == '"' {
				if inQ && i+1 < len(s) && s[i+1] == '"' {
					cur = append(cur, '"')
					i += 2
					continue
				}
				inQ = !inQ
				i++
				continue
			}
			if !inQ && (c == ' ' || c == '\t') {
				break
			}
			cur = append(cur, c)
			i++
		}
		args = append(args, string(cur))
	}
}

func TestQuoteCmdEmulated(t *testing.T) {
	progs := []string{"ffmpeg", `C:\Program Files\ffmpeg\bin\ffmpeg.exe`, `C:\tools %x%\ff.exe`}
	for _, prog := range progs {
		for _, h := range hostileNames {
			args := []string{prog, h.arg, "-y"}
			line, err := QuoteCmd(args...)
			if strings.ContainsAny(h.arg, "\"\r\n\x00") {
				if !errors.Is(err, ErrCmdUnquotable) {
					t.Errorf("%s: QuoteCmd accepted %q: %q, %v", h.name, h.arg, line, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", h.name, err)
				continue
			}
			got, err := emulateCmd(line)
			if err != nil {
				t.Errorf("%s: line %q: %v", h.name, line, err)
				continue
			}
			if strings.Join(got, "\x00") != strings.Join(args, "\x00") {
				t.Errorf("%s: line %q gives argv %q, want %q", h.name, line, got, args)
			}
		}
	}
}

func TestJoinWindows(t *testing.T) {
	cases := []struct {
		in   []string
		want string
	}{
		{[]string{`C:\work`, "job1", "out.mkv"}, `C:\work\job1\out.mkv`},
		{[]string{`C:\work\`, `\job1`}, `C:\work\job1`},
		{[]string{"C:/work", "a/b"}, `C:\work\a\b`},
		{[]string{"", `D:\x`, ""}, `D:\x`},
	}
	for _, c := range cases {
		if got := joinWindows(c.in...); got != c.want {
			t.Errorf("joinWindows(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestPidFilter(t *testing.T) {
	for _, chunk := range []int{1, 2, 3, 7, 1000} {
		var out bytes.Buffer
		f := &pidFilter{w: &out}
		in := "frame=1\rframe=2clustertx-pid=4242\n\rframe=3\nclustertx-pid=99\n"
		for i := 0; i < len(in); i += chunk {
			f.Write([]byte(in[i:min(i+chunk, len(in))]))
		}
		f.Flush()
		if got, want := out.String(), "frame=1\rframe=2\rframe=3\nclustertx-pid=99\n"; got != want {
			t.Errorf("chunk %d: forwarded %q, want %q", chunk, got, want)
		}
		if f.PID() != 4242 {
			t.Errorf("chunk %d: pid %d", chunk, f.PID())
		}
	}
}
