package profiles

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"clustertx/internal/encoder"
	"clustertx/internal/yamlx"

	"go.yaml.in/yaml/v3"
)

// Variant is one encoder variant of a profile: an item of its encoders:
// list (a clustertx key), resolved against the profile's crf.
type Variant struct {
	Key     string   // unique in the profile: the encoder name unless the config gives name:
	Encoder string   // e.g. hevc_nvenc
	Family  string   // encoder.Family(Encoder): "nvenc", "qsv", …; "" for software
	Input   Options  // extra input options (placed after the profile's input_options, before -i)
	Video   Options  // the whole video section for this variant (-c:v, options, mapped quality)
	CRF     *float64 // the level in effect for this variant, on its encoder's scale (nil: none)
	Pos     string   // "file:line"
}

func (v Variant) clone() Variant {
	v.Input, v.Video = v.Input.clone(), v.Video.clone()
	if v.CRF != nil {
		c := *v.CRF
		v.CRF = &c
	}
	return v
}

// variantSpec is one item of encoders: as written. It is resolved into a
// Variant once includes are merged, because a child's crf applies to the
// chain it inherits.
type variantSpec struct {
	key, encoder     string
	input, options   Options
	crf              *float64 // this variant's own level
	crfOff           bool     // crf: off — the profile's crf does not apply here
	crfAt, at, optAt defSite  // the crf: key, the list item, the options: key
}

// crfLevel is a crf key: a level, or off (set but no level).
type crfLevel struct {
	v  *float64
	at defSite
}

var variantKeys = []string{"encoder", "name", "input_options", "options", "crf"}

// unknownInVariant says why an unknown key in a variant is fatal: the
// encoders list is clustertx's own, so no pytranscoder file has one, and a
// misspelt options: or crf: would silently encode differently.
const unknownInVariant = "a misspelt key in a variant would silently change the encode"

func site(d *yamlx.Decoder, n *yaml.Node, path string) defSite {
	return defSite{file: d.File, line: n.Line, col: n.Column, path: path}
}

func (s defSite) errorf(format string, args ...any) *yamlx.Error {
	return &yamlx.Error{File: s.file, Line: s.line, Column: s.col, Key: s.path, Msg: fmt.Sprintf(format, args...)}
}

// decodeCRF decodes a crf key: a number, or off/no/none/null, which
// stops an included crf from applying (on a variant: the profile's crf).
func decodeCRF(d *yamlx.Decoder, n *yaml.Node, path string) (crfLevel, error) {
	l := crfLevel{at: site(d, n, path)}
	if yamlx.IsNull(n) {
		return l, nil
	}
	if n.Kind == yaml.ScalarNode {
		switch strings.ToLower(strings.TrimSpace(n.Value)) {
		case "off", "no", "none", "false":
			return l, nil
		}
	}
	v, err := d.Float(n, path)
	if err != nil {
		return l, d.Errorf(n, path, "expected a quality level such as 24, or off, found %q", n.Value)
	}
	l.v = &v
	return l, nil
}

// decodeEncoders decodes the encoders: list. Each item is an encoder name
// or a mapping with encoder, name, input_options, options and crf.
func decodeEncoders(d *yamlx.Decoder, n *yaml.Node, path string) ([]variantSpec, error) {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return nil, d.Errorf(n, path, "expected a list of encoders, first choice first (e.g. [hevc_nvenc, hevc_qsv, libx265]); to use one video section, write output_options_video instead")
	}
	var specs []variantSpec
	seen := map[string]variantSpec{}
	for i, item := range n.Content {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		s, err := decodeVariant(d, item, ipath)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[s.key]; dup {
			return nil, s.at.errorf("%s is already in this list (%s, line %d): give one of them a name: to tell them apart", s.key, prev.at.path, prev.at.line)
		}
		seen[s.key] = s
		specs = append(specs, s)
	}
	return specs, nil
}

