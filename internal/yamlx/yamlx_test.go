package yamlx

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func parse(t *testing.T, src string) (*Decoder, []Pair) {
	t.Helper()
	d := &Decoder{File: "t.yml"}
	n, err := d.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := d.Mapping(n, "")
	if err != nil {
		t.Fatal(err)
	}
	return d, pairs
}

func TestMappingKeepsOrderAndWarnsOnDuplicates(t *testing.T) {
	d, pairs := parse(t, "b: 1\na: 2\nb: 3\n")
	if len(pairs) != 2 || pairs[0].Key != "b" || pairs[1].Key != "a" {
		t.Fatalf("pairs = %+v", pairs)
	}
	if v, _ := d.String(pairs[0].Value, "b"); v != "3" {
		t.Errorf("duplicate: last must win, got %q", v)
	}
	if len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0].Error(), "t.yml:3:1: b: duplicate key (line 1") {
		t.Errorf("warnings = %v", d.Warnings)
	}
}

func TestYAML11Booleans(t *testing.T) {
	d, pairs := parse(t, "a: yes\nb: off\nc: 'On'\nd: n\ne: true\nf: maybe\n")
	want := []bool{true, false, true, false, true}
	for i, w := range want {
		got, err := d.Bool(pairs[i].Value, pairs[i].Key)
		if err != nil || got != w {
			t.Errorf("%s: got %v, %v; want %v", pairs[i].Key, got, err, w)
		}
	}
	_, err := d.Bool(pairs[5].Value, "f")
	if err == nil || !strings.Contains(err.Error(), "t.yml:6:4: f: expected yes/no") {
		t.Errorf("bad bool error = %v", err)
	}
}

func TestNumbersAcceptedAsStrings(t *testing.T) {
	d, pairs := parse(t, "h: 720\nf: 23.976\nq: '15'\n")
	if s, _ := d.String(pairs[0].Value, "h"); s != "720" {
		t.Errorf("h = %q", s)
	}
	if s, _ := d.String(pairs[1].Value, "f"); s != "23.976" {
		t.Errorf("f = %q", s)
	}
	if n, err := d.Int(pairs[2].Value, "q"); n != 15 || err != nil {
		t.Errorf("q = %d, %v", n, err)
	}
}

func TestErrorsNamePosition(t *testing.T) {
	d, pairs := parse(t, "top:\n  list: [1, 2]\n")
	inner, err := d.Mapping(pairs[0].Value, "top")
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.String(inner[0].Value, inner[0].Path)
	if err == nil || err.Error() != `t.yml:2:9: top.list: expected a single value, found a list` {
		t.Errorf("err = %v", err)
	}
	_, err = d.Parse([]byte("a: [1,\n"))
	if err == nil || !strings.Contains(err.Error(), "t.yml:1: ") {
		t.Errorf("syntax error should name file and line: %v", err)
	}
}

// Syntax errors name the line the problem is on, where yaml.v3 alone often
// names the one before (go-yaml/yaml#205). ">" marks the line.
func TestSyntaxErrorLine(t *testing.T) {
	for _, src := range []string{
		"profiles:\n  hevc:\n    extension: .mkv\n>\tthreshold: 5\nrules: {}\n",
		"profiles:\n  hevc:\n    extension: .mkv\n>    threshold: [1\nrules:\n  default:\n    profile: hevc\n",
		"config:\n  queues:\n    cuda: 1\n>    qsv: 2: 3\n",
		"a:\n  - 1\n  - 2\n> b: 3\n",
		"x: 1\n>a: 'one\nb: 2\n", // the quote is never closed
		// A valid flow list over two lines comes first.
		"a: [1,\n  2]\nb:\n  c: 1\n>\td: 2\n",
		"x: 1\n> y: z: 2\n",
	} {
		var want int
		lines := strings.Split(src, "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, ">") {
				want, lines[i] = i+1, l[1:]
			}
		}
		d := &Decoder{File: "t.yml"}
		_, err := d.Parse([]byte(strings.Join(lines, "\n")))
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%q: err = %v, want a syntax *Error", src, err)
			continue
		}
		if e.Line != want || !strings.HasPrefix(e.Error(), fmt.Sprintf("t.yml:%d:", want)) { // a column may follow
			t.Errorf("%q: %v, want line %d", src, err, want)
		}
	}
}

func TestUnknownIsWarningUnlessStrict(t *testing.T) {
	d, pairs := parse(t, "colour: red\n")
	if err := d.Unknown(pairs[0], ""); err != nil || len(d.Warnings) != 1 {
		t.Fatalf("non-strict: err=%v warnings=%v", err, d.Warnings)
	}
	d.Strict = true
	if err := d.Unknown(pairs[0], "did you mean color"); err == nil || !strings.Contains(err.Error(), "t.yml:1:1: colour: unknown key; did you mean color") {
		t.Fatalf("strict: err=%v", err)
	}
}

func TestMergeKeys(t *testing.T) {
	d, pairs := parse(t, "base: &b {x: 1, y: 2}\nchild:\n  <<: *b\n  y: 3\n")
	kids, err := d.Mapping(pairs[1].Value, "child")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range kids {
		got[p.Key], _ = d.String(p.Value, p.Path)
	}
	if got["x"] != "1" || got["y"] != "3" {
		t.Errorf("merged = %v", got)
	}
	if len(d.Warnings) != 0 {
		t.Errorf("overriding a merged key is not a duplicate: %v", d.Warnings)
	}
}

func TestSyntaxErrorsExplained(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		// main: "t.yml:29: found character that cannot start any token"
		{"tab before a list item", "a:\n  b: 1\nc:\n\t- x\n",
			"t.yml:4:1: found a tab character at line 4, column 1: YAML does not allow tabs in indentation (PyYAML refuses it too); use spaces"},
		{"tab in key indentation", "a:\n  b: 1\n  \tc: 2\n", "t.yml:3:3: found a tab character at line 3, column 3"},
		// main: "t.yml:4: did not find expected comment or line break"
		{"unquoted fps: >25", "rules:\n  r:\n    criteria:\n      fps: >25\n",
			"t.yml:4:12: did not find expected comment or line break: an unquoted value starting with > begins a YAML block scalar; quote it: fps: '>25'"},
		{"unquoted res_height: >720", "rules:\n  r:\n    criteria:\n      res_height: >720\n",
			"quote it: res_height: '>720'"},
		// A real block scalar header is no slip: the error is left alone.
		{"valid header, other error", "a: >-\n  text\n b: 1\n", "t.yml:3: "},
	} {
		d := &Decoder{File: "t.yml"}
		_, err := d.Parse([]byte(tc.src))
		if err != nil && strings.HasPrefix(tc.name, "valid header") && strings.Contains(err.Error(), "block scalar") {
			t.Errorf("%s: misleading hint: %v", tc.name, err)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v\nwant it to contain %q", tc.name, err, tc.want)
		}
	}
}
