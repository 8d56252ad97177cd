package main

import (
	"math/bits"
	"time"
)

// subBits sets the histogram's resolution: each power of two is split into
// 2^subBits buckets, so a reported quantile is within 1/2^(subBits+1)
// (under 1%) of the true value. That is finer than the 100 µs the p99
// target is about, at any latency this tool sees.
const subBits = 6

const subCount = 1 << subBits

// histogram counts latencies in log-linear buckets. Recording is an array
// increment, so workers record every request without allocating, and
// histograms of workers and rounds merge by addition.
type histogram struct {
	counts [(64 - subBits + 1) * subCount]int64
	total  int64
}

// bucketOf maps a duration in nanoseconds to its bucket. Below subCount ns
// buckets are exact; above, a bucket keeps the top subBits bits after the
// leading one.
func bucketOf(ns int64) int {
	if ns < subCount {
		return int(max(ns, 0))
	}
	shift := bits.Len64(uint64(ns)) - 1 - subBits
	mantissa := (ns >> shift) & (subCount - 1)
	return (shift+1)<<subBits | int(mantissa)
}

// lowerBound is the smallest duration in bucket i.
func lowerBound(i int) int64 {
	shift, mantissa := i>>subBits, int64(i&(subCount-1))
	if shift == 0 {
		return mantissa
	}
	return (mantissa | subCount) << (shift - 1)
}

func (h *histogram) record(d time.Duration) {
	h.counts[bucketOf(int64(d))]++
	h.total++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
}

// quantile returns the latency below which a fraction q of the recorded
// ones fall: the middle of the bucket holding that rank. Zero when empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := int64(q*float64(h.total) + 0.5)
	rank = min(max(rank, 1), h.total)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := lowerBound(i), lowerBound(i+1)
			return time.Duration(lo + (hi-lo)/2)
		}
	}
	return 0 // not reached: the counts add up to total
}