func decodeVariant(d *yamlx.Decoder, n *yaml.Node, path string) (variantSpec, error) {
	s := variantSpec{at: site(d, n, path)}
	var encN *yaml.Node
	if n.Kind == yaml.ScalarNode {
		s.encoder, encN = strings.TrimSpace(n.Value), n
	} else {
		if n.Kind != yaml.MappingNode {
			return s, d.Errorf(n, path, "expected an encoder name (hevc_nvenc) or a mapping with encoder: and options:")
		}
		pairs, err := d.Mapping(n, path)
		if err != nil {
			return s, err
		}
		for _, kv := range pairs {
			switch kv.Key {
			case "encoder":
				s.encoder, err = d.String(kv.Value, kv.Path)
				s.encoder, encN = strings.TrimSpace(s.encoder), kv.Value
			case "name":
				s.key, err = d.String(kv.Value, kv.Path)
				s.key = strings.TrimSpace(s.key)
				if err == nil && (s.key == "" || strings.ContainsAny(s.key, " \t")) {
					err = d.Errorf(kv.Value, kv.Path, "expected a name without blanks, found %q", kv.Value.Value)
				}
			case "input_options":
				s.input, err = decodeOptions(d, kv.Value, kv.Path)
			case "options":
				s.options, err = decodeOptions(d, kv.Value, kv.Path)
				s.optAt = site(d, kv.KeyN, kv.Path)
				if err == nil {
					if f := videoCodecFlag(s.options); f != "" {
						err = d.Errorf(kv.Value, kv.Path, "options set the encoder again (%s); the variant's encoder: does that", f)
					}
				}
			case "crf":
				var l crfLevel
				l, err = decodeCRF(d, kv.Value, kv.Path)
				s.crf, s.crfOff, s.crfAt = l.v, l.v == nil, l.at
			default:
				err = d.UnknownFatal(kv, suggest(kv.Key, variantKeys), unknownInVariant)
			}
			if err != nil {
				return s, err
			}
		}
		if encN == nil {
			return s, d.Errorf(n, path, "a variant needs encoder: (e.g. encoder: hevc_nvenc)")
		}
	}
	if s.encoder == "" || strings.ContainsAny(s.encoder, " \t") || strings.HasPrefix(s.encoder, "-") {
		return s, d.Errorf(encN, path, "expected an encoder name alone (e.g. hevc_nvenc), found %q; its options go in options:", encN.Value)
	}
	if s.key == "" {
		s.key = s.encoder
	}
	return s, nil
}

// videoCodecFlag returns the first flag of o that chooses the video
// encoder (-c:v, -codec:v, -vcodec; not -c, which -c copy sets for every
// stream), or "".
func videoCodecFlag(o Options) string {
	for _, g := range groupOptions(o.words) {
		if isVideoCodecFlag(g.flag) {
			return g.flag
		}
	}
	return ""
}

func isVideoCodecFlag(f string) bool {
	s, ok := encoder.CodecOption(f)
	return ok && s == "v"
}

// flagBase is an option's name without its stream specifier, with
// ffmpeg's alias -qscale read as -q: "-cq:v" → "-cq", "-qscale:v" → "-q".
func flagBase(f string) string {
	f, _, _ = strings.Cut(f, ":")
	if f == "-qscale" {
		return "-q"
	}
	return f
}

// isQualityFlag reports whether flag sets q's level.
func isQualityFlag(flag string, q encoder.Quality) bool {
	return flag != "" && slices.ContainsFunc(q.Flags, func(f string) bool { return flagBase(f) == flagBase(flag) })
}

// explicitLevel finds q's option in o: whether it is there, and its value
// when that is a number.
func explicitLevel(o Options, q encoder.Quality) (found bool, v *float64) {
	for _, g := range groupOptions(o.words) {
		if !isQualityFlag(g.flag, q) {
			continue
		}
		if len(g.words) > 1 {
			if f, err := strconv.ParseFloat(g.words[1], 64); err == nil {
				return true, &f
			}
		}
		return true, nil
	}
	return false, nil
}

// resolveVariants turns p.chain into p.variants with the crf in effect
// (the variant's own, else the profile's, mapped per encoder). Run once
// includes are merged.
func (p *Profile) resolveVariants() error {
	p.variants = nil
	if p.chain == nil {
		return nil
	}
	if f := videoCodecFlag(p.Output); f != "" {
		return p.def.errorf("output_options sets the video encoder (%s) but the profile has encoders:, where each variant names its own; remove %s from output_options", f, f)
	}
	for i, s := range p.chain {
		v, err := p.resolve(i, s)
		if err != nil {
			return err
		}
		p.variants = append(p.variants, v)
	}
	return nil
}

