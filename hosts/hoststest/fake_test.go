package hoststest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"clustertx/hosts"
	"clustertx/hosts/hoststest"
)

// The controls the Fake adds to the contract (which RunConformance checks
// in hosts): Before, Die from inside it, SetFreeSpace, Calls, Running.
func TestFakeControls(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.mkv")
	if err := os.WriteFile(src, []byte("media"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := hoststest.NewFake("gamer")
	defer f.Close()

	// Before: a plain error becomes a TransportError naming the host; an
	// ExitError stays a job failure; nothing runs either way.
	f.Before = func(op, arg string) error {
		switch {
		case op == "exec" && arg == "ffmpeg":
			return &hosts.ExitError{Code: 1, Stderr: "Unknown encoder"}
		case op == "freespace":
			return errors.New("statvfs refused")
		}
		return nil
	}
	var xe *hosts.ExitError
	if err := f.Exec(ctx, []string{"ffmpeg", "-i", "x"}, nil, nil); !errors.As(err, &xe) || xe.Code != 1 || hosts.IsTransport(err) {
		t.Errorf("Before's ExitError: %v (%T)", err, err)
	}
	var te *hosts.TransportError
	if _, err := f.FreeSpace(ctx, dir); !errors.As(err, &te) || te.Host != "gamer" {
		t.Errorf("Before's plain error: %v (%T), want a TransportError of host gamer", err, err)
	}

	// SetFreeSpace reports a full disk; -1 restores the real figure.
	f.Before = nil
	f.SetFreeSpace(1024)
	if n, err := f.FreeSpace(ctx, dir); err != nil || n != 1024 {
		t.Errorf("FreeSpace after SetFreeSpace(1024) = %d, %v", n, err)
	}
	f.SetFreeSpace(-1)
	if n, err := f.FreeSpace(ctx, dir); err != nil || n <= 1024 {
		t.Errorf("real FreeSpace = %d, %v", n, err)
	}

	// Running counts commands in flight.
	done := make(chan error, 1)
	go func() { done <- f.Exec(ctx, []string{"sleep", "0.5"}, nil, nil) }()
	deadline := time.Now().Add(5 * time.Second)
	for f.Running() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f.Running() != 1 {
		t.Errorf("Running = %d while a command runs", f.Running())
	}
	if err := <-done; err != nil || f.Running() != 0 {
		t.Errorf("sleep: %v, Running after = %d", err, f.Running())
	}

	// The host dies at a chosen step: right after the upload starts.
	remote := filepath.Join(dir, "clustertx-x-src.mkv")
	f.Before = func(op, arg string) error {
		if op == "upload" {
			f.Die(errors.New("power cut"))
		}
		return nil
	}
	err := f.Upload(ctx, src, remote)
	if !errors.As(err, &te) || te.Err.Error() != "power cut" {
		t.Errorf("upload on a host dying: %v", err)
	}
	if _, serr := os.Stat(remote); serr == nil {
		t.Error("the dead host received the file")
	}
	select {
	case <-f.Done():
	default:
		t.Error("Done not closed after Die")
	}
	if f.Err() == nil || f.Err().Error() != "power cut" {
		t.Errorf("Err = %v", f.Err())
	}

	want := []hoststest.Call{
		{Op: "exec", Args: []string{"ffmpeg", "-i", "x"}},
		{Op: "freespace", Args: []string{dir}},
		{Op: "freespace", Args: []string{dir}},
		{Op: "freespace", Args: []string{dir}},
		{Op: "exec", Args: []string{"sleep", "0.5"}},
		{Op: "upload", Args: []string{src, remote}},
	}
	if got := f.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("Calls =\n%q\nwant\n%q", got, want)
	}
}
