// Package yamlx decodes transcode.yml through yaml.Node so that every error
// and warning names file:line:column and the key, keeps mapping order (rules
// are first-match-wins), and accepts what PyYAML (YAML 1.1) accepts: yes/no/
// on/off booleans and numbers where strings are expected. It knows nothing of
// clustertx's schema; config, profiles and hosts use it to decode theirs.
package yamlx

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a config error at a position in a file.
type Error struct {
	File   string
	Line   int
	Column int
	Key    string // dotted path of the key, e.g. profiles.hevc.extension
	Msg    string
	// Compat marks a warning about a deliberate difference from
	// pytranscoder (what it did, what clustertx does). Such warnings
	// concern files written for pytranscoder: the built-in default drops them.
	Compat bool
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Warning is a non-fatal remark about the config, with its position.
type Warning = Error

// Decoder carries the file name, collects warnings and knows whether
// unknown keys are fatal (--strict).
type Decoder struct {
	File     string
	Strict   bool
	Warnings []*Warning
}

// Pair is one key/value of a mapping, in file order.
type Pair struct {
	Key   string
	KeyN  *yaml.Node
	Value *yaml.Node
	Path  string // dotted path including this key
}

// Errorf returns a positioned error for node n at key path.
func (d *Decoder) Errorf(n *yaml.Node, path, format string, args ...any) *Error {
	e := &Error{File: d.File, Key: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

// Warnf records a warning for node n at key path.
func (d *Decoder) Warnf(n *yaml.Node, path, format string, args ...any) {
	d.Warnings = append(d.Warnings, d.Errorf(n, path, format, args...))
}

// Compatf records a warning about a deliberate difference from
// pytranscoder: it should say what pytranscoder did and what clustertx does.
func (d *Decoder) Compatf(n *yaml.Node, path, format string, args ...any) {
	w := d.Errorf(n, path, format, args...)
	w.Compat = true
	d.Warnings = append(d.Warnings, w)
}

// Parse reads data into a document node. Syntax errors carry the file name.
func (d *Decoder) Parse(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, d.syntaxError(data, err)
	}
	if doc.Kind == 0 { // empty file
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1, Column: 1}, nil
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return resolveAlias(doc.Content[0]), nil
	}
	return resolveAlias(&doc), nil
}

var yamlLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// syntaxError positions a YAML syntax error. yaml.v3 reports the line of
// the enclosing construct, or a 0-based line for some scanner errors (often
// one or two lines early: go-yaml/yaml#205). The line given here is the
// first line whose prefix of the file fails with the same problem, which is
// where the problem is; yaml's own line is the fallback.
func (d *Decoder) syntaxError(data []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return &Error{File: d.File, Msg: msg}
	}
	problem := m[2]
	line, _ := strconv.Atoi(m[1])
	if lines := bytes.SplitAfter(data, []byte("\n")); len(lines) <= maxScanLines {
		n := 0
		for k, l := range lines {
			n += len(l)
			var doc yaml.Node
			perr := yaml.Unmarshal(data[:n], &doc)
			if perr == nil {
				continue
			}
			if pm := yamlLineRE.FindStringSubmatch(strings.TrimPrefix(perr.Error(), "yaml: ")); pm != nil && pm[2] == problem {
				line = k + 1
				break
			}
		}
	}
	e := &Error{File: d.File, Line: line, Msg: problem}
	explainSyntax(e, data)
	return e
}

// blockValueRE finds a mapping value that starts with an unquoted > or |
// followed by more text (fps: >25): YAML reads > and | as the start of a
// block scalar, and the text after them as a broken header.
var blockValueRE = regexp.MustCompile(`^\s*(?:-\s+)?([^\s:#'"][^:#]*):\s+([>|][^\s#]+)`)

// blockHeaderRE is a valid block scalar header (>-, |2, >+1…): not a slip.
var blockHeaderRE = regexp.MustCompile(`^[>|](?:[-+]?[1-9]?|[1-9][-+])$`)

// explainSyntax rewrites the two YAML errors pytranscoder users meet most
// into what to do: a tab (PyYAML names it, with line and column; yaml.v3
// says "found character that cannot start any token"), and an unquoted
// value starting with > (fps: >25: "did not find expected comment or line
// break").
func explainSyntax(e *Error, data []byte) {
	lines := strings.Split(string(data), "\n")
	if strings.Contains(e.Msg, "tab") || strings.Contains(e.Msg, "cannot start any token") {
		// The tab is on the error line, or on the line yaml.v3 blamed.
		for _, ln := range []int{e.Line, e.Line + 1, e.Line - 1} {
			if ln < 1 || ln > len(lines) {
				continue
			}
			if col := strings.IndexByte(lines[ln-1], '\t'); col >= 0 {
				e.Line, e.Column = ln, col+1
				e.Msg = fmt.Sprintf("found a tab character at line %d, column %d: YAML does not allow tabs in indentation "+
					"(PyYAML refuses it too); use spaces", ln, col+1)
				return
			}
		}
	}
	if e.Line >= 1 && e.Line <= len(lines) {
		if m := blockValueRE.FindStringSubmatch(lines[e.Line-1]); m != nil && !blockHeaderRE.MatchString(m[2]) {
			e.Column = strings.Index(lines[e.Line-1], m[2]) + 1
			e.Msg = fmt.Sprintf("%s: an unquoted value starting with %c begins a YAML block scalar; quote it: %s: '%s'",
				e.Msg, m[2][0], strings.TrimSpace(m[1]), m[2])
		}
	}
}

