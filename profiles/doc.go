// Package profiles owns what transcode.yml says about how to encode: profiles
// and their include merging, templates (pytranscoder 2.2.6+), mixins, the
// audio/subtitle language selection that becomes -map and -disposition
// arguments, the rules that pick a profile for a file (predicates and their
// value grammar), and the ffmpeg argument words a profile produces.
//
// A profile's video is either one section (output_options_video) or, with
// the clustertx keys encoders: and crf:, an ordered chain of encoder
// variants (Variant), each an encoder with its own options, input options
// and quality level; one crf is mapped onto each encoder's own option
// through internal/encoder. Which variant a host uses is decided elsewhere:
// ForVariant turns the chosen one into a single-encoder profile, and
// WithLevel into one at another quality level. WithLevel is the one place
// a profile's level is set, for single-encoder profiles too (the quality
// search's candidates and its choice); Level reads it back.
//
// It reads the same keys as pytranscoder 2.2.7 and does what pytranscoder
// meant to do where 2.2.7 was broken, with a positioned warning wherever the
// result differs. The package is pure: it decodes yaml.Node trees handed to
// it through internal/yamlx and builds []string argv words from media.Info
// values; it never touches files, processes or the network (only its tests
// do).
package profiles
