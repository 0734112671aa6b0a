package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// received is one request the test server got.
type received struct {
	Method, Path, Query, ContentType string
	Header                           http.Header
	Body                             string
}

// server records every request; status is what it answers.
func server(t *testing.T, status int) (*httptest.Server, func() []received) {
	t.Helper()
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), r.Header.Clone(), string(b)})
		mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, "answer from server")
	}))
	t.Cleanup(srv.Close)
	return srv, func() []received {
		mu.Lock()
		defer mu.Unlock()
		return append([]received(nil), got...)
	}
}

func sample() *Summary {
	start := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	return &Summary{
		Manager: "nas", Started: start, Finished: start.Add(3*time.Hour + 2*time.Second),
		ExitCode: 3, Outcome: "failed",
		Counts: map[string]int{"done": 5, "kept": 1, "skipped": 2, "failed": 1, "not run": 1},
		Failed: []Failure{
			{Path: "/media/a.mkv", Host: "gpu", Outcome: "failed", Reason: "ffmpeg exited 1: Invalid data"},
			{Path: "/media/b.mkv", Outcome: "not run", Reason: "no reachable host"},
		},
		Saved: 1 << 30,
	}
}

func TestGenericWebhookGetsTheJSONSummary(t *testing.T) {
	srv, got := server(t, http.StatusOK)
	n, err := New([]string{srv.URL + "/hook?x=1"}, false, func(err error) { t.Errorf("warning: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	n.RunFinished(context.Background(), sample())
	reqs := got()
	if len(reqs) != 1 {
		t.Fatalf("requests = %d, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/hook" || r.Query != "x=1" || r.ContentType != "application/json" {
		t.Errorf("request = %s %s?%s (%s)", r.Method, r.Path, r.Query, r.ContentType)
	}
	var body struct {
		Schema, Event, Title, Message string
		ExitCode                      int            `json:"exit_code"`
		Counts                        map[string]int `json:"counts"`
		Failed                        []Failure      `json:"failed"`
		Manager                       string         `json:"manager"`
	}
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	if body.Schema != Schema || body.Event != "run_finished" || body.ExitCode != 3 || body.Manager != "nas" {
		t.Errorf("body = %+v", body)
	}
	if body.Counts["done"] != 5 || body.Counts["failed"] != 1 || body.Counts["not run"] != 1 {
		t.Errorf("counts = %v", body.Counts)
	}
	if len(body.Failed) != 2 || body.Failed[0].Path != "/media/a.mkv" || body.Failed[0].Reason != "ffmpeg exited 1: Invalid data" {
		t.Errorf("failed = %+v", body.Failed)
	}
	if body.Title != "clustertx: run finished with problems on nas (exit 3)" ||
		!strings.HasPrefix(body.Message, "5 done, 1 kept, 2 skipped, 1 failed, 1 not run; exit code 3; 3h0m2s") ||
		!strings.Contains(body.Message, "failed: /media/a.mkv: ffmpeg exited 1: Invalid data") {
		t.Errorf("title %q message %q", body.Title, body.Message)
	}
}

func TestEachTargetGetsItsOwnBody(t *testing.T) {
	srv, got := server(t, http.StatusOK)
	host := strings.TrimPrefix(srv.URL, "http://")
	old := discordAPI
	discordAPI = srv.URL + "/api/webhooks/"
	defer func() { discordAPI = old }()

	for _, tc := range []struct {
		url   string
		check func(t *testing.T, r received)
	}{
		{"ntfy+http://" + host + "/nightly?token=tk_secret", func(t *testing.T, r received) {
			if r.Path != "/nightly" || !strings.HasPrefix(r.ContentType, "text/plain") {
				t.Errorf("ntfy request %s (%s)", r.Path, r.ContentType)
			}
			if r.Header.Get("Title") != "clustertx: run finished with problems on nas (exit 3)" ||
				r.Header.Get("Priority") != "high" || r.Header.Get("Tags") != "warning" ||
				r.Header.Get("Authorization") != "Bearer tk_secret" {
				t.Errorf("ntfy headers %v", r.Header)
			}
			if !strings.Contains(r.Body, "1 failed") || !strings.Contains(r.Body, "/media/a.mkv") {
				t.Errorf("ntfy body %q", r.Body)
			}
		}},
		{"ntfy+http://alice:pw@" + host + "/nightly", func(t *testing.T, r received) {
			if u, p, ok := (&http.Request{Header: r.Header}).BasicAuth(); !ok || u != "alice" || p != "pw" {
				t.Errorf("ntfy basic auth %v", r.Header)
			}
		}},
		{"gotify+http://" + host + "/gotify/AppToken1", func(t *testing.T, r received) {
			var b struct {
				Title, Message string
				Priority       int
			}
			if err := json.Unmarshal([]byte(r.Body), &b); err != nil {
				t.Fatal(err)
			}
			if r.Path != "/gotify/message" || r.Header.Get("X-Gotify-Key") != "AppToken1" || b.Priority != 8 ||
				!strings.HasPrefix(b.Title, "clustertx: run finished with problems") || !strings.Contains(b.Message, "1 not run") {
				t.Errorf("gotify %s %v %+v", r.Path, r.Header, b)
			}
		}},
		{"discord://WebhookToken@123456", func(t *testing.T, r received) {
			var b struct{ Content string }
			if err := json.Unmarshal([]byte(r.Body), &b); err != nil {
				t.Fatal(err)
			}
			if r.Path != "/api/webhooks/123456/WebhookToken" || !strings.HasPrefix(b.Content, "**clustertx: run finished with problems") ||
				!strings.Contains(b.Content, "/media/b.mkv") {
				t.Errorf("discord %s %q", r.Path, b.Content)
			}
		}},
		{"apprise+http://" + host + "/apprise/nightly-key?tags=admin", func(t *testing.T, r received) {
			var b struct{ Title, Body, Type, Tag string }
			if err := json.Unmarshal([]byte(r.Body), &b); err != nil {
				t.Fatal(err)
			}
			if r.Path != "/apprise/notify/nightly-key" || b.Type != "failure" || b.Tag != "admin" ||
				!strings.HasPrefix(b.Title, "clustertx: ") || !strings.Contains(b.Body, "5 done") {
				t.Errorf("apprise %s %+v", r.Path, b)
			}
		}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			before := len(got())
			n, err := New([]string{tc.url}, false, func(err error) { t.Errorf("warning: %v", err) })
			if err != nil {
				t.Fatal(err)
			}
			n.RunFinished(context.Background(), sample())
			reqs := got()[before:]
			if len(reqs) != 1 {
				t.Fatalf("requests = %d", len(reqs))
			}
			tc.check(t, reqs[0])
		})
	}
}

func TestEachFailureAndThenTheSummary(t *testing.T) {
	srv, got := server(t, http.StatusOK)
	n, err := New([]string{srv.URL}, true, func(err error) { t.Errorf("warning: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	n.FileFailed(context.Background(), Failure{Path: "/m/x.mkv", Host: "gpu", Outcome: "failed", Reason: "boom"})
	n.RunFinished(context.Background(), sample())
	reqs := got()
	if len(reqs) != 2 {
		t.Fatalf("requests = %d, want 2", len(reqs))
	}
	var first, second struct {
		Event string
		Title string
		File  *Failure
	}
	_ = json.Unmarshal([]byte(reqs[0].Body), &first)
	_ = json.Unmarshal([]byte(reqs[1].Body), &second)
	if first.Event != "file_failed" || first.File == nil || first.File.Path != "/m/x.mkv" || first.Title != "clustertx: failed: x.mkv" {
		t.Errorf("first = %+v", first)
	}
	if second.Event != "run_finished" {
		t.Errorf("second = %+v", second)
	}
}

func TestFailedDeliveryIsAWarningWithoutSecrets(t *testing.T) {
	srv, _ := server(t, http.StatusUnauthorized)
	host := strings.TrimPrefix(srv.URL, "http://")
	var warnings []error
	var mu sync.Mutex
	n, err := New([]string{"gotify+http://" + host + "/SecretToken", srv.URL + "/down"}, false, func(err error) {
		mu.Lock()
		warnings = append(warnings, err)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	n.RunFinished(context.Background(), sample())
	if len(warnings) != 2 {
		t.Fatalf("warnings = %v", warnings)
	}
	for _, w := range warnings {
		if !strings.Contains(w.Error(), "401 Unauthorized") || strings.Contains(w.Error(), "SecretToken") {
			t.Errorf("warning %q", w)
		}
	}

	// A server that is not there: a warning too, and no hang.
	srv2, _ := server(t, http.StatusOK)
	srv2.Close()
	warnings = nil
	n, _ = New([]string{srv2.URL}, false, func(err error) { warnings = append(warnings, err) })
	n.RunFinished(context.Background(), sample())
	if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "refused") {
		t.Errorf("warnings = %v", warnings)
	}
}

func TestParseRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"smtp://mail/x", "ntfy://host", "gotify://host", "discord://123456", "apprise://host", "https:///x", "ntfy://h/a/b"} {
		if _, err := Parse(u); err == nil {
			t.Errorf("Parse(%q): no error", u)
		}
	}
	tg, err := Parse("https://discord.com/api/webhooks/1/Tok")
	if err != nil || tg.Kind != "discord" || strings.Contains(tg.String(), "Tok") {
		t.Errorf("discord https URL: %v %v %q", tg, err, tg)
	}
}

func TestLongSummariesFitDiscord(t *testing.T) {
	s := sample()
	for i := 0; i < 500; i++ {
		s.Failed = append(s.Failed, Failure{Path: "/media/some/long/path/file.mkv", Outcome: "failed", Reason: "ffmpeg exited 1"})
	}
	text := Event{Kind: "run", Summary: s}.Text(1900)
	if n := len([]rune(text)); n > 1900 || !strings.Contains(text, "more") {
		t.Errorf("text of %d runes: …%s", n, text[len(text)-60:])
	}
}
