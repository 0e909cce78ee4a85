package main

// `go-peer bench`: run N memberlist nodes in this process on 127.0.0.1 and
// print one JSON line of measurements. swim-tokio's cluster_bench example
// measures the Rust side the same way; bench/side-by-side runs both.
//
// 1. VmRSS before any node exists is the baseline.
// 2. Create all nodes, t0, every node but node 0 joins node 0 concurrently
//    (all at once, or node i at i/(N-1) of --join-window; a failed join is
//    retried, five attempts in all, failures counted; last_join_s = until the
//    last successful join returned); converge_s = until
//    every node's NumMembers() == N (10 ms polls, 120 s cap), converge_p50_s
//    = the median of the times each node first did.
// 3. --settle (2 s) later read CPU (getrusage), Udp OutDatagrams (/proc/net/snmp) and lo
//    transmit bytes (/proc/net/dev); sleep --duration; read them again. The
//    rates are per node per second of the window; RSS is (VmRSS at the end of
//    the window - baseline) / N.
// 4. Shut the last node down without leaving, t1; detect_all_s = until no
//    other node lists it in Members() (10 ms polls, 120 s cap).

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

const (
	benchPoll    = 10 * time.Millisecond
	benchGiveUp  = 120 * time.Second
	joinAttempts = 5
)

type benchResult struct {
	Impl               string   `json:"impl"`
	Nodes              int      `json:"nodes"`
	Preset             string   `json:"preset"`
	JoinWindowS        float64  `json:"join_window_s"`
	JoinFailures       int64    `json:"join_failures"`
	ConvergeS          *float64 `json:"converge_s"`
	ConvergeP50S       *float64 `json:"converge_p50_s"`
	LastJoinS          *float64 `json:"last_join_s"`
	WindowS            float64  `json:"window_s"`
	CPUSPerNodePerS    float64  `json:"cpu_s_per_node_per_s"`
	RSSBytesPerNode    int64    `json:"rss_bytes_per_node"`
	PacketsPerNodePerS float64  `json:"packets_per_node_per_s"`
	BytesPerNodePerS   float64  `json:"bytes_per_node_per_s"`
	DetectAllS         *float64 `json:"detect_all_s"`
}

func runBench(args []string) int {
	fs := flag.NewFlagSet("go-peer bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	nodes := fs.Int("nodes", 100, "")
	duration := fs.Duration("duration", 30*time.Second, "")
	configName := fs.String("preset", "local", "")
	fs.StringVar(configName, "config", "local", "") // --preset's old name, for one release
	joinWindow := fs.Duration("join-window", 0, "")
	settle := fs.Duration("settle", 2*time.Second, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stderr, usageText)
			return 0
		}
		return usageError("bench: %v", err)
	}
	if fs.NArg() > 0 {
		return usageError("bench: unexpected argument %q", fs.Arg(0))
	}
	if *nodes < 2 {
		return usageError("bench: --nodes must be at least 2")
	}
	if *settle < 0 {
		return usageError("bench: --settle must not be negative")
	}
	if *joinWindow < 0 {
		return usageError("bench: --join-window must not be negative")
	}
	if *duration <= 0 {
		return usageError("bench: --duration must be positive")
	}
	if _, err := configPreset(*configName); err != nil {
		return usageError("bench: %v", err)
	}
	res, err := bench(*nodes, *duration, *joinWindow, *settle, *configName)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-peer bench: %v\n", err)
		return 1
	}
	os.Stdout.Write(encodeLine(res))
	return 0
}

