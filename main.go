// Command clustertx batch-transcodes a media library across every machine
// you own, over plain SSH. It reads pytranscoder's transcode.yml.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"clustertx/app"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "clustertx: interrupt received, stopping jobs and cleaning up (press Ctrl-C again to force)")
		cancel()
		<-sig
		fmt.Fprintln(os.Stderr, "clustertx: forced exit")
		os.Exit(app.ExitInterrupted)
	}()

	err := app.Run(ctx, os.Args, os.Stdout, os.Stderr)
	cancel()
	var ee *app.ExitError
	if err != nil && (!errors.As(err, &ee) || ee.Err != nil) {
		level := "error"
		if app.Code(err) == app.ExitWindow { // work left for the next run, nothing wrong
			level = "warning"
		}
		fmt.Fprintf(os.Stderr, "clustertx: %s: %v\n", level, err)
		if app.Code(err) == app.ExitUsage {
			fmt.Fprintln(os.Stderr, "clustertx: hint: run 'clustertx --help' for usage")
		}
	}
	os.Exit(app.Code(err))
}