// maxScanLines bounds syntaxError's quadratic search.
const maxScanLines = 5000

// ParseFile reads and parses a file.
func (d *Decoder) ParseFile(path string) (*yaml.Node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d.File = path
	return d.Parse(data)
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// IsNull reports whether n is absent or an explicit null (`key:` with nothing).
func IsNull(n *yaml.Node) bool {
	n = resolveAlias(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// Mapping returns the pairs of a mapping node in file order. A duplicate
// key keeps the last value, as PyYAML does, with a warning. A null node is an
// empty mapping. "<<" merge keys are expanded.
func (d *Decoder) Mapping(n *yaml.Node, path string) ([]Pair, error) {
	n = resolveAlias(n)
	if IsNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, d.Errorf(n, path, "expected a mapping (key: value lines), found %s", describe(n))
	}
	var pairs []Pair
	index := map[string]int{}
	merged := map[string]bool{} // keys that came from a "<<" merge: overriding them is the point
	add := func(p Pair) {
		if i, dup := index[p.Key]; dup {
			if merged[p.Key] {
				delete(merged, p.Key)
				pairs[i] = p
				return
			}
			d.Warnf(p.KeyN, p.Path, "duplicate key (line %d also defines it); the last one wins", pairs[i].KeyN.Line)
			pairs[i] = p
			return
		}
		index[p.Key] = len(pairs)
		pairs = append(pairs, p)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			var srcs []*yaml.Node
			if v.Kind == yaml.SequenceNode {
				srcs = v.Content
			} else {
				srcs = []*yaml.Node{v}
			}
			for _, s := range srcs {
				sub, err := d.Mapping(s, path)
				if err != nil {
					return nil, err
				}
				for _, p := range sub {
					if _, exists := index[p.Key]; !exists {
						add(p)
						merged[p.Key] = true
					}
				}
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return nil, d.Errorf(k, path, "mapping keys must be plain names")
		}
		add(Pair{Key: k.Value, KeyN: k, Value: v, Path: join(path, k.Value)})
	}
	return pairs, nil
}

// Unknown reports a key the schema does not know: a warning, or an error
// under --strict. hint, when not empty, is appended (e.g. "did you mean …").
func (d *Decoder) Unknown(p Pair, hint string) error {
	msg := "unknown key"
	if hint != "" {
		msg += "; " + hint
	}
	if d.Strict {
		return d.Errorf(p.KeyN, p.Path, "%s (--strict makes unknown keys fatal)", msg)
	}
	d.Warnf(p.KeyN, p.Path, "%s; ignored", msg)
	return nil
}

// UnknownFatal reports a key the schema does not know where ignoring it
// would change which files are touched (inside a rule or a host): always an
// error, whatever --strict says. why says what ignoring it would do.
func (d *Decoder) UnknownFatal(p Pair, hint, why string) error {
	msg := "unknown key"
	if hint != "" {
		msg += "; " + hint
	}
	return d.Errorf(p.KeyN, p.Path, "%s (%s)", msg, why)
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unexpected node"
}

// String decodes a scalar as a string; numbers and booleans are accepted as
// written ("720", "1.5"). Null gives "".
func (d *Decoder) String(n *yaml.Node, path string) (string, error) {
	n = resolveAlias(n)
	if IsNull(n) {
		return "", nil
	}
	if n.Kind != yaml.ScalarNode {
		return "", d.Errorf(n, path, "expected a single value, found %s", describe(n))
	}
	return n.Value, nil
}

// Bool decodes YAML 1.1 and 1.2 booleans: true/false, yes/no, on/off, y/n,
// in any case, and 1/0.
func (d *Decoder) Bool(n *yaml.Node, path string) (bool, error) {
	s, err := d.String(n, path)
	if err != nil {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "y", "1":
		return true, nil
	case "false", "no", "off", "n", "0", "":
		return false, nil
	}
	return false, d.Errorf(n, path, "expected yes/no (true/false, on/off), found %q", s)
}

// Int decodes an integer; a quoted number ("15") is accepted.
func (d *Decoder) Int(n *yaml.Node, path string) (int, error) {
	s, err := d.String(n, path)
	if err != nil {
		return 0, err
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	v, perr := strconv.Atoi(strings.TrimSuffix(s, "%"))
	if perr != nil {
		return 0, d.Errorf(n, path, "expected a whole number, found %q", s)
	}
	return v, nil
}

// Float decodes a number; a quoted number is accepted.
func (d *Decoder) Float(n *yaml.Node, path string) (float64, error) {
	s, err := d.String(n, path)
	if err != nil {
		return 0, err
	}
	v, perr := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if perr != nil {
		return 0, d.Errorf(n, path, "expected a number, found %q", s)
	}
	return v, nil
}

// Strings decodes a list of scalars. A single scalar is a one-item list
// unless splitWords is set, in which case it is split on whitespace
// ("eng jpn" → [eng jpn]). Null gives nil.
func (d *Decoder) Strings(n *yaml.Node, path string, splitWords bool) ([]string, error) {
	n = resolveAlias(n)
	if IsNull(n) {
		return nil, nil
	}
	if n.Kind == yaml.ScalarNode {
		if splitWords {
			return strings.Fields(n.Value), nil
		}
		return []string{n.Value}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, d.Errorf(n, path, "expected a list, found %s", describe(n))
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		s, err := d.String(c, fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
