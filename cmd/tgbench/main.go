package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

func main() { os.Exit(tgbench()) }

// tgbench runs the tool and returns its exit status: 0 when the run is
// valid (targets met or not), 1 when it failed or a check did, 2 for a
// usage mistake.
func tgbench() int {
	opts := options{}
	flag.DurationVar(&opts.Duration, "duration", 2*time.Second, "how long each round drives one front end")
	flag.IntVar(&opts.Rounds, "rounds", 5, "rounds; each visits every front end once, in turn")
	flag.IntVar(&opts.Connections, "connections", 16, "keep-alive connections per front end, one closed-loop client each")
	flag.IntVar(&opts.Users, "users", 1000, "users (one token each) whose tokens (b), (c) and (h) spread over; (i) has as many of its own")
	flag.IntVar(&opts.OtherUsers, "other-users", 1000, "with (i): users no front end uses, each with a rate_limit")
	flag.IntVar(&opts.BcryptCost, "bcrypt-cost", 14, "bcrypt cost of (d)'s password; 14 is what `caddy hash-password` uses")
	flag.DurationVar(&opts.Warmup, "warmup", 500*time.Millisecond, "unmeasured round per front end before the first (0: none)")
	flag.StringVar(&opts.Fronts, "fronts", defaultFronts, "front ends to measure, in "+frontKeys)
	flag.StringVar(&opts.CPUProfile, "cpuprofile", "", "write a CPU profile of the measured rounds to this file")
	flag.StringVar(&opts.MemProfile, "memprofile", "", "write an allocation profile of the measured rounds to this file (and FILE.base)")
	asJSON := flag.Bool("json", false, "print the report as JSON instead of a table")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "tgbench: unexpected arguments %q\n", flag.Args())
		return 2
	}
	if err := opts.check(); err != nil {
		fmt.Fprintln(os.Stderr, "tgbench:", err)
		return 2
	}
	if opts.MemProfile != "" {
		runtime.MemProfileRate = memProfileRate
	}

	// Interrupting stops the load and still cleans up: Caddy, the embedded
	// etcd and the temporary directory.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, opts, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tgbench:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(os.Stderr, "tgbench:", err)
			return 1
		}
	} else {
		writeTable(os.Stdout, rep)
	}
	if !rep.OK() {
		return 1
	}
	return 0
}
