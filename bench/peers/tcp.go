// tcp.go - the Go side of cosync's `tcp_pingpong` and `tcp_echo`
// workloads, run by hand (WORKLOADS.md has no such workloads, so run.sh
// has no peer for them):
//
//	GOMAXPROCS=1 go run bench/peers/tcp.go tcp_pingpong|tcp_echo [SCALE]
//
// Clients send 64 bytes over loopback TCP, a goroutine per connection
// reads them and sends them back, and the client reads the echo.
// tcp_pingpong: 1 connection, 100,000 round trips; tcp_echo: 100
// connections at once, 1,000 round trips each. Connecting is not timed;
// every echo is checked. Prints the workloads' line format:
// '<workload> <ops> <seconds> <ns_per_op>'.
package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

const msg = 64

func handler(conn net.Conn, wg *sync.WaitGroup) {
	defer wg.Done()
	defer conn.Close()
	buf := make([]byte, msg)
	for {
		if _, err := io.ReadFull(conn, buf); err != nil {
			return
		}
		if _, err := conn.Write(buf); err != nil {
			return
		}
	}
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "tcp_pingpong" && os.Args[1] != "tcp_echo") {
		fmt.Fprintln(os.Stderr, "usage: tcp tcp_pingpong|tcp_echo [SCALE]")
		os.Exit(2)
	}
	name := os.Args[1]
	scale := 1.0
	if len(os.Args) > 2 {
		scale, _ = strconv.ParseFloat(os.Args[2], 64)
	}
	conns, rounds := 1, 100000
	if name == "tcp_echo" {
		conns, rounds = 100, 1000
	}
	rounds = int(float64(rounds) * scale)
	if rounds < 1 {
		rounds = 1
	}
	lst, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	var handlers sync.WaitGroup
	go func() {
		for i := 0; i < conns; i++ {
			c, err := lst.Accept()
			if err != nil {
				panic(err)
			}
			handlers.Add(1)
			go handler(c, &handlers)
		}
	}()
	clients := make([]net.Conn, conns)
	for i := range clients {
		if clients[i], err = net.Dial("tcp", lst.Addr().String()); err != nil {
			panic(err)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	start := make(chan struct{})
	for i := range clients {
		wg.Add(1)
		go func(id int, c net.Conn) {
			defer wg.Done()
			out := make([]byte, msg)
			in := make([]byte, msg)
			<-start
			for r := 0; r < rounds; r++ {
				for k := range out {
					out[k] = 0
				}
				copy(out, fmt.Sprintf("%d:%d", id, r))
				if _, err := c.Write(out); err != nil {
					panic(err)
				}
				if _, err := io.ReadFull(c, in); err != nil {
					panic(err)
				}
				if !bytes.Equal(in, out) {
					fmt.Fprintf(os.Stderr, "wrong echo on %d round %d\n", id, r)
					os.Exit(1)
				}
				mu.Lock()
				done++
				mu.Unlock()
			}
			c.Close()
		}(i, clients[i])
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	seconds := time.Since(t0).Seconds()
	handlers.Wait()
	lst.Close()
	ops := conns * rounds
	if done != ops {
		fmt.Fprintf(os.Stderr, "wrong result: %d round trips, want %d\n", done, ops)
		os.Exit(1)
	}
	fmt.Printf("%s %d %.6f %.1f\n", name, ops, seconds, seconds*1e9/float64(ops))
}
