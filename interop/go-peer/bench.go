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
//    other node lists it (NumMembers() < N, --poll, --give-up cap),
//    detect_first_s = until the first did.
//
// curve.go adds what bench/curve reads: queues, user broadcasts under the
// joins' churn (--user-broadcasts K), members declared dead, push/pulls.

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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

const (
	joinAttempts = 5
	// Bytes a datagram adds on lo beyond its payload: IPv4 and UDP headers
	// (lo counts a frame after its Ethernet header is pulled).
	udpFrameOverhead = 20 + 8
)

var (
	benchPoll   = 10 * time.Millisecond
	benchGiveUp = 120 * time.Second
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

	ConvergeAfterLastJoinS   *float64  `json:"converge_after_last_join_s"`
	RSSStartedPerNode        int64     `json:"rss_started_bytes_per_node"`
	UDPPayloadPerNodePerS    float64   `json:"udp_payload_bytes_per_node_per_s"`
	StreamBytesPerNodePerS   float64   `json:"stream_bytes_per_node_per_s"`
	TCPSentPerNodePerS       float64   `json:"tcp_sent_bytes_per_node_per_s"`
	PushPullsPerNodePerS     float64   `json:"push_pulls_started_per_node_per_s"`
	StreamBytesPerPushPull   *float64  `json:"stream_bytes_per_push_pull"`
	PushPullMeanMs           *float64  `json:"push_pull_mean_ms"`
	PushPullMaxMs            float64   `json:"push_pull_max_ms"`
	QueueAtConvergenceMean   float64   `json:"queue_at_convergence_mean"`
	QueueAtConvergenceMax    int       `json:"queue_at_convergence_max"`
	QueueStormMaxNode1       int       `json:"queue_storm_max_node1"`
	QueueSteadyMean          float64   `json:"queue_steady_mean"`
	QueueSteadyMax           int       `json:"queue_steady_max"`
	UserBroadcastWaitS       []float64 `json:"user_broadcast_wait_s"`
	UserBroadcastsUnfinished int       `json:"user_broadcasts_unfinished"`
	MembersFailedStorm       int64     `json:"members_failed_storm"`
	MembersFailedWindow      int64     `json:"members_failed_window"`
	MembersFailedCrash       int64     `json:"members_failed_crash"`
	DetectFirstS             *float64  `json:"detect_first_s"`
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
	fs.DurationVar(&benchGiveUp, "give-up", benchGiveUp, "")
	fs.DurationVar(&benchPoll, "poll", benchPoll, "")
	userBroadcasts := fs.Int("user-broadcasts", 0, "")
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
	res, err := bench(*nodes, *duration, *joinWindow, *settle, *configName, *userBroadcasts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-peer bench: %v\n", err)
		return 1
	}
	os.Stdout.Write(encodeLine(res))
	return 0
}

