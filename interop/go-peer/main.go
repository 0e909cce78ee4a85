// go-peer runs one HashiCorp memberlist v0.2.2 node and speaks the agent line
// protocol described in interop/AGENT-PROTOCOL.md, so the interop suite can
// drive Go and Rust nodes the same way. `go-peer bench ...` instead runs a
// whole cluster in this process and prints one line of measurements (see
// bench.go).
//
// Build (GOPATH mode, Debian's golang-github-hashicorp-memberlist-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o /tmp/go-peer .
package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
)

// How long `meta` and `leave` wait for their broadcast to go out.
const broadcastTimeout = 5 * time.Second

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bench" {
		os.Exit(runBench(os.Args[2:]))
	}
	os.Exit(runPeer(os.Args[1:]))
}

// ---------------------------------------------------------------------------
// Output: one JSON object per line on stdout.

type output struct {
	mu      sync.Mutex
	ready   bool
	pending [][]byte // events that happened before the ready line
}

var out output

func encodeLine(v interface{}) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// Text fields have been through text(); encoding/json would otherwise
	// replace each invalid byte on its own.
	if err := enc.Encode(v); err != nil {
		// Cannot happen for the types below.
		panic(err)
	}
	return buf.Bytes()
}

// emit writes one line. Lines produced before `ready` (memberlist reports the
// local node's own join while it is being created) are held back and written
// right after it, so `ready` is always the first line.
func (o *output) emit(v interface{}) {
	line := encodeLine(v)
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.ready {
		o.pending = append(o.pending, line)
		return
	}
	os.Stdout.Write(line)
}

func (o *output) emitReady(v interface{}) {
	line := encodeLine(v)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ready = true
	os.Stdout.Write(line)
	for _, p := range o.pending {
		os.Stdout.Write(p)
	}
	o.pending = nil
}

type readyEvent struct {
	Event string `json:"event"`
	Node  string `json:"node"`
	Addr  string `json:"addr"`
}

type joinedEvent struct {
	Event string `json:"event"`
	Count int    `json:"count"`
}

type nodeEvent struct {
	Event string `json:"event"`
	Node  string `json:"node"`
	Addr  string `json:"addr"`
	Meta  string `json:"meta"`
}

type userMsgEvent struct {
	Event   string `json:"event"`
	Payload string `json:"payload"`
}

type remoteStateEvent struct {
	Event string `json:"event"`
	Join  bool   `json:"join"`
	State string `json:"state"`
}

type member struct {
	Node  string `json:"node"`
	Addr  string `json:"addr"`
	Meta  string `json:"meta"`
	State string `json:"state"`
}

type membersEvent struct {
	Event   string   `json:"event"`
	Members []member `json:"members"`
}

type okEvent struct {
	Event   string `json:"event"`
	Command string `json:"command"`
}

type errorEvent struct {
	Event   string `json:"event"`
	Command string `json:"command"`
	Error   string `json:"error"`
}

type simpleEvent struct {
	Event string `json:"event"`
}

// text converts bytes from the network to UTF-8, replacing each maximal
// invalid subsequence with one U+FFFD (the Unicode/WHATWG practice, which is
// what Rust's String::from_utf8_lossy does), so both agents print the same.
func text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r != utf8.RuneError || size > 1 {
			sb.Write(b[:size])
			b = b[size:]
			continue
		}
		sb.WriteRune(utf8.RuneError)
		b = b[maximalSubpart(b):]
	}
	return sb.String()
}

// maximalSubpart returns how many bytes at the start of b (which does not
// start with a valid UTF-8 sequence) form one invalid subsequence: the
// longest prefix of a well-formed sequence, or 1 byte.
func maximalSubpart(b []byte) int {
	need, lo, hi := 0, byte(0x80), byte(0xBF)
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c == 0xED:
		need, hi = 2, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		need = 2
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	i := 1
	for ; i <= need && i < len(b); i++ {
		if b[i] < lo || b[i] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
	}
	return i
}

func emitOK(cmd string) { out.emit(okEvent{"ok", cmd}) }

