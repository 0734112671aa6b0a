package profiles

import (
	"fmt"
	"slices"
	"strings"

	"clustertx/internal/textx"
	"clustertx/internal/yamlx"

	"go.yaml.in/yaml/v3"
)

// Scalar keys tracked in Profile.has, so include merging can tell "set to
// zero" from "not set".
const (
	keyExtension      = "extension"
	keyQueue          = "queue"
	keyThreshold      = "threshold"
	keyThresholdCheck = "threshold_check"
	keyAudio          = "audio"
	keySubtitle       = "subtitle"
	keyAutomap        = "automap"
	keySplit          = "split"
	keyEncoders       = "encoders"
	keyCRF            = "crf"
	keyQuality        = "quality"
)

var profileKeys = []string{
	"input_options", "output_options", "output_options_audio", "output_options_video",
	"output_options_subtitle", keyExtension, keyQueue, keyThreshold, keyThresholdCheck,
	"include", keyAudio, keySubtitle, keyAutomap, keySplit, keyEncoders, keyCRF, keyQuality,
}

// DecodeProfiles decodes the profiles: section n (at key path, normally
// "profiles") into set, resolving include as it goes: a profile may only
// include profiles defined above it, as in pytranscoder.
func DecodeProfiles(d *yamlx.Decoder, n *yaml.Node, path string, set *Set) error {
	pairs, err := d.Mapping(n, path)
	if err != nil {
		return err
	}
	for _, pr := range pairs {
		p, err := decodeProfile(d, pr, set)
		if err != nil {
			return err
		}
		set.Add(p)
	}
	return nil
}

func newProfile(d *yamlx.Decoder, pr yamlx.Pair) *Profile {
	return &Profile{
		Name:           pr.Key,
		ThresholdCheck: 100,
		Pos:            fmt.Sprintf("%s:%d", d.File, pr.KeyN.Line),
		def:            defSite{file: d.File, line: pr.KeyN.Line, col: pr.KeyN.Column, path: pr.Path},
		has:            map[string]bool{},
	}
}

func decodeProfile(d *yamlx.Decoder, pr yamlx.Pair, set *Set) (*Profile, error) {
	p := newProfile(d, pr)
	pairs, err := d.Mapping(pr.Value, pr.Path)
	if err != nil {
		return nil, err
	}
	var parents []*Profile
	var typo, video, encoders *yamlx.Pair
	for _, kv := range pairs {
		switch kv.Key {
		case "output_options_video":
			video = &kv
		case keyEncoders:
			encoders = &kv
		}
		switch kv.Key {
		case "include":
			parents, err = decodeInclude(d, kv, set)
		case "output_options_subtitles":
			// The README sample's typo: pytranscoder ignored the section
			// silently; we do what the author meant, loudly.
			d.Warnf(kv.KeyN, kv.Path, "did you mean output_options_subtitle? treated as output_options_subtitle")
			kvc := kv
			typo = &kvc
		case "processor":
			d.Warnf(kv.KeyN, kv.Path, "ignored: HandBrakeCLI profiles were removed in pytranscoder 2.2.5; clustertx always runs ffmpeg")
		default:
			err = decodeProfileKey(d, kv, p)
		}
		if err != nil {
			return nil, err
		}
	}
	if typo != nil {
		if p.Subtitle.set {
			d.Warnf(typo.KeyN, typo.Path, "output_options_subtitle is also set; this misspelt section is ignored")
		} else if p.Subtitle, err = decodeOptions(d, typo.Value, typo.Path); err != nil {
			return nil, err
		}
	}
	if video != nil && encoders != nil {
		return nil, d.Errorf(encoders.KeyN, encoders.Path, "output_options_video (line %d) and encoders: both set the video; choose one: "+
			"output_options_video for one encoder, encoders: for a chain (each variant has its own options:)", video.KeyN.Line)
	}
	ownCRF := p.has[keyCRF] && p.crf != nil
	for _, parent := range parents {
		mergeParent(d, pr, p, parent)
	}
	if ownCRF && p.chain == nil {
		what := "this profile has none (nor does any profile it includes)"
		if p.Video.set {
			what = "this profile's video is one section (output_options_video)"
		}
		return nil, p.crfAt.errorf("crf applies to the variants of encoders:, and %s; "+
			"for one encoder, write its quality option in output_options_video (e.g. -crf 24)", what)
	}
	if err := p.resolveVariants(); err != nil {
		return nil, err
	}
	return p, nil
}

