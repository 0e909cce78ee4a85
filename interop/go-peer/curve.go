package main

// What `go-peer bench` measures beyond its first figures, for the cost
// curve (bench/curve; BENCHMARKS.md, "The cost curve"), the same way
// swim-tokio's cluster_bench does for ours:
//
//   - members declared dead as the nodes saw them (an EventDelegate counts
//     NotifyLeave), during the joins, the window and the crash: the crash
//     accounts for N-1, anything else is a false positive;
//   - the membership broadcast queue (Memberlist.broadcasts, unexported in
//     v0.2.2 and read through reflection as internals.go reads nodeLock);
//   - node 1's user broadcasts queued under the joins' churn and the time
//     until each left its TransmitLimitedQueue (Broadcast.Finished);
//   - go-metrics' memberlist.udp.sent, memberlist.tcp.sent and
//     memberlist.pushPullNode through a sink of atomic counters.

import (
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	metrics "github.com/armon/go-metrics"
	"github.com/hashicorp/memberlist"
)

// failedCounter counts members declared dead (NotifyLeave with the member
// dead rather than left), summed over every node that shares it.
type failedCounter struct{ failed int64 }

func (c *failedCounter) NotifyJoin(*memberlist.Node)   {}
func (c *failedCounter) NotifyUpdate(*memberlist.Node) {}
func (c *failedCounter) NotifyLeave(n *memberlist.Node) {
	// NotifyLeave runs under the library's nodeLock (see rawState).
	if rawState(n) != memberlist.StateLeft {
		atomic.AddInt64(&c.failed, 1)
	}
}
func (c *failedCounter) load() int64 { return atomic.LoadInt64(&c.failed) }

var broadcastsOffset, broadcastsOK = func() (uintptr, bool) {
	mt := reflect.TypeOf((*memberlist.Memberlist)(nil)).Elem()
	f, ok := mt.FieldByName("broadcasts")
	if !ok || f.Type != reflect.TypeOf((*memberlist.TransmitLimitedQueue)(nil)) {
		return 0, false
	}
	return f.Offset, true
}()

// membershipQueued is the number of membership broadcasts m has queued, or
// -1 if this memberlist has no such field.
func membershipQueued(m *memberlist.Memberlist) int {
	if !broadcastsOK {
		return -1
	}
	q := *(**memberlist.TransmitLimitedQueue)(unsafe.Add(unsafe.Pointer(m), broadcastsOffset))
	return q.NumQueued()
}

// queues returns the mean and the largest membership queue over list.
func queues(list []*memberlist.Memberlist) (float64, int) {
	sum, max := 0, 0
	for _, m := range list {
		q := membershipQueued(m)
		sum += q
		if q > max {
			max = q
		}
	}
	return float64(sum) / math.Max(1, float64(len(list))), max
}

// userQueue is node 1's delegate: user broadcasts gossiped beside
// membership ones, as an application would queue them.
type userQueue struct {
	q     memberlist.TransmitLimitedQueue
	mu    sync.Mutex
	waits []float64
}

func (u *userQueue) NodeMeta(limit int) []byte              { return nil }
func (u *userQueue) NotifyMsg([]byte)                       {}
func (u *userQueue) LocalState(join bool) []byte            { return nil }
func (u *userQueue) MergeRemoteState(buf []byte, join bool) {}
func (u *userQueue) GetBroadcasts(overhead, limit int) [][]byte {
	return u.q.GetBroadcasts(overhead, limit)
}

// queue adds one broadcast; its wait is recorded when it leaves the queue
// sent its retransmit limit of times.
func (u *userQueue) queue(msg []byte) {
	u.q.QueueBroadcast(&queuedBroadcast{msg: msg, at: time.Now(), owner: u})
}

func (u *userQueue) waited() []float64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]float64(nil), u.waits...)
}

type queuedBroadcast struct {
	msg   []byte
	at    time.Time
	owner *userQueue
}

func (b *queuedBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b *queuedBroadcast) Message() []byte                       { return b.msg }
func (b *queuedBroadcast) Finished() {
	b.owner.mu.Lock()
	b.owner.waits = append(b.owner.waits, round(time.Since(b.at).Seconds(), 3))
	b.owner.mu.Unlock()
}

// counterSink keeps the few go-metrics values the bench reads, with atomics
// only, so that the nodes' cost barely changes.
type counterSink struct {
	udpSent, tcpSent    int64 // bytes
	pushPulls           int64 // pushPullNode samples (exchanges started)
	pushPullUs, maxPPUs int64 // their durations, microseconds
}

func (s *counterSink) SetGauge([]string, float32)                            {}
func (s *counterSink) SetGaugeWithLabels([]string, float32, []metrics.Label) {}
func (s *counterSink) EmitKey([]string, float32)                             {}
func (s *counterSink) IncrCounterWithLabels(k []string, v float32, _ []metrics.Label) {
	s.IncrCounter(k, v)
}
func (s *counterSink) IncrCounter(k []string, v float32) {
	if len(k) >= 3 && k[len(k)-1] == "sent" {
		switch k[len(k)-2] {
		case "udp":
			atomic.AddInt64(&s.udpSent, int64(v))
		case "tcp":
			atomic.AddInt64(&s.tcpSent, int64(v))
		}
	}
}
func (s *counterSink) AddSampleWithLabels(k []string, v float32, _ []metrics.Label) {
	s.AddSample(k, v)
}
func (s *counterSink) AddSample(k []string, v float32) {
	if len(k) >= 2 && k[len(k)-1] == "pushPullNode" {
		us := int64(v * 1000) // MeasureSince samples milliseconds
		atomic.AddInt64(&s.pushPulls, 1)
		atomic.AddInt64(&s.pushPullUs, us)
		for {
			old := atomic.LoadInt64(&s.maxPPUs)
			if us <= old || atomic.CompareAndSwapInt64(&s.maxPPUs, old, us) {
				break
			}
		}
	}
}

type sinkTotals struct{ udpSent, tcpSent, pushPulls, pushPullUs int64 }

func (s *counterSink) totals() sinkTotals {
	return sinkTotals{atomic.LoadInt64(&s.udpSent), atomic.LoadInt64(&s.tcpSent),
		atomic.LoadInt64(&s.pushPulls), atomic.LoadInt64(&s.pushPullUs)}
}

// installSink makes go-metrics' global sink s, with no prefixes and no
// runtime metrics.
func installSink(s *counterSink) {
	conf := metrics.DefaultConfig("")
	conf.EnableHostname = false
	conf.EnableRuntimeMetrics = false
	metrics.NewGlobal(conf, s)
}
