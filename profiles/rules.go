package profiles

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"clustertx/internal/yamlx"
	"clustertx/media"
	"clustertx/quality"

	"go.yaml.in/yaml/v3"
)

// Rule is one entry of rules:. Rules are tried in file order and the first
// whose criteria all match wins; no criteria means it always matches.
type Rule struct {
	Name     string
	Profile  string // as written; for SKIP rules "SKIP" in any case
	Skip     bool
	Pos      string // "file:line"
	Criteria []*Predicate
	Split    *Split          // split mode for files this rule matches (overrides the profile's)
	Quality  *quality.Config // quality target for files this rule matches (overrides the profile's)
}

// Match reports whether every criterion matches info.
func (r *Rule) Match(info *media.Info) bool {
	for _, p := range r.Criteria {
		if !p.Match(info) {
			return false
		}
	}
	return true
}

// MatchRules returns the first rule (in file order) that matches info, or
// nil when none does.
func MatchRules(rules []*Rule, info *media.Info) *Rule {
	for _, r := range rules {
		if r.Match(info) {
			return r
		}
	}
	return nil
}

// Predicate names.
const (
	PredVCodec     = "vcodec"
	PredACodec     = "acodec"
	PredSCodec     = "scodec"
	PredPath       = "path"
	PredResHeight  = "res_height"
	PredResWidth   = "res_width"
	PredRuntime    = "runtime"
	PredFilesizeMB = "filesize_mb"
	PredFPS        = "fps"
)

var predicateNames = []string{PredVCodec, PredACodec, PredSCodec, PredPath, PredResHeight, PredResWidth, PredRuntime, PredFilesizeMB, PredFPS}

// tolerance for "=" and inclusive bounds on float values: 23.976 must match
// ffprobe's 24000/1001 = 23.976023…
const tolerance = 0.01

// Predicate is one parsed criterion.
type Predicate struct {
	Name   string
	Value  string // as written
	Negate bool   // leading "!"

	codec string    // vcodec/acodec/scodec, lower-case
	re    *pyRegexp // path
	op    string    // numeric: "=", "<", ">", "<=", ">=", "-" (inclusive range)
	a, b  float64   // numeric operands; b only for ranges
}

// ParsePredicate parses a criterion such as ("res_height", "!720-1081").
// Numeric predicates take 720, <720, >720, <=720, >=720 or 720-1081
// (inclusive), floats allowed; codecs compare case-insensitively; path is
// a Python regular expression searched anywhere in the path (see
// pyRegexp). A leading "!" negates any of them (pytranscoder ignored it on
// path).
func ParsePredicate(name, value string) (*Predicate, error) {
	p := &Predicate{Name: name, Value: value}
	v := strings.TrimSpace(value)
	if rest, ok := strings.CutPrefix(v, "!"); ok {
		p.Negate, v = true, strings.TrimSpace(rest)
	}
	switch name {
	case PredVCodec, PredACodec, PredSCodec:
		if v == "" {
			return nil, errors.New("expected a codec name such as hevc or !hevc")
		}
		p.codec = strings.ToLower(v)
	case PredPath:
		re, err := compilePython(v)
		if err != nil {
			return nil, fmt.Errorf("invalid regular expression %q: %v", v, unprefix(err))
		}
		p.re = re
	case PredResHeight, PredResWidth, PredRuntime, PredFilesizeMB, PredFPS:
		if err := p.parseNumeric(v); err != nil {
			return nil, err
		}
	case "source_size":
		return nil, fmt.Errorf("unknown predicate %q (documented by pytranscoder but never implemented; use filesize_mb)", name)
	default:
		hint := suggest(name, predicateNames)
		if hint != "" {
			hint += " "
		}
		return nil, fmt.Errorf("unknown predicate %q; %s(valid: %s)", name, hint, strings.Join(predicateNames, ", "))
	}
	return p, nil
}

func unprefix(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

func (p *Predicate) parseNumeric(v string) error {
	bad := fmt.Errorf("invalid value %q: expected a number (720, 23.976), <N, >N, <=N, >=N or a range N-M; a leading ! negates any of them", p.Value)
	for _, op := range []string{"<=", ">=", "<", ">", "="} {
		if rest, ok := strings.CutPrefix(v, op); ok {
			p.op = op
			a, err := parseNum(rest)
			if err != nil {
				return bad
			}
			p.a = a
			return nil
		}
	}
	if i := strings.Index(v, "-"); i > 0 {
		a, errA := parseNum(v[:i])
		b, errB := parseNum(v[i+1:])
		if errA != nil || errB != nil {
			return bad
		}
		if a > b {
			return fmt.Errorf("invalid range %q: the lower bound comes first", p.Value)
		}
		p.op, p.a, p.b = "-", a, b
		return nil
	}
	a, err := parseNum(v)
	if err != nil {
		return bad
	}
	p.op, p.a = "=", a
	return nil
}

func parseNum(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, errors.New("bad number")
	}
	return f, nil
}

