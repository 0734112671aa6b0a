// Package notify sends the end-of-run summary, and optionally each failed
// file, to the places a person watches when nobody watches the run: a
// generic JSON webhook, ntfy, Gotify, Discord and an Apprise API server.
// It only speaks HTTP; what to send comes from app, which maps the
// manager's report into a Summary. A notification that cannot be delivered
// is the caller's warning, never a change in the run's outcome.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Schema names the generic webhook body.
const Schema = "clustertx.notify/v1"

// Summary is what an end-of-run notification says.
type Summary struct {
	Manager  string         `json:"manager,omitempty"` // the manager's host name
	Cluster  []string       `json:"clusters,omitempty"`
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
	ExitCode int            `json:"exit_code"`
	Outcome  string         `json:"outcome"`          // "ok", "failed", "interrupted", …
	Counts   map[string]int `json:"counts"`           // by file outcome: done, kept, skipped, failed, not run
	Failed   []Failure      `json:"failed,omitempty"` // failed and not-run files
	Error    string         `json:"error,omitempty"`  // the run's own error, if it had one
	Saved    int64          `json:"bytes_saved"`
}

// Failure is one file that failed or was not run.
type Failure struct {
	Path    string `json:"path"`
	Host    string `json:"host,omitempty"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
}

// Event is what is sent: the end of a run or one failed file.
type Event struct {
	Kind    string   // "run" or "file"
	Summary *Summary // Kind "run"
	File    *Failure // Kind "file"
}

// genericBody is the JSON a plain http(s) webhook receives.
type genericBody struct {
	Schema string `json:"schema"`
	Event  string `json:"event"` // run_finished, file_failed
	Title  string `json:"title"`
	Text   string `json:"message"`
	*Summary
	File *Failure `json:"file,omitempty"`
}

// Title is the one-line headline of an event.
func (e Event) Title() string {
	if e.Kind == "file" {
		return "clustertx: " + e.File.Outcome + ": " + baseName(e.File.Path)
	}
	s := e.Summary
	where := ""
	if s.Manager != "" {
		where = " on " + s.Manager
	}
	switch {
	case s.Outcome == "interrupted":
		return "clustertx: run interrupted" + where
	case s.Outcome == "not started":
		return fmt.Sprintf("clustertx: run not started%s (exit %d)", where, s.ExitCode)
	case s.ExitCode == 0:
		return "clustertx: run finished" + where
	default:
		return fmt.Sprintf("clustertx: run finished with problems%s (exit %d)", where, s.ExitCode)
	}
}

// Text is the plain-text message of an event, at most max runes (0: no
// limit); failed files are listed until it is full.
func (e Event) Text(max int) string {
	var b strings.Builder
	if e.Kind == "file" {
		f := e.File
		fmt.Fprintf(&b, "%s\n%s", f.Path, f.Reason)
		if f.Host != "" {
			fmt.Fprintf(&b, "\nhost: %s", f.Host)
		}
		return truncate(b.String(), max)
	}
	s := e.Summary
	var parts []string
	for _, k := range []string{"done", "kept", "skipped", "failed", "not run"} {
		if n := s.Counts[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	if len(parts) == 0 {
		parts = []string{"no files"}
	}
	fmt.Fprintf(&b, "%s; exit code %d; %s", strings.Join(parts, ", "), s.ExitCode, s.Finished.Sub(s.Started).Round(time.Second))
	if s.Error != "" {
		fmt.Fprintf(&b, "\nerror: %s", s.Error)
	}
	for i, f := range s.Failed {
		line := fmt.Sprintf("\n%s: %s: %s", f.Outcome, f.Path, f.Reason)
		if max > 0 && len([]rune(b.String()+line)) > max-40 {
			fmt.Fprintf(&b, "\n… and %d more", len(s.Failed)-i)
			break
		}
		b.WriteString(line)
	}
	return truncate(b.String(), max)
}

func truncate(s string, max int) string {
	r := []rune(s)
	if max <= 0 || len(r) <= max {
		return s
	}
	return string(r[:max-1]) + "…"
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// Target is one place to notify, parsed from a URL.
type Target struct {
	Kind string // webhook, ntfy, gotify, discord, apprise
	raw  string // for messages, with secrets hidden
	url  string // the HTTP endpoint
	auth func(*http.Request)
	tags string // apprise: tag filter
}

func (t *Target) String() string { return t.raw }

// discordAPI is Discord's webhook endpoint (a variable for tests).
var discordAPI = "https://discord.com/api/webhooks/"

// Parse reads a notification URL:
//
//	http(s)://host/path            generic webhook: POST of the JSON summary
//	ntfy://[user:pass@]host/topic  ntfy (?token=T for an access token)
//	gotify://host[/path]/TOKEN     Gotify, with an application token
//	discord://TOKEN@WEBHOOK_ID     Discord webhook (or its https://discord.com/api/webhooks/ID/TOKEN URL)
//	apprise://host[:port]/KEY      Apprise API, a stored configuration KEY (?tags=a,b)
//
// ntfy, gotify and apprise use https; ntfy+http://, gotify+http:// and
// apprise+http:// use plain http (a server on the LAN).
func Parse(raw string) (*Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("notify URL: %w", err)
	}
	scheme, httpScheme := u.Scheme, "https"
	if base, ok := strings.CutSuffix(scheme, "+http"); ok {
		scheme, httpScheme = base, "http"
	}
	t := &Target{raw: redact(u)}
	path := strings.Trim(u.Path, "/")
	switch scheme {
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("notify URL %s: no host", t.raw)
		}
		if (u.Host == "discord.com" || u.Host == "discordapp.com") && strings.HasPrefix(u.Path, "/api/webhooks/") {
			t.Kind, t.url = "discord", raw
			return t, nil
		}
		t.Kind, t.url = "webhook", raw
	case "ntfy":
		if u.Host == "" || path == "" || strings.Contains(path, "/") {
			return nil, fmt.Errorf("notify URL %s: want ntfy://host/topic", t.raw)
		}
		t.Kind = "ntfy"
		t.url = (&url.URL{Scheme: httpScheme, Host: u.Host, Path: "/" + path}).String()
		t.auth = credentials(u, "token")
	case "gotify":
		dir, token := splitLast(path)
		if u.Host == "" || token == "" {
			return nil, fmt.Errorf("notify URL %s: want gotify://host/TOKEN", t.raw)
		}
		t.Kind = "gotify"
		t.url = (&url.URL{Scheme: httpScheme, Host: u.Host, Path: joinPath(dir, "message")}).String()
		t.auth = func(r *http.Request) { r.Header.Set("X-Gotify-Key", token) }
	case "discord":
		token, id := u.User.Username(), u.Host
		if token == "" || id == "" {
			return nil, fmt.Errorf("notify URL %s: want discord://TOKEN@WEBHOOK_ID", t.raw)
		}
		t.Kind, t.url = "discord", discordAPI+url.PathEscape(id)+"/"+url.PathEscape(token)
	case "apprise":
		dir, key := splitLast(path)
		if u.Host == "" || key == "" {
			return nil, fmt.Errorf("notify URL %s: want apprise://host/KEY", t.raw)
		}
		t.Kind = "apprise"
		t.url = (&url.URL{Scheme: httpScheme, Host: u.Host, Path: joinPath(dir, "notify", key)}).String()
		t.tags = u.Query().Get("tags")
		t.auth = credentials(u, "")
	default:
		return nil, fmt.Errorf("notify URL %s: unknown scheme %q (http, https, ntfy, gotify, discord, apprise)", t.raw, u.Scheme)
	}
	return t, nil
}

func splitLast(p string) (dir, last string) {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[:i], p[i+1:]
	}
	return "", p
}

func joinPath(elem ...string) string {
	var parts []string
	for _, e := range elem {
		if e != "" {
			parts = append(parts, e)
		}
	}
	return "/" + strings.Join(parts, "/")
}

// credentials sets basic auth from the URL's user info, or a bearer token
// from the query parameter tokenParam.
func credentials(u *url.URL, tokenParam string) func(*http.Request) {
	tok := ""
	if tokenParam != "" {
		tok = u.Query().Get(tokenParam)
	}
	user := u.User
	return func(r *http.Request) {
		if tok != "" {
			r.Header.Set("Authorization", "Bearer "+tok)
		} else if user != nil {
			pw, _ := user.Password()
			r.SetBasicAuth(user.Username(), pw)
		}
	}
}

// redact hides secrets (passwords, tokens, the last path element of a
// Gotify, Discord or Apprise URL) so the URL can appear in a warning.
func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User("***")
	}
	if q := c.Query(); q.Has("token") {
		q.Set("token", "***")
		c.RawQuery = q.Encode()
	}
	switch strings.TrimSuffix(c.Scheme, "+http") {
	case "gotify", "apprise":
		dir, _ := splitLast(strings.Trim(c.Path, "/"))
		c.Path = joinPath(dir, "***")
		c.RawPath = ""
	case "http", "https":
		if strings.HasPrefix(c.Path, "/api/webhooks/") {
			dir, _ := splitLast(strings.Trim(c.Path, "/"))
			c.Path = joinPath(dir, "***")
			c.RawPath = ""
		}
	}
	return c.String()
}

// request builds the HTTP request that delivers e to t.
func (t *Target) request(ctx context.Context, e Event) (*http.Request, error) {
	var body []byte
	contentType := "application/json"
	headers := map[string]string{}
	var err error
	failure := e.Kind == "file" || e.Summary.ExitCode != 0
	switch t.Kind {
	case "webhook":
		g := genericBody{Schema: Schema, Event: "run_finished", Title: e.Title(), Text: e.Text(0), Summary: e.Summary, File: e.File}
		if e.Kind == "file" {
			g.Event = "file_failed"
		}
		body, err = json.Marshal(g)
	case "ntfy":
		// ntfy takes the message as the body and the rest as headers; a
		// message over 4 KB would become an attachment.
		contentType = "text/plain; charset=utf-8"
		body = []byte(e.Text(3800))
		headers["Title"] = e.Title()
		headers["Tags"] = "white_check_mark"
		if failure {
			headers["Tags"], headers["Priority"] = "warning", "high"
		}
	case "gotify":
		prio := 5
		if failure {
			prio = 8
		}
		body, err = json.Marshal(map[string]any{"title": e.Title(), "message": e.Text(0), "priority": prio})
	case "discord":
		// Discord refuses content over 2000 characters.
		body, err = json.Marshal(map[string]any{"content": truncate("**"+e.Title()+"**\n"+e.Text(1900), 2000)})
	case "apprise":
		typ := "success"
		if failure {
			typ = "failure"
		}
		m := map[string]any{"title": e.Title(), "body": e.Text(0), "type": typ}
		if t.tags != "" {
			m["tag"] = t.tags
		}
		body, err = json.Marshal(m)
	default:
		return nil, fmt.Errorf("unknown target kind %q", t.Kind)
	}
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "clustertx")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if t.auth != nil {
		t.auth(req)
	}
	return req, nil
}

// Send delivers e to t: one POST, a 2xx answer is success.
func (t *Target) Send(ctx context.Context, client *http.Client, e Event) error {
	req, err := t.request(ctx, e)
	if err != nil {
		return fmt.Errorf("notify %s: %w", t.raw, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may hold a token
		}
		return fmt.Errorf("notify %s: %w", t.raw, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("notify %s: %s: %s", t.raw, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// Notifier sends events to every target. Its zero value sends nothing.
type Notifier struct {
	Targets []*Target
	// EachFailure: also send one notification per failed file, as it fails.
	EachFailure bool
	// Client defaults to one with a 15 s timeout.
	Client *http.Client
	// Warn is told about every notification that could not be delivered.
	Warn func(error)

	wg sync.WaitGroup
}

// New parses urls into a Notifier.
func New(urls []string, eachFailure bool, warn func(error)) (*Notifier, error) {
	n := &Notifier{EachFailure: eachFailure, Warn: warn}
	for _, u := range urls {
		t, err := Parse(u)
		if err != nil {
			return nil, err
		}
		n.Targets = append(n.Targets, t)
	}
	return n, nil
}

func (n *Notifier) client() *http.Client {
	if n.Client != nil {
		return n.Client
	}
	return &http.Client{Timeout: 15 * time.Second}
}

// send delivers e to every target at once and waits for all.
func (n *Notifier) send(ctx context.Context, e Event) {
	var wg sync.WaitGroup
	for _, t := range n.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t.Send(ctx, n.client(), e); err != nil && n.Warn != nil {
				n.Warn(err)
			}
		}()
	}
	wg.Wait()
}

// FileFailed sends a failed file's notification in the background when
// EachFailure is set; RunFinished waits for it. It never blocks the run.
func (n *Notifier) FileFailed(ctx context.Context, f Failure) {
	if n == nil || !n.EachFailure || len(n.Targets) == 0 {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.send(ctx, Event{Kind: "file", File: &f})
	}()
}

// RunFinished waits for per-file notifications still on their way, then
// sends the summary to every target.
func (n *Notifier) RunFinished(ctx context.Context, s *Summary) {
	if n == nil || len(n.Targets) == 0 {
		return
	}
	n.wg.Wait()
	n.send(ctx, Event{Kind: "run", Summary: s})
}