func emitError(cmd string, err error) {
	fmt.Fprintf(os.Stderr, "go-peer: %s: %v\n", cmd, err)
	out.emit(errorEvent{"error", cmd, err.Error()})
}

// ---------------------------------------------------------------------------
// Delegates.

type peer struct {
	mu    sync.Mutex
	meta  []byte
	state []byte

	m          *memberlist.Memberlist
	keyring    *memberlist.Keyring // the same one as m's config.Keyring
	broadcasts *memberlist.TransmitLimitedQueue
}

// NodeMeta implements memberlist.Delegate.
func (p *peer) NodeMeta(limit int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.meta...)
}

// NotifyMsg implements memberlist.Delegate: user messages and broadcasts.
func (p *peer) NotifyMsg(msg []byte) {
	out.emit(userMsgEvent{"user_msg", text(msg)})
}

// GetBroadcasts implements memberlist.Delegate.
func (p *peer) GetBroadcasts(overhead, limit int) [][]byte {
	return p.broadcasts.GetBroadcasts(overhead, limit)
}

// LocalState implements memberlist.Delegate: the --state / `state` text.
func (p *peer) LocalState(join bool) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.state...)
}

// MergeRemoteState implements memberlist.Delegate. memberlist only calls it
// when the peer sent a non-empty state.
func (p *peer) MergeRemoteState(buf []byte, join bool) {
	out.emit(remoteStateEvent{"remote_state", join, text(buf)})
}

func nodeEv(event string, n *memberlist.Node) nodeEvent {
	return nodeEvent{event, text([]byte(n.Name)), n.Address(), text(n.Meta)}
}

// NotifyJoin implements memberlist.EventDelegate.
func (p *peer) NotifyJoin(n *memberlist.Node) { out.emit(nodeEv("join", n)) }

// NotifyUpdate implements memberlist.EventDelegate.
func (p *peer) NotifyUpdate(n *memberlist.Node) { out.emit(nodeEv("update", n)) }

// NotifyLeave implements memberlist.EventDelegate. memberlist calls it both
// for a graceful leave and for a failure; it has just set the member's state
// to StateLeft (the dead message came from the node itself) or StateDead, and
// holds its node lock. See internals.go for how the state is read in v0.2.2,
// where Node.State is never written.
func (p *peer) NotifyLeave(n *memberlist.Node) {
	if rawState(n) == memberlist.StateLeft {
		out.emit(nodeEv("leave", n))
	} else {
		out.emit(nodeEv("failed", n))
	}
}

// userBroadcast is one queued `broadcast`; every one is distinct.
type userBroadcast []byte

func (b userBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b userBroadcast) Message() []byte                       { return []byte(b) }
func (b userBroadcast) Finished()                             {}
func (b userBroadcast) UniqueBroadcast()                      {}

// ---------------------------------------------------------------------------
// Flags.

type keyList [][]byte

func (k *keyList) String() string { return "" }

func (k *keyList) Set(s string) error {
	key, err := parseKey(s)
	if err != nil {
		return err
	}
	*k = append(*k, key)
	return nil
}

func parseKey(s string) ([]byte, error) {
	key, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("key is not hex: %v", err)
	}
	if err := memberlist.ValidateKey(key); err != nil {
		return nil, err
	}
	return key, nil
}

const usageText = `usage: go-peer --name NAME --bind HOST:PORT [options]
       go-peer bench [--nodes N] [--duration D] [--preset lan|wan|local] [--join-window D] [--settle D]
                     [--give-up D] [--poll D] [--user-broadcasts K]

Runs one memberlist v0.2.2 node speaking the agent line protocol
(interop/AGENT-PROTOCOL.md).

  --name NAME            node name (required)
  --bind HOST:PORT       bind address for UDP and TCP; port 0 picks one (required)
  --advertise HOST:PORT  address announced to peers (default: the bound address;
                         required when HOST is unspecified, e.g. 0.0.0.0)
  --join HOST:PORT,...   seeds to join after start
  --preset lan|wan|local timing preset (default lan)
  --key HEX              encryption key (16, 24 or 32 bytes as hex); repeatable,
                         the first is the primary key
  --meta TEXT            node metadata
  --state TEXT           local push/pull state sent with every push/pull
  --compression on|off   compress packets and streams (default on)
  --lifeguard on|off     Lifeguard's awareness and suspicion multipliers
                         (default on; off sets both to 1)

Not supported by memberlist v0.2.2 (Rust agent only): --label,
--relay-broadcasts, --runtime.
`