func (p *Profile) resolve(i int, s variantSpec) (Variant, error) {
	v := Variant{
		Key: s.key, Encoder: s.encoder, Family: encoder.Family(s.encoder),
		Input: s.input.clone(), Pos: fmt.Sprintf("%s:%d", s.at.file, s.at.line),
	}
	words := append([]string{"-c:v", s.encoder}, s.options.words...)
	q, known := encoder.QualityOf(s.encoder)
	explicit, level := false, (*float64)(nil)
	if known {
		explicit, level = explicitLevel(s.options, q)
	}
	name := fmt.Sprintf("%s (encoders[%d], line %d)", s.key, i, s.at.line)
	var add *float64
	var addAt defSite
	switch {
	case s.crf != nil && explicit:
		return v, s.crfAt.errorf("options already set %s's quality (%s); give the level once", s.encoder, strings.Join(q.Flags, ", "))
	case s.crf != nil:
		add, addAt = s.crf, s.crfAt
	case explicit:
		v.CRF = level
	case p.crf != nil && !s.crfOff:
		if !known {
			return v, s.at.errorf("profile %s sets crf %s (line %d), but clustertx does not know how %s takes a quality level: write it in this variant's options and set crf: off here",
				p.Name, fmtLevel(*p.crf), p.crfAt.line, s.encoder)
		}
		if q.HigherIsBetter {
			return v, s.at.errorf("profile %s sets crf %s (line %d), but %s's %s runs the other way (higher is better quality): give this variant its own crf: on that scale (e.g. 60)",
				p.Name, fmtLevel(*p.crf), p.crfAt.line, s.encoder, q.Flags[0])
		}
		add, addAt = p.crf, p.crfAt
	}
	if add != nil {
		args, ok := encoder.QualityArgs(s.encoder, *add)
		if !ok {
			if !known {
				return v, addAt.errorf("clustertx does not know how %s takes a quality level: write it in %s's options instead of crf:", s.encoder, name)
			}
			if q.Integer && *add != math.Trunc(*add) {
				return v, addAt.errorf("crf %s: %s takes whole levels only (variant %s)", fmtLevel(*add), s.encoder, name)
			}
			return v, addAt.errorf("crf %s is outside %s's %s range %s–%s (variant %s)",
				fmtLevel(*add), s.encoder, q.Flags[0], fmtLevel(q.Min), fmtLevel(q.Max), name)
		}
		words = append(words, args...)
		l := *add
		v.CRF = &l
	}
	v.Video = Options{words: words, set: true}
	return v, nil
}