// decodeProfileKey decodes one key of a profile other than include.
func decodeProfileKey(d *yamlx.Decoder, kv yamlx.Pair, p *Profile) error {
	var err error
	v, path := kv.Value, kv.Path
	switch kv.Key {
	case "input_options":
		p.Input, err = decodeOptions(d, v, path)
	case "output_options":
		p.Output, err = decodeOptions(d, v, path)
	case "output_options_audio":
		p.Audio, err = decodeOptions(d, v, path)
	case "output_options_video":
		p.Video, err = decodeOptions(d, v, path)
	case "output_options_subtitle":
		p.Subtitle, err = decodeOptions(d, v, path)
	case keyExtension:
		p.Extension, err = decodeExtension(d, v, path)
	case keyQueue:
		p.Queue, err = d.String(v, path)
	case keyThreshold:
		p.Threshold, err = decodePercent(d, v, path)
	case keyThresholdCheck:
		p.ThresholdCheck, err = decodePercent(d, v, path)
	case keyAudio:
		p.AudioSel, err = decodeLangSelect(d, v, path)
	case keySubtitle:
		p.SubtitleSel, err = decodeLangSelect(d, v, path)
		if err == nil && p.SubtitleSel.filters() && p.SubtitleSel.Default != "" {
			d.Compatf(kv.KeyN, path, "pytranscoder 2.2.7 never moved the default subtitle (its probe read no subtitle default flags); "+
				"clustertx does, as pytranscoder's docs describe: when the default subtitle is dropped, the first kept %s subtitle becomes the default",
				p.SubtitleSel.Default)
		}
	case keyAutomap:
		var b bool
		b, err = d.Bool(v, path)
		p.Automap, p.automapAt = &b, v
	case keySplit:
		p.Split, err = decodeSplit(d, v, path)
	case keyEncoders:
		p.chain, err = decodeEncoders(d, v, path)
	case keyCRF:
		var l crfLevel
		l, err = decodeCRF(d, v, path)
		p.crf, p.crfAt = l.v, l.at
	case keyQuality:
		p.Quality, err = decodeQuality(d, v, path)
	default:
		return d.Unknown(kv, suggest(kv.Key, profileKeys))
	}
	if err == nil {
		p.has[kv.Key] = true
	}
	return err
}

// decodeInclude resolves `include: "base cuda"` (a YAML list is accepted
// too) against the profiles defined so far.
func decodeInclude(d *yamlx.Decoder, kv yamlx.Pair, set *Set) ([]*Profile, error) {
	items, err := d.Strings(kv.Value, kv.Path, true)
	if err != nil {
		return nil, err
	}
	var parents []*Profile
	for _, item := range items {
		for _, name := range strings.Fields(item) {
			parent, ok := set.Get(name)
			if !ok {
				return nil, d.Errorf(kv.Value, kv.Path, "included %q not defined above (a profile can only include profiles defined earlier in the file)", name)
			}
			parents = append(parents, parent)
		}
	}
	return parents, nil
}

