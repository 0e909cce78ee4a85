// serf-peer: one Go Serf node (Debian's serf library, 0.9.4) driven by
// lines on stdin, printing what it sees on stdout with nanosecond times.
// bench/serf-side-by-side runs it beside swim-serf's `serf_peer` example,
// which speaks the same lines, so both are measured the same way:
//
//	in:  join ADDR | members | event NAME PAYLOAD | query NAME EXPECTED |
//	     stats | quit
//	out: ready ADDR | joined N | members ALIVE | event NAME UNIX_NANOS |
//	     query ACKS NANOS (until EXPECTED acks, or the query's timeout) |
//	     stats bytes_sent=DATAGRAM_BYTES (memberlist's udp.sent counter)
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	metrics "github.com/armon/go-metrics"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

var (
	outMu sync.Mutex
	out   = bufio.NewWriter(os.Stdout)
)

func say(format string, args ...interface{}) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Fprintf(out, format+"\n", args...)
	out.Flush()
}

func main() {
	name := flag.String("name", "", "node name")
	bind := flag.String("bind", "127.0.0.1:0", "host:port")
	preset := flag.String("preset", "lan", "lan or local")
	flag.Parse()
	host, portText, err := net.SplitHostPort(*bind)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	port, _ := strconv.Atoi(portText)

	// memberlist counts the bytes of every datagram it sends in
	// go-metrics; one day-long interval keeps the running total.
	sink := metrics.NewInmemSink(24*time.Hour, 48*time.Hour)
	mconf := metrics.DefaultConfig("")
	mconf.EnableHostname = false
	mconf.EnableRuntimeMetrics = false
	if _, err := metrics.NewGlobal(mconf, sink); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	conf := serf.DefaultConfig()
	conf.NodeName = *name
	switch *preset {
	case "local":
		conf.MemberlistConfig = memberlist.DefaultLocalConfig()
	case "lan":
		conf.MemberlistConfig = memberlist.DefaultLANConfig()
	default:
		fmt.Fprintln(os.Stderr, "preset: lan or local")
		os.Exit(2)
	}
	conf.MemberlistConfig.Name = *name
	conf.MemberlistConfig.BindAddr = host
	conf.MemberlistConfig.BindPort = port
	conf.MemberlistConfig.LogOutput = io.Discard
	conf.LogOutput = io.Discard
	events := make(chan serf.Event, 4096)
	conf.EventCh = events
	s, err := serf.Create(conf)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() {
		for e := range events {
			if u, ok := e.(serf.UserEvent); ok {
				say("event %s %d", u.Name, time.Now().UnixNano())
			}
		}
	}()
	say("ready %s", *bind)

	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "join" && len(f) == 2:
			n, err := s.Join([]string{f[1]}, true)
			if err != nil {
				say("error %v", err)
				continue
			}
			say("joined %d", n)
		case f[0] == "members":
			alive := 0
			for _, m := range s.Members() {
				if m.Status == serf.StatusAlive {
					alive++
				}
			}
			say("members %d", alive)
		case f[0] == "event" && len(f) == 3:
			if err := s.UserEvent(f[1], []byte(f[2]), false); err != nil {
				say("error %v", err)
			}
		case f[0] == "query" && len(f) == 3:
			expected, _ := strconv.Atoi(f[2])
			start := time.Now()
			resp, err := s.Query(f[1], nil, &serf.QueryParam{RequestAck: true})
			if err != nil {
				say("error %v", err)
				continue
			}
			acks, last := 0, time.Duration(0)
			for range resp.AckCh() {
				acks++
				last = time.Since(start)
				if acks == expected {
					break
				}
			}
			resp.Close()
			say("query %d %d", acks, last.Nanoseconds())
		case f[0] == "stats":
			sent := 0.0
			for _, interval := range sink.Data() {
				interval.RLock()
				for k, v := range interval.Counters {
					if k == "memberlist.udp.sent" {
						sent += v.Sum
					}
				}
				interval.RUnlock()
			}
			say("stats bytes_sent=%d", int64(sent))
		case f[0] == "quit":
			s.Shutdown()
			return
		default:
			say("error unknown command %q", lines.Text())
		}
	}
	s.Shutdown()
}