func fmtLevel(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// Variants returns the profile's encoder variants in the config's order
// (first choice first), or nil for a profile without encoders:. The result
// is a copy.
func (p *Profile) Variants() []Variant {
	if p.variants == nil {
		return nil
	}
	out := make([]Variant, len(p.variants))
	for i, v := range p.variants {
		out[i] = v.clone()
	}
	return out
}

func (p *Profile) variant(key string) (Variant, error) {
	if p.variants == nil {
		return Variant{}, fmt.Errorf("profile %q has no encoders: list", p.Name)
	}
	for _, v := range p.variants {
		if v.Key == key {
			return v, nil
		}
	}
	return Variant{}, fmt.Errorf("profile %q has no encoder variant %q (it has %s)", p.Name, key, p.variantKeys())
}

func (p *Profile) variantKeys() string {
	keys := make([]string, len(p.variants))
	for i, v := range p.variants {
		keys[i] = v.Key
	}
	return strings.Join(keys, ", ")
}

// ForVariant returns a copy of p for one of its variants: its Input has
// the variant's input options appended, its Video is the variant's, and it
// has no variants, so Plan builds its argv as for any single-encoder
// profile. VariantKey of the copy is key.
func (p *Profile) ForVariant(key string) (*Profile, error) {
	v, err := p.variant(key)
	if err != nil {
		return nil, err
	}
	c := p.Clone()
	c.chain, c.variants, c.crf = nil, nil, nil
	c.VariantKey = v.Key
	c.Input = Options{words: append(p.Input.Args(), v.Input.words...), set: p.Input.set || v.Input.set, str: p.Input.str}
	c.Video = v.Video.clone()
	return c, nil
}

// WithLevel returns a copy of p at quality level level, on its encoder's
// own scale (-cq 27 for hevc_nvenc). It is the one place a profile's level
// is set (the quality search's candidates and its choice come through it).
//
// With variants, key names one: the copy is ForVariant(key), its quality
// option replaced in its video section, or added there. Without (key "",
// or the VariantKey of a ForVariant copy), the encoder is the one its
// video names (VideoEncoder), and each of that encoder's quality options
// is replaced where output_options or the video section has it (as
// written: -cq:v stays -cq:v), or added to the section that names the
// encoder. A profile that names no video encoder, an encoder whose quality
// option clustertx does not know, and a level outside the encoder's range
// (or a fraction where it takes whole levels) are errors.
func (p *Profile) WithLevel(key string, level float64) (*Profile, error) {
	var c *Profile
	var enc string
	if p.variants != nil {
		v, err := p.variant(key)
		if err != nil {
			return nil, err
		}
		if c, err = p.ForVariant(key); err != nil {
			return nil, err
		}
		enc = v.Encoder
	} else {
		if key != "" && key != p.VariantKey {
			return nil, fmt.Errorf("profile %q has no encoders: list (variant %q)", p.Name, key)
		}
		if enc = p.VideoEncoder(); enc == "" {
			return nil, fmt.Errorf("profile %q names no video encoder (-c:v): no quality level to set", p.Name)
		}
		c = p.Clone()
	}
	args, ok := encoder.QualityArgs(enc, level)
	if !ok {
		return nil, levelError(p, enc, level)
	}
	// The section that names the encoder: the video section when it does
	// (a variant's always does), else output_options.
	named := &c.Video
	if !slices.Contains(encoder.Video(c.Video.words), enc) && slices.Contains(encoder.Video(c.Output.words), enc) {
		named = &c.Output
	}
	for i := 0; i+1 < len(args); i += 2 {
		pair := args[i : i+2]
		inVideo := replaceLevel(&c.Video, pair)
		inOut := p.variants == nil && replaceLevel(&c.Output, pair) // a variant's level lives in its video
		if !inVideo && !inOut {
			named.words = append(named.words, pair...)
			named.set = true
		}
	}
	return c, nil
}

// VideoEncoder is the encoder a profile without variants encodes its video
// with: the last one its output options and video section name (ffmpeg
// takes the last), "copy" left out; "" when they name none. For a profile
// with variants it is "": each variant names its own.
func (p *Profile) VideoEncoder() string {
	if p.variants != nil {
		return ""
	}
	encs := encoder.Video(append(p.Output.Args(), p.Video.Args()...))
	if len(encs) == 0 {
		return ""
	}
	return encs[len(encs)-1]
}

// Level is the quality level p encodes with, on its encoder's scale: for
// variant key, the variant's (its crf:, else the profile's, else its
// options'); for a profile without variants (key ""), the value of its
// encoder's quality option where output_options or the video section set
// it. false when there is none (the encoder's default applies), or the
// encoder's quality option is unknown.
func (p *Profile) Level(key string) (float64, bool) {
	if p.variants != nil {
		v, err := p.variant(key)
		if err != nil || v.CRF == nil {
			return 0, false
		}
		return *v.CRF, true
	}
	q, ok := encoder.QualityOf(p.VideoEncoder())
	if !ok {
		return 0, false
	}
	level, found := 0.0, false
	for _, o := range []Options{p.Output, p.Video} { // the video section comes later in the argv
		if _, v := explicitLevel(o, q); v != nil {
			level, found = *v, true
		}
	}
	return level, found
}

func levelError(p *Profile, enc string, level float64) error {
	q, ok := encoder.QualityOf(enc)
	if !ok {
		return fmt.Errorf("profile %q: clustertx does not know how %s takes a quality level", p.Name, enc)
	}
	if q.Integer && level != math.Trunc(level) {
		return fmt.Errorf("profile %q: level %s: %s takes whole levels only", p.Name, fmtLevel(level), enc)
	}
	return fmt.Errorf("profile %q: level %s is outside %s's %s range %s–%s", p.Name, fmtLevel(level), enc, q.Flags[0], fmtLevel(q.Min), fmtLevel(q.Max))
}

// replaceLevel sets the value of every quality option in o that args
// (flag, value pairs from encoder.QualityArgs) name, keeping the option as
// written (-cq:v stays -cq:v). It reports whether o had one.
func replaceLevel(o *Options, args []string) bool {
	found := false
	for i := 0; i+1 < len(o.words); i++ {
		if !isFlag(o.words[i]) {
			continue
		}
		for j := 0; j+1 < len(args); j += 2 {
			if flagBase(o.words[i]) == flagBase(args[j]) && !isFlag(o.words[i+1]) {
				o.words[i+1] = args[j+1]
				found = true
			}
		}
	}
	return found
}