// mergeParent folds one included parent into p. Parents are applied left to
// right, so the child wins, then earlier parents, then later ones. Parents
// are copied, never shared (pytranscoder aliased them, so a later include
// could modify an earlier profile).
func mergeParent(d *yamlx.Decoder, pr yamlx.Pair, p, parent *Profile) {
	mergeVideo(d, pr, p, parent)
	for _, sec := range []struct {
		name     string
		dst, src *Options
	}{
		{"input_options", &p.Input, &parent.Input}, {"output_options", &p.Output, &parent.Output},
		{"output_options_audio", &p.Audio, &parent.Audio}, {"output_options_video", &p.Video, &parent.Video},
		{"output_options_subtitle", &p.Subtitle, &parent.Subtitle},
	} {
		if sec.dst == &p.Video && p.chain != nil {
			continue // an encoders: chain is the video; see mergeVideo
		}
		if sec.dst.str && len(sec.dst.words) > 0 && len(sec.src.words) > 0 {
			d.Warnf(pr.KeyN, pr.Path+"."+sec.name, "string-form section merged with %s's by flag name (pytranscoder 2.2.7 mangled string-form merges; its README said the parent's options are ignored)", parent.Name)
		}
		*sec.dst = mergeOptions(*sec.src, *sec.dst)
	}
	inherit := func(key string, set func()) {
		if !p.has[key] && parent.has[key] {
			set()
			p.has[key] = true
		}
	}
	inherit(keyExtension, func() { p.Extension = parent.Extension })
	inherit(keyQueue, func() { p.Queue = parent.Queue })
	inherit(keyThreshold, func() { p.Threshold = parent.Threshold })
	inherit(keyThresholdCheck, func() { p.ThresholdCheck = parent.ThresholdCheck })
	inherit(keyAudio, func() { p.AudioSel = parent.AudioSel.clone() })
	inherit(keySubtitle, func() { p.SubtitleSel = parent.SubtitleSel.clone() })
	inherit(keyAutomap, func() { v := *parent.Automap; p.Automap, p.automapAt = &v, parent.automapAt })
	inherit(keySplit, func() { v := *parent.Split; p.Split = &v })
	inherit(keyCRF, func() {
		if parent.crf != nil {
			v := *parent.crf
			p.crf = &v
		}
		p.crfAt = parent.crfAt
	})
	inherit(keyQuality, func() { p.Quality = parent.Quality.Clone() })
}

// mergeVideo applies include to the video, which is either a video section
// (output_options_video) or an encoders: chain. The nearest one wins, as
// for other keys: the child's own, then its includes' left to right. A
// chain is inherited whole, and is then re-resolved against the child's
// crf; a video section set nearer replaces an included chain.
func mergeVideo(d *yamlx.Decoder, pr yamlx.Pair, p, parent *Profile) {
	if parent.chain == nil || p.chain != nil {
		return
	}
	if p.Video.set {
		if videoCodecFlag(p.Video) == "" && videoCodecFlag(p.Output) == "" {
			d.Warnf(pr.KeyN, pr.Path+".output_options_video", "this video section replaces the encoders: of %s (line %d) and names no encoder (-c:v), so ffmpeg picks its default; "+
				"to change the quality of every variant, set crf: instead", parent.Name, parent.def.line)
		}
		return
	}
	p.chain = slices.Clone(parent.chain)
	p.has[keyEncoders] = true
}

// decodeOptions decodes an option section: a string is split shell-style; in
// a list each item is split shell-style and kept whole, and repeated flags
// are all kept. Null is an empty (but present) section.
func decodeOptions(d *yamlx.Decoder, n *yaml.Node, path string) (Options, error) {
	o := Options{set: true}
	if yamlx.IsNull(n) {
		return o, nil
	}
	if n.Kind == yaml.ScalarNode {
		words, err := SplitShell(n.Value)
		if err != nil {
			return o, d.Errorf(n, path, "%v in %q", err, n.Value)
		}
		o.words, o.str = words, true
		return o, nil
	}
	if n.Kind != yaml.SequenceNode {
		return o, d.Errorf(n, path, "expected ffmpeg options as a string or a list of strings")
	}
	seen := map[string]bool{}
	for i, item := range n.Content {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		s, err := d.String(item, ipath)
		if err != nil {
			return o, err
		}
		words, err := SplitShell(s)
		if err != nil {
			return o, d.Errorf(item, ipath, "%v in %q", err, s)
		}
		warnListItem(d, item, ipath, s, words, seen)
		o.words = append(o.words, words...)
	}
	return o, nil
}

// warnListItem says where pytranscoder 2.2.7 read a list item differently:
// it kept only the first word of an item with more than two words, and only
// the last of several items starting with the same flag.
func warnListItem(d *yamlx.Decoder, n *yaml.Node, path, s string, words []string, seen map[string]bool) {
	if f := strings.Fields(s); len(f) > 2 {
		d.Warnf(n, path, "kept whole as %q (pytranscoder 2.2.7 split it on blanks and kept only %q)", words, f[0])
	}
	if len(words) > 0 && isFlag(words[0]) {
		if seen[words[0]] {
			d.Warnf(n, path, "repeated %s is kept (pytranscoder 2.2.7 kept only the last item starting with %s)", words[0], words[0])
		}
		seen[words[0]] = true
	}
}