func bench(n int, duration, joinWindow, settle time.Duration, configName string) (*benchResult, error) {
	baseRSS, err := vmRSS()
	if err != nil {
		return nil, err
	}

	// Create all nodes.
	list := make([]*memberlist.Memberlist, 0, n)
	defer func() {
		for _, m := range list {
			m.Shutdown()
		}
	}()
	for i := 0; i < n; i++ {
		conf, _ := configPreset(configName)
		conf.Name = fmt.Sprintf("node-%03d", i)
		conf.BindAddr = "127.0.0.1"
		conf.BindPort = 0
		conf.AdvertiseAddr = ""
		conf.LogOutput = io.Discard
		m, err := memberlist.Create(conf)
		if err != nil {
			return nil, fmt.Errorf("creating %s: %v", conf.Name, err)
		}
		list = append(list, m)
	}
	seed := list[0].LocalNode().Address()

	// Join, each node from its own goroutine like independent processes.
	t0 := time.Now()
	var wg sync.WaitGroup
	var failures int64
	var lastJoin float64 // seconds from t0 until the last join that succeeded returned
	var joinMu sync.Mutex
	for i, m := range list[1:] {
		wg.Add(1)
		at := t0.Add(time.Duration(float64(joinWindow) * float64(i) / math.Max(1, float64(n-1))))
		go func(m *memberlist.Memberlist, at time.Time) {
			defer wg.Done()
			time.Sleep(time.Until(at))
			var err error
			for try := 1; try <= joinAttempts; try++ {
				if _, err = m.Join([]string{seed}); err == nil {
					joinMu.Lock()
					lastJoin = math.Max(lastJoin, time.Since(t0).Seconds())
					joinMu.Unlock()
					return
				}
				joinMu.Lock()
				failures++
				joinMu.Unlock()
				time.Sleep(time.Duration(try) * 100 * time.Millisecond)
			}
			fmt.Fprintf(os.Stderr, "go-peer bench: %s could not join: %v\n",
				m.LocalNode().Name, err)
		}(m, at)
	}
	firstFull := make([]float64, n)
	converge := pollUntil(t0, func() bool {
		all := true
		for i, m := range list {
			if m.NumMembers() != n {
				all = false
			} else if firstFull[i] == 0 {
				firstFull[i] = time.Since(t0).Seconds()
			}
		}
		return all
	})
	wg.Wait()
	var p50 *float64
	firsts := make([]float64, 0, n)
	for _, f := range firstFull {
		if f > 0 {
			firsts = append(firsts, f)
		}
	}
	if len(firsts)*2 > n {
		sort.Float64s(firsts)
		v := round(firsts[n/2], 3)
		p50 = &v
	}
	if converge == nil {
		fmt.Fprintf(os.Stderr, "go-peer bench: no convergence within %v\n", benchGiveUp)
	}

	// Measurement window.
	time.Sleep(settle)
	before, err := readCounters()
	if err != nil {
		return nil, err
	}
	time.Sleep(duration)
	after, err := readCounters()
	if err != nil {
		return nil, err
	}
	endRSS, err := vmRSS()
	if err != nil {
		return nil, err
	}
	window := after.at.Sub(before.at).Seconds()
	perNodeSec := float64(n) * window
	joinMu.Lock()
	var lastJoinS *float64
	if lastJoin > 0 {
		v := round(lastJoin, 3)
		lastJoinS = &v
	}
	joinMu.Unlock()

	// Crash the last node and time until everybody else has dropped it.
	victim := list[n-1]
	victimName := victim.LocalNode().Name
	victim.Shutdown()
	list = list[:n-1] // the deferred Shutdown skips it
	t1 := time.Now()
	detect := pollUntil(t1, func() bool {
		for _, m := range list {
			for _, node := range m.Members() {
				if node.Name == victimName {
					return false
				}
			}
		}
		return true
	})
	if detect == nil {
		fmt.Fprintf(os.Stderr, "go-peer bench: %s still listed after %v\n", victimName, benchGiveUp)
	}

	return &benchResult{
		Impl:               "go",
		Nodes:              n,
		Preset:             configName,
		JoinWindowS:        joinWindow.Seconds(),
		JoinFailures:       failures,
		ConvergeS:          converge,
		ConvergeP50S:       p50,
		LastJoinS:          lastJoinS,
		WindowS:            round(window, 3),
		CPUSPerNodePerS:    sig((after.cpu - before.cpu) / perNodeSec),
		RSSBytesPerNode:    (endRSS - baseRSS) / int64(n),
		PacketsPerNodePerS: sig(float64(after.udpOut-before.udpOut) / perNodeSec),
		BytesPerNodePerS:   sig(float64(after.loTx-before.loTx) / perNodeSec),
		DetectAllS:         detect,
	}, nil
}

// pollUntil polls done every 10 ms and returns the seconds from start until
// it held, or nil after 120 s.
func pollUntil(start time.Time, done func() bool) *float64 {
	for {
		if done() {
			s := round(time.Since(start).Seconds(), 3)
			return &s
		}
		if time.Since(start) > benchGiveUp {
			return nil
		}
		time.Sleep(benchPoll)
	}
}

func round(v float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(v*p) / p
}

// sig rounds to 4 significant digits.
func sig(v float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 4, 64), 64)
	return r
}

type counters struct {
	at     time.Time
	cpu    float64 // user + system seconds of this process
	udpOut uint64  // Udp OutDatagrams, machine-wide (this network namespace)
	loTx   uint64  // lo transmit bytes
}

func readCounters() (counters, error) {
	var c counters
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return c, fmt.Errorf("getrusage: %v", err)
	}
	c.at = time.Now()
	c.cpu = tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
	var err error
	if c.udpOut, err = udpOutDatagrams(); err != nil {
		return c, err
	}
	if c.loTx, err = loTxBytes(); err != nil {
		return c, err
	}
	return c, nil
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// vmRSS reads VmRSS from /proc/self/status, in bytes.
func vmRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS: %v", err)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}

// udpOutDatagrams reads OutDatagrams from the `Udp:` lines of /proc/net/snmp
// (a header line of names, then a line of values).
func udpOutDatagrams() (uint64, error) {
	data, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	var header []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "Udp:" {
			continue
		}
		if header == nil {
			header = fields
			continue
		}
		for i, name := range header {
			if name == "OutDatagrams" && i < len(fields) {
				return strconv.ParseUint(fields[i], 10, 64)
			}
		}
		break
	}
	return 0, errors.New("no Udp OutDatagrams in /proc/net/snmp")
}

// loTxBytes reads the transmit bytes of `lo` from /proc/net/dev (8 receive
// columns, then transmit bytes).
func loTxBytes() (uint64, error) {
	data, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		iface, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(iface) != "lo" {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) < 9 {
			break
		}
		return strconv.ParseUint(fields[8], 10, 64)
	}
	return 0, errors.New("no lo line in /proc/net/dev")
}
