// The resident memory of blocked goroutines (the peer of bench/memory.c).
//
// usage: memory N      (GOMAXPROCS is forced to 1)
//
// Starts N goroutines that each block receiving from one channel, measures
// the resident set (/proc/self/statm) before starting them and once all N
// are blocked, then closes the channel and waits for them all. Prints
//
//	blocked_tasks <N> <seconds_to_spawn_and_block> <bytes_per_task>
//
// and a human line (with VmHWM) on stderr. Exits 1 if a goroutine is missing.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fmt.Fprintln(os.Stderr, "memory.go:", err)
		os.Exit(1)
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func hwmBytes() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "VmHWM:") {
			kib, _ := strconv.ParseInt(strings.Fields(sc.Text())[1], 10, 64)
			return kib * 1024
		}
	}
	return -1
}

func main() {
	n := 0
	if len(os.Args) == 2 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	if n <= 0 {
		fmt.Fprintln(os.Stderr, "usage: memory N")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(1)
	ch := make(chan struct{})
	var blocked, woken atomic.Int64
	var ready, wg sync.WaitGroup
	ready.Add(n)
	wg.Add(n)

	before := rssBytes()
	t := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			blocked.Add(1)
			ready.Done()
			<-ch
			woken.Add(1)
			wg.Done()
		}()
	}
	ready.Wait() // each goroutine has run up to its receive
	seconds := time.Since(t).Seconds()
	after := rssBytes()
	hwm := hwmBytes()
	close(ch)
	wg.Wait()
	if blocked.Load() != int64(n) || woken.Load() != int64(n) {
		fmt.Fprintf(os.Stderr, "memory.go: wrong result: %d blocked, %d woken, want %d\n",
			blocked.Load(), woken.Load(), n)
		os.Exit(1)
	}
	per := float64(after-before) / float64(n)
	fmt.Printf("blocked_tasks %d %.6f %.1f\n", n, seconds, per)
	fmt.Fprintf(os.Stderr, "go: %d blocked goroutines: rss %.1f MiB -> %.1f MiB (VmHWM %.1f MiB), "+
		"%.0f bytes (%.2f KiB) per task; spawn+block %.3f s\n",
		n, float64(before)/(1<<20), float64(after)/(1<<20), float64(hwm)/(1<<20),
		per, per/1024, seconds)
}
