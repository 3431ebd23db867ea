package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// procSample is a server's resource use at one moment, summed over the
// process and its descendants (nginx runs a master and workers).
type procSample struct {
	CPU   time.Duration // user + system time, to the nanosecond where the kernel tells (cpu)
	Sys   time.Duration // system time alone, in clock ticks: the kernel's share of CPU
	RSSKB int64         // resident set, VmRSS
	PSSKB int64         // proportional set: shared pages counted once across the tree
}

// procReader samples one process tree. A zero pid samples nothing, for
// servers the bench cannot see (another machine, or in-process in tests).
type procReader struct {
	pid  int
	root string // "/proc", replaced in tests
}

func newProcReader(pid int) *procReader { return &procReader{pid: pid, root: "/proc"} }

// enabled reports whether there is a process to sample.
func (p *procReader) enabled() bool { return p != nil && p.pid > 0 }

// sample reads the tree's CPU time and memory.
func (p *procReader) sample() (procSample, error) {
	var s procSample
	if !p.enabled() {
		return s, nil
	}
	pids, err := p.tree()
	if err != nil {
		return s, err
	}
	for _, pid := range pids {
		dir := filepath.Join(p.root, strconv.Itoa(pid))
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			if pid == p.pid {
				return s, fmt.Errorf("server process %d: %w", pid, err)
			}
			continue // a worker that just exited
		}
		st, err := parseStat(stat)
		if err != nil {
			return s, fmt.Errorf("process %d: %w", pid, err)
		}
		s.CPU += p.cpu(dir, time.Duration(st.utime+st.stime)*clockTick)
		s.Sys += time.Duration(st.stime) * clockTick
		if status, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
			s.RSSKB += fieldKB(status, "VmRSS:")
		}
		if rollup, err := os.ReadFile(filepath.Join(dir, "smaps_rollup")); err == nil {
			s.PSSKB += fieldKB(rollup, "Pss:")
		}
	}
	return s, nil
}

// cpu returns the CPU time of the process at dir to the nanosecond: the sum
// of its threads' run time in task/*/schedstat. utime and stime count in
// whole clock ticks, and a fan-out step at a low rate uses only a few
// hundred milliseconds of CPU, so ticks alone would make its figures move
// by several per cent from the rounding. The thread sum misses threads
// that have exited, which the process's ticks still include: when it falls
// more than a tick short of ticks (read before it), ticks is returned, and
// also when schedstat cannot be read.
func (p *procReader) cpu(dir string, ticks time.Duration) time.Duration {
	tasks, err := os.ReadDir(filepath.Join(dir, "task"))
	if err != nil {
		return ticks
	}
	var sum time.Duration
	for _, t := range tasks {
		run, err := threadRunTime(filepath.Join(dir, "task", t.Name()))
		if err != nil {
			return ticks // an exited thread, or no schedstat at all
		}
		sum += run
	}
	if sum+clockTick < ticks {
		return ticks
	}
	return sum
}

// threadRunTime reads the run time of the thread at dir (/proc/PID/task/TID)
// from its schedstat, to the nanosecond.
func threadRunTime(dir string) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(dir, "schedstat"))
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0, fmt.Errorf("empty schedstat in %s", dir)
	}
	ns, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed schedstat in %s: %w", dir, err)
	}
	return time.Duration(ns), nil
}

// tree returns p.pid and its descendants.
func (p *procReader) tree() ([]int, error) {
	entries, err := os.ReadDir(p.root)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(p.root, e.Name(), "stat"))
		if err != nil {
			continue
		}
		if st, err := parseStat(stat); err == nil {
			children[st.ppid] = append(children[st.ppid], pid)
		}
	}
	out := []int{p.pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out, nil
}

type statFields struct {
	ppid         int
	utime, stime int64
}

// parseStat reads ppid, utime and stime from /proc/PID/stat. The command
// name (field 2) may hold spaces and parentheses, so fields are counted
// from the last ')'.
func parseStat(b []byte) (statFields, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return statFields{}, fmt.Errorf("malformed stat %q", b)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return statFields{}, fmt.Errorf("short stat %q", b)
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	ut, err2 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err3 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return statFields{}, fmt.Errorf("malformed stat %q", b)
	}
	return statFields{ppid: ppid, utime: ut, stime: st}, nil
}

// fieldKB returns the value of a "Name:   123 kB" line, or 0.
func fieldKB(b []byte, name string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if rest, ok := bytes.CutPrefix(line, []byte(name)); ok {
			f := bytes.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(string(f[0]), 10, 64)
				return n
			}
		}
	}
	return 0
}
