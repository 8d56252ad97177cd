package measure

import (
	"fmt"
	"runtime"
	"time"
)

// Percentile returns the p-th percentile (0 to 100) of sorted, the largest
// for 100, or 0 when sorted is empty.
func Percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*p/100)]
}

// Round keeps the digits of d that a report should show: to 100 µs above
// 10 ms, to 10 µs above 100 µs, all of them below.
func Round(d time.Duration) time.Duration {
	switch {
	case d > 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d > 100*time.Microsecond:
		return d.Round(10 * time.Microsecond)
	}
	return d
}

// machine says where the figures were measured: OS, architecture, CPUs and
// Go version.
func machine() string {
	return fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
}