// usageError prints msg and the usage text to stderr; the caller exits 2.
func usageError(format string, args ...interface{}) int {
	fmt.Fprintf(os.Stderr, "go-peer: "+format+"\n\n", args...)
	fmt.Fprint(os.Stderr, usageText)
	return 2
}

// rustOnly is a flag that exists only in the Rust agent: giving it to
// go-peer is an error.
type rustOnly struct {
	name string
	why  string
}

func (r *rustOnly) String() string { return "" }
func (r *rustOnly) Set(string) error {
	rustOnlyErr = fmt.Errorf("--%s is not supported by go-peer: %s", r.name, r.why)
	return rustOnlyErr
}

// rustOnlyErr is the error of the first Rust-only flag given, reported
// without the flag package's "invalid value" wording.
var rustOnlyErr error

type rustOnlyBool struct{ rustOnly }

func (r *rustOnlyBool) IsBoolFlag() bool { return true }

func configPreset(name string) (*memberlist.Config, error) {
	switch name {
	case "lan":
		return memberlist.DefaultLANConfig(), nil
	case "wan":
		return memberlist.DefaultWANConfig(), nil
	case "local":
		return memberlist.DefaultLocalConfig(), nil
	}
	return nil, fmt.Errorf("--preset must be lan, wan or local, not %q", name)
}

// resolveHostPort splits HOST:PORT and resolves HOST to one IP address
// (memberlist's transport wants IP literals).
func resolveHostPort(flagName, s string) (net.IP, int, error) {
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return nil, 0, fmt.Errorf("--%s %q: %v", flagName, s, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("--%s %q: bad port", flagName, s)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		ips, err := net.LookupIP(host)
		if err != nil || len(ips) == 0 {
			return nil, 0, fmt.Errorf("--%s %q: cannot resolve %q: %v", flagName, s, host, err)
		}
		ip = ips[0]
	}
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	return ip, int(port), nil
}

// ---------------------------------------------------------------------------
// The node.