func bench(n int, duration, joinWindow, settle time.Duration, configName string, userBroadcasts int) (*benchResult, error) {
	sink := &counterSink{}
	installSink(sink)
	failed := &failedCounter{}
	user := &userQueue{}
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
		conf.Events = failed
		if i == 1 {
			conf.Delegate = user
		}
		m, err := memberlist.Create(conf)
		if err != nil {
			return nil, fmt.Errorf("creating %s: %v", conf.Name, err)
		}
		list = append(list, m)
	}
	startedRSS, err := vmRSS()
	if err != nil {
		return nil, err
	}
	seed := list[0].LocalNode().Address()
	// Node 1's user queue, set up as an application sets up its own.
	preset, _ := configPreset(configName)
	user.q.NumNodes = list[1].NumMembers
	user.q.RetransmitMult = preset.RetransmitMult

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
	var stormQueueMax int64
	stormDone := make(chan struct{})
	go func() { // node 1's membership queue while the others join
		for time.Since(t0) < joinWindow+time.Second {
			q := int64(membershipQueued(list[1]))
			if q > atomic.LoadInt64(&stormQueueMax) {
				atomic.StoreInt64(&stormQueueMax, q)
			}
			time.Sleep(100 * time.Millisecond)
		}
		close(stormDone)
	}()
	for j := 0; j < userBroadcasts; j++ {
		at := t0.Add(time.Duration(float64(joinWindow) * float64(j+1) / float64(userBroadcasts+1)))
		go func(j int, at time.Time) {
			time.Sleep(time.Until(at))
			user.queue([]byte(fmt.Sprintf("user broadcast %d from node-001 under churn", j)))
		}(j, at)
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
	convergedQMean, convergedQMax := queues(list)
	failedStorm := failed.load()

	// Measurement window.
	time.Sleep(settle)
	failedBefore := failed.load()
	sinkBefore := sink.totals()
	before, err := readCounters()
	if err != nil {
		return nil, err
	}
	time.Sleep(duration)
	after, err := readCounters()
	if err != nil {
		return nil, err
	}
	sinkAfter := sink.totals()
	failedAfter := failed.load()
	steadyQMean, steadyQMax := queues(list)
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
	var detectFirst *float64
	detect := pollUntil(t1, func() bool {
		dropped := 0
		for _, m := range list {
			if m.NumMembers() < n {
				dropped++
			}
		}
		if dropped > 0 && detectFirst == nil {
			v := round(time.Since(t1).Seconds(), 3)
			detectFirst = &v
		}
		return dropped == len(list)
	})
	failedCrash := failed.load() - failedAfter
	if detect == nil {
		fmt.Fprintf(os.Stderr, "go-peer bench: %s still listed after %v\n", victimName, benchGiveUp)
	}

	var afterLast *float64
	if converge != nil && lastJoinS != nil {
		v := round(*converge-*lastJoinS, 3)
		afterLast = &v
	}
	datagrams := after.udpOut - before.udpOut
	udpPayload := sinkAfter.udpSent - sinkBefore.udpSent
	stream := float64(after.loTx-before.loTx) - float64(udpPayload) - float64(datagrams*udpFrameOverhead)
	started := sinkAfter.pushPulls - sinkBefore.pushPulls
	var perPushPull, ppMean *float64
	if started > 0 {
		v := math.Round(stream / float64(started))
		perPushPull = &v
		m := round(float64(sinkAfter.pushPullUs-sinkBefore.pushPullUs)/float64(started)/1000, 3)
		ppMean = &m
	}
	<-stormDone
	waits := user.waited()

	return &benchResult{
		ConvergeAfterLastJoinS:   afterLast,
		RSSStartedPerNode:        (startedRSS - baseRSS) / int64(n),
		UDPPayloadPerNodePerS:    sig(float64(udpPayload) / perNodeSec),
		StreamBytesPerNodePerS:   sig(stream / perNodeSec),
		TCPSentPerNodePerS:       sig(float64(sinkAfter.tcpSent-sinkBefore.tcpSent) / perNodeSec),
		PushPullsPerNodePerS:     sig(float64(started) / perNodeSec),
		StreamBytesPerPushPull:   perPushPull,
		PushPullMeanMs:           ppMean,
		PushPullMaxMs:            float64(atomic.LoadInt64(&sink.maxPPUs)) / 1000,
		QueueAtConvergenceMean:   round(convergedQMean, 1),
		QueueAtConvergenceMax:    convergedQMax,
		QueueStormMaxNode1:       int(atomic.LoadInt64(&stormQueueMax)),
		QueueSteadyMean:          round(steadyQMean, 2),
		QueueSteadyMax:           steadyQMax,
		UserBroadcastWaitS:       waits,
		UserBroadcastsUnfinished: userBroadcasts - len(waits),
		MembersFailedStorm:       failedStorm,
		MembersFailedWindow:      failedAfter - failedBefore,
		MembersFailedCrash:       failedCrash,
		DetectFirstS:             detectFirst,

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
