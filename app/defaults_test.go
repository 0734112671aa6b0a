package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"clustertx/internal/testenv"
	"clustertx/media"
)

// With no config at all, `clustertx FILE…` does something useful: the
// built-in rules skip HEVC sources and encode H.264 ones to HEVC, and
// --dry-run names the built-in rule that applied.
func TestEmbeddedDefaultRules(t *testing.T) {
	testenv.NeedFFmpeg(t)
	freshHome(t)
	dir := t.TempDir()
	h264 := filepath.Join(dir, "old.mp4")
	hevc := filepath.Join(dir, "new.mkv")
	testenv.MakeClip(t, h264, testenv.Clip{Seconds: 2, AudioLangs: []string{"eng"}})
	testenv.MakeClip(t, hevc, testenv.Clip{Seconds: 1, VCodec: "libx265"})

	var out, errb bytes.Buffer
	if err := Run(context.Background(), []string{"clustertx", "--dry-run", h264, hevc}, &out, &errb); err != nil {
		t.Fatalf("dry run: %v\n%s\n%s", err, out.String(), errb.String())
	}
	for _, want := range []string{
		"rule:     everything else to HEVC (built-in default rule; no config file found)",
		"profile:  hevc",
		"rule:     already HEVC (H.265) (built-in default rule; no config file found)",
		`skipped by rule "already HEVC (H.265)"`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	errb.Reset()
	hevcBefore, _ := os.ReadFile(hevc)
	if err := Run(context.Background(), []string{"clustertx", h264, hevc}, &out, &errb); err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, out.String(), errb.String())
	}
	dst := filepath.Join(dir, "old.mkv")
	info, err := (&media.Prober{FFprobe: "ffprobe"}).Probe(context.Background(), dst)
	if err != nil || info.VCodec() != "hevc" || len(info.Audio) != 1 {
		t.Fatalf("H.264 source not encoded to HEVC: %v %+v\n%s", err, info, out.String())
	}
	if _, err := os.Stat(h264); !os.IsNotExist(err) {
		t.Error("H.264 source not replaced by its verified output")
	}
	if after, _ := os.ReadFile(hevc); !bytes.Equal(after, hevcBefore) {
		t.Error("HEVC source was touched")
	}
	if !strings.Contains(out.String(), "already HEVC") {
		t.Errorf("summary does not say why the HEVC file was skipped:\n%s", out.String())
	}
}