// Match evaluates the predicate against info.
func (p *Predicate) Match(info *media.Info) bool {
	if info == nil {
		return false
	}
	return p.eval(info) != p.Negate
}

func (p *Predicate) eval(info *media.Info) bool {
	switch p.Name {
	case PredVCodec:
		return strings.EqualFold(info.VCodec(), p.codec)
	case PredACodec:
		return anyCodec(info.Audio, p.codec)
	case PredSCodec:
		return anyCodec(info.Subtitles, p.codec)
	case PredPath:
		return p.re.MatchString(info.Path)
	case PredResHeight:
		return p.compare(float64(info.Height()))
	case PredResWidth:
		return p.compare(float64(info.Width()))
	case PredRuntime:
		if p.op == "=" {
			// "runtime: 45" means 45 whole minutes: a 45:30 file matches
			// (pytranscoder compared seconds for equality, never matching).
			return p.compare(math.Floor(info.Duration / 60))
		}
		return p.compare(info.Duration / 60)
	case PredFilesizeMB:
		return p.compare(float64(info.Size) / 1048576)
	case PredFPS:
		return p.compare(truncFPS(info.FPS()))
	}
	return false
}

// truncFPS is the frame rate fps rules compare: the whole frames per
// second, as pytranscoder read it (int() of ffprobe's rate, or the integer
// part of ffmpeg's "23.98 fps"): 23.976 is 23, 29.97 is 29, 59.94 is 59.
// So `fps: '23'` matches a film and `'>23'` does not, as before.
func truncFPS(fps float64) float64 {
	return math.Floor(fps + 1e-6) // 24000/1001 and 30/1 computed in floats stay on the right side
}

// hasFraction reports whether a numeric operand is not a whole number,
// which an fps rule can never equal (see truncFPS).
func (p *Predicate) hasFraction() bool {
	return p.a != math.Trunc(p.a) || p.b != math.Trunc(p.b)
}

// anyCodec: "acodec: aac" matches when any stream has that codec, so
// "!aac" means no stream has it.
func anyCodec(streams []media.Stream, codec string) bool {
	for _, s := range streams {
		if strings.EqualFold(s.Codec, codec) {
			return true
		}
	}
	return false
}

func (p *Predicate) compare(x float64) bool {
	switch p.op {
	case "=":
		return math.Abs(x-p.a) <= tolerance
	case "<":
		return x < p.a
	case ">":
		return x > p.a
	case "<=":
		return x <= p.a+tolerance
	case ">=":
		return x >= p.a-tolerance
	case "-":
		return x >= p.a-tolerance && x <= p.b+tolerance
	}
	return false
}

