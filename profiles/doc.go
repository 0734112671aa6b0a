// Package profiles owns what transcode.yml says about how to encode: profiles
// and their include merging, templates (pytranscoder 2.2.6+), mixins, the
// audio/subtitle language selection that becomes -map and -disposition
// arguments, the rules that pick a profile for a file (predicates and their
// value grammar), and the ffmpeg argument words a profile produces.
//
// It reads the same keys as pytranscoder 2.2.7 and does what pytranscoder
// meant to do where 2.2.7 was broken, with a positioned warning wherever the
// result differs. The package is pure: it decodes yaml.Node trees handed to
// it through internal/yamlx and builds []string argv words from media.Info
// values; it never touches files, processes or the network (only its tests
// do).
package profiles