func runPeer(args []string) int {
	fs := flag.NewFlagSet("go-peer", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // we print our own usage
	name := fs.String("name", "", "")
	bind := fs.String("bind", "", "")
	advertise := fs.String("advertise", "", "")
	join := fs.String("join", "", "")
	configName := fs.String("preset", "lan", "")
	fs.StringVar(configName, "config", "lan", "") // --preset's old name, for one release
	var keys keyList
	fs.Var(&keys, "key", "")
	meta := fs.String("meta", "", "")
	state := fs.String("state", "", "")
	compression := fs.String("compression", "on", "")
	lifeguard := fs.String("lifeguard", "on", "")
	fs.Var(&rustOnly{name: "label", why: "memberlist v0.2.2 has no cluster labels"}, "label", "")
	fs.Var(&rustOnlyBool{rustOnly{name: "relay-broadcasts",
		why: "memberlist v0.2.2 does not relay user broadcasts"}}, "relay-broadcasts", "")
	fs.Var(&rustOnly{name: "runtime", why: "it selects the Rust async runtime"}, "runtime", "")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stderr, usageText)
			return 0
		}
		if rustOnlyErr != nil {
			err = rustOnlyErr
		}
		return usageError("%v", err)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	if *name == "" {
		return usageError("--name is required")
	}
	if *bind == "" {
		return usageError("--bind is required")
	}
	conf, err := configPreset(*configName)
	if err != nil {
		return usageError("%v", err)
	}
	switch *compression {
	case "on":
		conf.EnableCompression = true
	case "off":
		conf.EnableCompression = false
	default:
		return usageError("--compression must be on or off, not %q", *compression)
	}
	switch *lifeguard {
	case "on":
	case "off":
		// What memberlist's own docs say turns each part off.
		conf.AwarenessMaxMultiplier = 1
		conf.SuspicionMaxTimeoutMult = 1
	default:
		return usageError("--lifeguard must be on or off, not %q", *lifeguard)
	}
	if len(*meta) > memberlist.MetaMaxSize {
		return usageError("--meta is %d bytes; memberlist allows at most %d", len(*meta), memberlist.MetaMaxSize)
	}

	bindIP, bindPort, err := resolveHostPort("bind", *bind)
	if err != nil {
		return usageError("%v", err)
	}
	var advIP net.IP
	advPort := 0
	if *advertise != "" {
		if advIP, advPort, err = resolveHostPort("advertise", *advertise); err != nil {
			return usageError("%v", err)
		}
		if advIP.IsUnspecified() {
			return usageError("--advertise %q: cannot announce an unspecified address", *advertise)
		}
	} else if bindIP.IsUnspecified() {
		return usageError("--advertise is required when --bind is an unspecified address (%s)", *bind)
	}
	var seeds []string
	if *join != "" {
		for _, s := range strings.Split(*join, ",") {
			if s = strings.TrimSpace(s); s != "" {
				seeds = append(seeds, s)
			}
		}
	}

	logger := log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)

	// Build the transport ourselves rather than let memberlist do it: when it
	// binds port 0 itself it overwrites AdvertisePort with the bound port,
	// which would ignore an explicit --advertise port.
	transport, err := newTransport(bindIP.String(), bindPort, logger)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-peer: %v\n", err)
		return 1
	}
	bindPort = transport.GetAutoBindPort()
	if advIP == nil {
		advIP = bindIP
	}
	if advPort == 0 {
		advPort = bindPort
	}

	// Always install a keyring (empty without --key: no encryption) so that
	// key-add works on a node started without keys.
	var primary []byte
	if len(keys) > 0 {
		primary = keys[0]
	}
	keyring, err := memberlist.NewKeyring(keys, primary)
	if err != nil {
		return usageError("--key: %v", err)
	}

	p := &peer{meta: []byte(*meta), state: []byte(*state), keyring: keyring}

	conf.Name = *name
	conf.Transport = transport
	conf.BindAddr = bindIP.String()
	conf.BindPort = bindPort
	conf.AdvertiseAddr = advIP.String()
	conf.AdvertisePort = advPort
	conf.Keyring = keyring
	conf.Delegate = p
	conf.Events = p
	conf.Logger = logger // memberlist's log lines go to stderr

	m, err := memberlist.Create(conf)
	if err != nil {
		transport.Shutdown()
		fmt.Fprintf(os.Stderr, "go-peer: cannot start memberlist: %v\n", err)
		return 1
	}
	p.m = m
	p.broadcasts = &memberlist.TransmitLimitedQueue{
		NumNodes:       m.NumMembers,
		RetransmitMult: 8,
	}

	out.emitReady(readyEvent{"ready", *name, m.LocalNode().Address()})

	if len(seeds) > 0 {
		n, err := m.Join(seeds)
		if err != nil {
			emitError("join", flatten(err))
		} else {
			out.emit(joinedEvent{"joined", n})
		}
	}

	p.commandLoop(os.Stdin)
	m.Shutdown()
	return 0
}

// flatten turns memberlist's multi-line multierror into one line.
func flatten(err error) error {
	if w, ok := err.(interface{ WrappedErrors() []error }); ok {
		var parts []string
		for _, e := range w.WrappedErrors() {
			parts = append(parts, e.Error())
		}
		return errors.New(strings.Join(parts, "; "))
	}
	return err
}