// DecodeRules decodes the rules: section, in file order. Predicates,
// regular expressions and profile names are checked here, at load:
// pytranscoder only failed when a broken rule was first evaluated.
func DecodeRules(d *yamlx.Decoder, n *yaml.Node, path string, set *Set) ([]*Rule, error) {
	pairs, err := d.Mapping(n, path)
	if err != nil {
		return nil, err
	}
	var rules []*Rule
	for _, pr := range pairs {
		r, err := decodeRule(d, pr, set)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

var ruleKeys = []string{"profile", "criteria", "split", "quality"}

// unknownInRule says why an unknown key in a rule is an error, not a
// warning: a misspelt criteria: leaves a rule that matches every file.
const unknownInRule = "an unknown key in a rule is an error: ignoring a misspelt criteria: would make the rule match every file"

func decodeRule(d *yamlx.Decoder, pr yamlx.Pair, set *Set) (*Rule, error) {
	r := &Rule{Name: pr.Key, Pos: fmt.Sprintf("%s:%d", d.File, pr.KeyN.Line)}
	pairs, err := d.Mapping(pr.Value, pr.Path)
	if err != nil {
		return nil, err
	}
	var profN *yaml.Node
	for _, kv := range pairs {
		switch kv.Key {
		case "profile":
			profN = kv.Value
			r.Profile, err = d.String(kv.Value, kv.Path)
			r.Profile = strings.TrimSpace(r.Profile)
		case "criteria":
			r.Criteria, err = decodeCriteria(d, kv)
		case "split":
			r.Split, err = decodeSplit(d, kv.Value, kv.Path)
		case "quality":
			r.Quality, err = decodeQuality(d, kv.Value, kv.Path)
		case "rules":
			err = d.UnknownFatal(kv, "did you mean criteria? (pytranscoder before 1.4.6 called it rules:)", unknownInRule)
		default:
			err = d.UnknownFatal(kv, suggest(kv.Key, ruleKeys), unknownInRule)
		}
		if err != nil {
			return nil, err
		}
	}
	if r.Profile == "" {
		at := profN
		if at == nil {
			at = pr.KeyN
		}
		return nil, d.Errorf(at, pr.Path+".profile", "a rule needs a profile (a profile or template name, or SKIP)")
	}
	if strings.EqualFold(r.Profile, "SKIP") {
		r.Skip = true
		return r, nil
	}
	return r, checkRuleProfile(d, profN, pr.Path+".profile", r.Profile, set)
}

// checkRuleProfile fails fast on a rule naming an unknown profile. A profile
// without an extension only gets a warning: like pytranscoder we fail such
// a job when the rule is used (Profile.Validate), not the whole config.
func checkRuleProfile(d *yamlx.Decoder, n *yaml.Node, path, name string, set *Set) error {
	p, ok := set.Get(name)
	if !ok {
		hint := suggest(name, set.Names())
		if hint != "" {
			hint = "; " + hint
		}
		return d.Errorf(n, path, "no profile or template named %q%s", name, hint)
	}
	if err := p.Validate(); err != nil {
		d.Warnf(n, path, "files matching this rule will fail: %v", err)
	}
	return nil
}

func decodeCriteria(d *yamlx.Decoder, kv yamlx.Pair) ([]*Predicate, error) {
	if kv.Value.Kind == yaml.SequenceNode {
		return nil, d.Errorf(kv.Value, kv.Path, "criteria must be a mapping (predicate: value lines), not a list")
	}
	pairs, err := d.Mapping(kv.Value, kv.Path)
	if err != nil {
		return nil, err
	}
	var preds []*Predicate
	for _, c := range pairs {
		if err := checkUnquoted(d, c); err != nil {
			return nil, err
		}
		v, err := d.String(c.Value, c.Path)
		if err != nil {
			return nil, err
		}
		p, err := ParsePredicate(c.Key, v)
		if err != nil {
			at := c.Value
			if !knownPredicate(c.Key) {
				at = c.KeyN
			}
			return nil, d.Errorf(at, c.Path, "%v", err)
		}
		if p.Name == PredPath && p.Negate {
			pat := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), "!"))
			d.Compatf(c.Value, c.Path, "pytranscoder ignored the leading ! and matched the paths that contain %q; "+
				"clustertx negates it and matches the paths that do not (to mean that in both, write '^(?!.*%s)')", pat, pat)
		}
		warnCompatCriterion(d, c, p, v)
		if p.Name == PredFPS && p.hasFraction() {
			d.Warnf(c.Value, c.Path, "fps %q: frame rates are compared as whole numbers, as in pytranscoder (23.976 fps is 23), "+
				"so write whole numbers such as '23' or '>23'", v)
		}
		preds = append(preds, p)
	}
	return preds, nil
}

// warnCompatCriterion warns where a criterion pytranscoder 2.2.7 accepted
// selects other files in clustertx (path's leading ! is warned about
// separately).
func warnCompatCriterion(d *yamlx.Decoder, c yamlx.Pair, p *Predicate, v string) {
	switch {
	case p.Name == PredVCodec && p.codec != strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), "!")):
		d.Compatf(c.Value, c.Path, "pytranscoder compared codec names case-sensitively, so %q never matched ffprobe's lower-case names; "+
			"clustertx ignores case and matches %s", v, p.codec)
	case p.op == "=" && p.Name == PredRuntime:
		d.Compatf(c.Value, c.Path, "pytranscoder matched runtime %q only for a file exactly %g:00 long (it compared seconds); "+
			"clustertx matches %g:00 to %g:59", v, p.a, p.a, p.a)
	case p.op == "=" && p.Name != PredFPS && p.hasFraction():
		d.Compatf(c.Value, c.Path, "pytranscoder took only whole numbers for equality and %q never matched; clustertx matches within 0.01", v)
	}
}

// checkUnquoted catches criteria values YAML read as something else than
// what was typed: an unquoted !hevc is a YAML tag (the value is then
// empty), and an unquoted >5 or |5 starts a block scalar.
func checkUnquoted(d *yamlx.Decoder, c yamlx.Pair) error {
	n := c.Value
	if n.Kind != yaml.ScalarNode {
		return nil
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		typed := strings.TrimSpace(n.Tag + " " + n.Value)
		return d.Errorf(n, c.Path, "an unquoted value starting with ! is a YAML tag; quote it: %s: '%s'", c.Key, typed)
	}
	if n.Style&(yaml.FoldedStyle|yaml.LiteralStyle) != 0 {
		return d.Errorf(n, c.Path, "an unquoted value starting with > or | begins a YAML block scalar; quote it, e.g. %s: '>25'", c.Key)
	}
	return nil
}

func knownPredicate(name string) bool {
	for _, n := range predicateNames {
		if n == name {
			return true
		}
	}
	return false
}
