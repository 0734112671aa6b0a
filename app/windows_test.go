package app

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"clustertx/cluster"
	"clustertx/hosts"
	"clustertx/window"
)

// Issue 18: "window closed, work remains" has an exit code of its own, so
// a cron wrapper can tell it from success (0) and failure (3); a failure
// in the same run wins.
func TestExitCodeFiveWhenAWindowClosedWithWorkLeft(t *testing.T) {
	closed := &cluster.FileResult{Path: "b.mkv", Outcome: cluster.NotRun, Reason: "window closed: --until 07:00 reached", WindowClosed: true}
	rep := &cluster.Report{Files: []*cluster.FileResult{{Path: "a.mkv", Outcome: cluster.Done}, closed}}
	if err := runResult(context.Background(), rep, nil); Code(err) != ExitWindow || ExitWindow != 5 {
		t.Fatalf("code %d (%v), want 5", Code(err), err)
	}
	rep.Files = append(rep.Files, &cluster.FileResult{Path: "c.mkv", Outcome: cluster.Failed, Reason: "ffmpeg exited 1"})
	if err := runResult(context.Background(), rep, nil); Code(err) != ExitIncomplete {
		t.Fatalf("with a failure too: code %d (%v), want 3", Code(err), err)
	}
	rep.Files = []*cluster.FileResult{closed, {Path: "d.mkv", Outcome: cluster.NotRun, Reason: "no reachable host could take it"}}
	if err := runResult(context.Background(), rep, nil); Code(err) != ExitIncomplete {
		t.Fatalf("with a file no host could take: code %d (%v), want 3", Code(err), err)
	}
	var ee *ExitError
	if err := runResult(context.Background(), &cluster.Report{Files: []*cluster.FileResult{closed}}, nil); !errors.As(err, &ee) || !strings.Contains(err.Error(), "window closed") {
		t.Fatalf("error %v does not say the window closed", err)
	}
}

func TestUntilFlag(t *testing.T) {
	freshHome(t)
	for _, bad := range []string{"7", "25:00", "07:60", "tomorrow"} {
		var out bytes.Buffer
		err := Run(context.Background(), []string{"clustertx", "--until", bad, "--no-journal", "a.mkv"}, &out, &out)
		if Code(err) != ExitUsage || !strings.Contains(err.Error(), "--until") {
			t.Errorf("--until %s: code %d (%v), want 2", bad, Code(err), err)
		}
	}
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"clustertx", "--help"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--until HH:MM", "--grace", "5 a window closed with work left"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

// clustertx hosts shows each host's window.
func TestHostsTableShowsWindow(t *testing.T) {
	w, err := window.Parse("01:00-07:00")
	if err != nil {
		t.Fatal(err)
	}
	rows := []*HostRow{
		{Host: "gamer", Type: "streaming", Role: "normal", Status: "up", def: &hosts.Def{Name: "gamer", Window: w}},
		{Host: "nas", Type: "mounted", Role: "normal", Status: "up", def: &hosts.Def{Name: "nas"}},
	}
	var out bytes.Buffer
	printHostRows(&out, rows)
	lines := strings.Split(out.String(), "\n")
	if !strings.Contains(lines[0], "WINDOW") || !strings.Contains(lines[1], "01:00-07:00(") || !strings.Contains(lines[2], " always ") {
		t.Errorf("host table:\n%s", out.String())
	}
}
