package measure

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Endpoints are the client URLs of the etcd the instances share.
func (s Setup) Endpoints() []string { return s.store.endpoints }

// Tool is a measuring tool. All of them take the same command line:
//
//	go run ./cmd/NAME [-COUNT n] [-etcd http://10.0.0.1:2379,…] [-timeout 10s]
//
// and print a report whose last lines say where it was measured.
type Tool[R Report] struct {
	// Name is the command, e.g. "tgfresh"; its messages begin with it, and
	// its binary serves as a tokengate instance when NAME_INSTANCE (e.g.
	// TGFRESH_INSTANCE) is set.
	Name string
	// Count is the flag for how many things to measure one after the other
	// (e.g. "tokens"), with its default and its usage.
	Count        string
	CountDefault int
	CountUsage   string
	// TimeoutUsage says what -timeout bounds (default 10 s).
	TimeoutUsage string
	// Measure measures.
	Measure func(Setup) (R, error)
}

// env is the variable that makes the tool's binary serve as an instance.
func (t Tool[R]) env() string { return strings.ToUpper(t.Name) + "_INSTANCE" }

// Report is what a measurement found.
type Report interface {
	// Print writes the figures.
	Print(w io.Writer)
	// Failed reports whether the measurement found a fault.
	Failed() bool
}

// Setup is what a measurement is given.
type Setup struct {
	// Count is how many things to measure.
	Count int
	// Timeout is the longest to wait for one of them.
	Timeout time.Duration
	// Log takes progress messages.
	Log io.Writer
	// Dir is the measurement's own directory, removed after it.
	Dir string

	store *store   // the etcd the instances share
	self  []string // the command that runs this program again
	env   string   // the variable that makes it an instance
}

// Main is the tool's main. Its binary serves as an instance when the
// NAME_INSTANCE variable is set. Otherwise it measures as the command line
// says, prints the report to stdout and exits with 1 if the measurement
// failed or found a fault, 2 if the command line is wrong.
func (t Tool[R]) Main() {
	if serve(t.env()) {
		return
	}
	count := flag.Int(t.Count, t.CountDefault, t.CountUsage)
	endpoints := flag.String("etcd", "", "etcd client URLs, comma-separated (default: an embedded etcd)")
	timeout := flag.Duration("timeout", 10*time.Second, t.TimeoutUsage)
	flag.Parse()
	if *count < 1 {
		fmt.Fprintf(os.Stderr, "%s: -%s must be at least 1\n", t.Name, t.Count)
		os.Exit(2)
	}
	var eps []string
	if *endpoints != "" {
		eps = strings.Split(*endpoints, ",")
	}
	setup := Setup{Count: *count, Timeout: *timeout, Log: os.Stderr, self: selfCommand(), env: t.env()}
	rep, store, err := t.measure(setup, eps)
	if err != nil {
		fmt.Fprintln(os.Stderr, t.Name+":", err)
		os.Exit(1)
	}
	t.print(os.Stdout, rep, store)
	if rep.Failed() {
		os.Exit(1)
	}
}

// measure gives the measurement a directory and the etcd at endpoints (none:
// an embedded one), and measures. It returns what the store was.
func (t Tool[R]) measure(setup Setup, endpoints []string) (rep R, store string, err error) {
	setup.Dir, err = os.MkdirTemp("", t.Name+"-")
	if err != nil {
		return rep, "", err
	}
	defer os.RemoveAll(setup.Dir)
	setup.store, err = openStore(endpoints, filepath.Join(setup.Dir, "etcd"))
	if err != nil {
		return rep, "", err
	}
	defer setup.store.close()
	rep, err = t.Measure(setup)
	return rep, setup.store.description, err
}

// print writes the report and, below it, where it was measured.
func (t Tool[R]) print(w io.Writer, rep R, store string) {
	rep.Print(w)
	fmt.Fprintf(w, "  store: %s\n", store)
	fmt.Fprintf(w, "  machine: %s\n", machine())
	fmt.Fprintf(w, "  command: go run ./cmd/%s %s\n", t.Name, strings.Join(os.Args[1:], " "))
}