// decodeExtension adds the leading dot when the config omits it.
func decodeExtension(d *yamlx.Decoder, n *yaml.Node, path string) (string, error) {
	s, err := d.String(n, path)
	s = strings.TrimSpace(s)
	if err != nil || s == "" {
		return "", err
	}
	if !strings.HasPrefix(s, ".") {
		s = "." + s
	}
	return s, nil
}

// decodePercent decodes threshold and threshold_check: 0-100, quoted numbers
// and a trailing % accepted.
func decodePercent(d *yamlx.Decoder, n *yaml.Node, path string) (int, error) {
	v, err := d.Int(n, path)
	if err != nil {
		return 0, err
	}
	if v < 0 || v > 100 {
		return 0, d.Errorf(n, path, "expected a percentage from 0 to 100, found %d", v)
	}
	return v, nil
}

var langKeys = []string{"include_languages", "exclude_languages", "default_language"}

// decodeLangSelect decodes an audio:/subtitle: map. A language in both
// lists is kept: the docs said includes take precedence (2.2.7 dropped it).
func decodeLangSelect(d *yamlx.Decoder, n *yaml.Node, path string) (*LangSelect, error) {
	pairs, err := d.Mapping(n, path)
	if err != nil {
		return nil, err
	}
	sel := &LangSelect{}
	var exclN *yaml.Node
	for _, kv := range pairs {
		switch kv.Key {
		case "include_languages":
			sel.Include, err = decodeLangs(d, kv)
		case "exclude_languages":
			sel.Exclude, err = decodeLangs(d, kv)
			exclN = kv.Value
		case "default_language":
			var s string
			s, err = d.String(kv.Value, kv.Path)
			sel.Default = strings.ToLower(strings.TrimSpace(s))
		default:
			err = d.Unknown(kv, suggest(kv.Key, langKeys))
		}
		if err != nil {
			return nil, err
		}
	}
	for _, l := range sel.Exclude {
		if slices.Contains(sel.Include, l) {
			d.Warnf(exclN, path+".exclude_languages", "%q is also in include_languages; include wins and it is kept (pytranscoder 2.2.7 dropped it)", l)
		}
	}
	sel.Exclude = slices.DeleteFunc(sel.Exclude, func(l string) bool { return slices.Contains(sel.Include, l) })
	return sel, nil
}

// decodeLangs accepts a list, a space-separated string, or both ("- eng jpn").
func decodeLangs(d *yamlx.Decoder, kv yamlx.Pair) ([]string, error) {
	items, err := d.Strings(kv.Value, kv.Path, true)
	if err != nil {
		return nil, err
	}
	var langs []string
	for _, it := range items {
		for _, l := range strings.Fields(it) {
			langs = append(langs, strings.ToLower(l))
		}
	}
	return langs, nil
}

// suggest returns the "did you mean X?" hint for an unknown word, or "".
func suggest(word string, known []string) string { return textx.Suggest(word, known) }

// WarnProfileAutomap warns, once per automap: key, where a profile's
// automap differs from config.automap: pytranscoder 2.2.6 and later
// ignored it (only config.automap counted), clustertx honours it as
// pytranscoder's docs describe. Called once the config section is decoded.
func WarnProfileAutomap(d *yamlx.Decoder, set *Set, global bool) {
	warned := map[*yaml.Node]bool{}
	for _, name := range set.Names() {
		p, _ := set.Get(name)
		if p.Automap == nil || *p.Automap == global || p.automapAt == nil || warned[p.automapAt] {
			continue
		}
		warned[p.automapAt] = true
		d.Compatf(p.automapAt, p.def.path+".automap", "pytranscoder 2.2.6+ ignored a profile's automap and used config.automap (%s); "+
			"clustertx honours it, as pytranscoder's docs describe: %s stream mapping for this profile", yesNo(global), onOff(*p.Automap))
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func onOff(b bool) string {
	if b {
		return "automatic"
	}
	return "no automatic"
}