func newTransport(ip string, port int, logger *log.Logger) (*memberlist.NetTransport, error) {
	nc := &memberlist.NetTransportConfig{
		BindAddrs: []string{ip},
		BindPort:  port,
		Logger:    logger,
	}
	// With port 0 the kernel picks a TCP port and the UDP bind on the same
	// number can collide; retry like memberlist does.
	tries := 1
	if port == 0 {
		tries = 10
	}
	var err error
	for i := 0; i < tries; i++ {
		var t *memberlist.NetTransport
		if t, err = memberlist.NewNetTransport(nc); err == nil {
			return t, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("cannot bind %s: %v", net.JoinHostPort(ip, strconv.Itoa(port)), err)
}

// commandLoop reads commands until `quit` or end of input.
func (p *peer) commandLoop(r io.Reader) {
	in := bufio.NewReader(r)
	for {
		line, err := in.ReadString('\n')
		if line != "" {
			line = strings.TrimRight(line, "\r\n")
			if !p.command(line) {
				return
			}
		}
		if err != nil {
			return // EOF is quit
		}
	}
}

// command runs one command line; it returns false on `quit`.
func (p *peer) command(line string) bool {
	cmd, rest, _ := strings.Cut(line, " ")
	switch cmd {
	case "":
		// blank line: ignore
	case "quit":
		return false
	case "members":
		p.printMembers()
	case "broadcast":
		p.broadcasts.QueueBroadcast(userBroadcast(rest))
		emitOK(cmd)
	case "send", "send-reliable":
		node, text, _ := strings.Cut(rest, " ")
		if node == "" {
			emitError(cmd, errors.New("usage: "+cmd+" NODE TEXT"))
			break
		}
		target := p.findMember(node)
		if target == nil {
			emitError(cmd, errors.New("unknown member"))
			break
		}
		var err error
		if cmd == "send" {
			err = p.m.SendBestEffort(target, []byte(text))
		} else {
			err = p.m.SendReliable(target, []byte(text))
		}
		if err != nil {
			emitError(cmd, err)
		} else {
			emitOK(cmd)
		}
	case "meta":
		if len(rest) > memberlist.MetaMaxSize {
			emitError(cmd, fmt.Errorf("meta is %d bytes; memberlist allows at most %d",
				len(rest), memberlist.MetaMaxSize))
			break
		}
		p.mu.Lock()
		p.meta = []byte(rest)
		p.mu.Unlock()
		if err := p.m.UpdateNode(broadcastTimeout); err != nil {
			emitError(cmd, err)
		} else {
			emitOK(cmd)
		}
	case "state":
		p.mu.Lock()
		p.state = []byte(rest)
		p.mu.Unlock()
		emitOK(cmd)
	case "key-add", "key-use", "key-remove":
		if err := p.keyCommand(cmd, rest); err != nil {
			emitError(cmd, err)
		} else {
			emitOK(cmd)
		}
	case "leave":
		if err := p.m.Leave(broadcastTimeout); err != nil {
			emitError(cmd, err)
		} else {
			out.emit(simpleEvent{"left"})
		}
	default:
		emitError(cmd, errors.New("unknown command"))
	}
	return true
}

func (p *peer) keyCommand(cmd, arg string) error {
	key, err := parseKey(arg)
	if err != nil {
		return err
	}
	ring := p.keyring
	switch cmd {
	case "key-add":
		return ring.AddKey(key)
	case "key-use":
		return ring.UseKey(key)
	default:
		keys := ring.GetKeys()
		if len(keys) == 0 {
			return errors.New("no keys installed")
		}
		if bytes.Equal(keys[0], key) {
			return errors.New("cannot remove the primary key")
		}
		found := false
		for _, k := range keys {
			found = found || bytes.Equal(k, key)
		}
		if !found {
			return errors.New("key is not installed")
		}
		return ring.RemoveKey(key)
	}
}

// findMember returns a copy of the live member called name, or nil.
func (p *peer) findMember(name string) *memberlist.Node {
	for _, s := range snapshot(p.m, p.m.Members()) {
		if s.Node.Name == name {
			n := s.Node
			return &n
		}
	}
	return nil
}

func (p *peer) printMembers() {
	snaps := snapshot(p.m, p.m.Members())
	list := make([]member, 0, len(snaps))
	for _, s := range snaps {
		st := "alive"
		if s.State == memberlist.StateSuspect {
			st = "suspect"
		}
		list = append(list, member{text([]byte(s.Node.Name)), s.Node.Address(), text(s.Node.Meta), st})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Node < list[j].Node })
	out.emit(membersEvent{"members", list})
}
