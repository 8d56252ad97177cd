package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
)

// memProfileRate samples one allocation per 4 KiB instead of Go's 512 KiB,
// so that the small per-request allocations of the handlers show up. It
// is only set with -memprofile, whose figures it slows slightly.
const memProfileRate = 4096

// profiles covers the measured rounds (of the front ends chosen with
// -fronts: -fronts b profiles tokengate's cached path alone).
type profiles struct {
	cpu     *os.File
	memPath string
}

// startProfiles starts the CPU profile and records the allocations made so
// far (setting up etcd, users, Caddy) as a base that the final allocation
// profile is read against.
func startProfiles(cpuPath, memPath string) (*profiles, error) {
	p := &profiles{memPath: memPath}
	if memPath != "" {
		if err := writeProfile("allocs", memPath+".base"); err != nil {
			return nil, err
		}
	}
	if cpuPath != "" {
		f, err := os.Create(cpuPath)
		if err != nil {
			return nil, fmt.Errorf("creating the CPU profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("starting the CPU profile: %w", err)
		}
		p.cpu = f
	}
	return p, nil
}

// stop ends the profiles and says how to read them.
func (p *profiles) stop(log io.Writer) error {
	var errs []error
	if p.cpu != nil {
		pprof.StopCPUProfile()
		if err := p.cpu.Close(); err != nil {
			errs = append(errs, fmt.Errorf("writing the CPU profile: %w", err))
		}
		fmt.Fprintf(log, "CPU profile of the rounds: go tool pprof -top %s\n", p.cpu.Name())
	}
	if p.memPath != "" {
		if err := writeProfile("allocs", p.memPath); err != nil {
			errs = append(errs, err)
		}
		fmt.Fprintf(log, "allocations of the rounds: go tool pprof -sample_index=alloc_space -top -base %s.base %s\n", p.memPath, p.memPath)
	}
	return errors.Join(errs...)
}

func writeProfile(name, path string) error {
	runtime.GC() // brings the allocation profile up to date
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating the %s profile: %w", name, err)
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("writing the %s profile: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the %s profile: %w", name, err)
	}
	return nil
}
