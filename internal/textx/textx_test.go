package textx

import "testing"

var predicates = []string{"vcodec", "acodec", "scodec", "path", "res_height", "res_width", "runtime", "filesize_mb", "fps"}

func TestSuggest(t *testing.T) {
	hostKeys := []string{"path-substitutions", "working_dir", "identity_file", "port", "ip"}
	for _, tc := range []struct {
		word  string
		known []string
		want  string
	}{
		// On main, res suggested fps (two edits away) and filesize nothing.
		{"res", predicates, "did you mean res_height or res_width?"},
		{"filesize", predicates, "did you mean filesize_mb?"},
		{"res_heigth", predicates, "did you mean res_height?"},
		{"codec", predicates, "did you mean acodec, scodec or vcodec?"},
		{"FPS", predicates, "did you mean fps?"},
		{"size", predicates, ""},
		{"critera", []string{"profile", "criteria", "split"}, "did you mean criteria?"},
		{"path_substitutions", hostKeys, "did you mean path-substitutions?"},
		{"workingdir", hostKeys, "did you mean working_dir?"},
		{"IdentityFile", hostKeys, "did you mean identity_file?"},
		{"prot", hostKeys, "did you mean port?"},
		{"colour", hostKeys, ""},
		{"", hostKeys, ""},
	} {
		if got := Suggest(tc.word, tc.known); got != tc.want {
			t.Errorf("Suggest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
}
