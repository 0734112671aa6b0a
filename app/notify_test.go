package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"clustertx/internal/testenv"
	"clustertx/journal"
)

// A failed encode reaches a webhook as it fails and again in the summary;
// a notification target that refuses is a warning and the exit code stays 3.
func TestNotifyReachesWebhookAndNeverChangesTheOutcome(t *testing.T) {
	testenv.NeedFFmpeg(t)
	freshHome(t)
	var mu sync.Mutex
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("body %q: %v", b, err)
		}
		mu.Lock()
		bodies = append(bodies, m)
		mu.Unlock()
	}))
	defer srv.Close()
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer refusing.Close()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "transcode.yml")
	os.WriteFile(cfg, []byte(`config:
  notify_each_failure: yes
profiles:
  broken:
    output_options: "-vf no_such_filter_here -c:v libx264"
    extension: .mkv
`), 0o644)
	clip := filepath.Join(dir, "clip.mp4")
	testenv.MakeClip(t, clip, testenv.Clip{Seconds: 1})

	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"clustertx", "-y", cfg, "--no-journal", "--max-attempts", "1",
		"--notify", srv.URL + "/hook", "--notify", refusing.URL, "-p", "broken", clip}, &out, &errb)
	if Code(err) != ExitIncomplete {
		t.Fatalf("code %d (%v), want 3\n%s\n%s", Code(err), err, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "clustertx: warning: notify "+refusing.URL) || !strings.Contains(errb.String(), "500 Internal Server Error") {
		t.Errorf("no warning for the refusing target:\n%s", errb.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 {
		t.Fatalf("webhook got %d notifications, want 2: %v", len(bodies), bodies)
	}
	file, run := bodies[0], bodies[1]
	if file["event"] != "file_failed" || !strings.Contains(file["title"].(string), "clip.mp4") {
		t.Errorf("first notification: %v", file)
	}
	counts, _ := run["counts"].(map[string]any)
	failed, _ := run["failed"].([]any)
	if run["event"] != "run_finished" || run["exit_code"] != float64(3) || counts["failed"] != float64(1) || len(failed) != 1 {
		t.Fatalf("summary notification: %v", run)
	}
	if f := failed[0].(map[string]any); f["path"] != clip || !strings.Contains(f["reason"].(string), "ffmpeg exited 1") {
		t.Errorf("failed file: %v", f)
	}
}

func TestBadNotifyURLIsFatalBeforeAnyWork(t *testing.T) {
	freshHome(t)
	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"clustertx", "--notify", "smtp://mail/x", "nothing.mkv"}, &out, &errb)
	if Code(err) != ExitFatal || !strings.Contains(err.Error(), `unknown scheme "smtp"`) {
		t.Fatalf("code %d, err %v", Code(err), err)
	}
}

// A run that cannot take the journal's lock (last night's run still holds
// it) exits 4 and says so to the notification targets: an unattended
// batch must not fail silently night after night.
func TestNotifyWhenTheJournalIsLocked(t *testing.T) {
	freshHome(t)
	got := make(chan map[string]any, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("body %q: %v", b, err)
		}
		got <- m
	}))
	defer srv.Close()
	dir := t.TempDir()
	jpath := filepath.Join(dir, "journal.jsonl")
	holder, err := journal.Open(jpath)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	clip := filepath.Join(dir, "clip.mkv")
	os.WriteFile(clip, []byte("not probed: the run stops before"), 0o644)

	var out, errb bytes.Buffer
	err = Run(context.Background(), []string{"clustertx", "--journal", jpath, "--notify", srv.URL, clip}, &out, &errb)
	if Code(err) != ExitLocked {
		t.Fatalf("code %d (%v), want 4\n%s", Code(err), err, errb.String())
	}
	select {
	case m := <-got:
		if m["event"] != "run_finished" || m["exit_code"] != float64(4) || m["outcome"] != "not started" ||
			!strings.Contains(m["title"].(string), "not started") || !strings.Contains(m["error"].(string), "pid") {
			t.Errorf("notification: %v", m)
		}
	default:
		t.Fatal("no notification for a run that could not start")
	}
}
