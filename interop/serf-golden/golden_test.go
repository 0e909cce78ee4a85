// Package serf: compiled INTO Go Serf's own package (see gen.sh), so every
// vector is written by Serf's real unexported types and encoders
// (encodeMessage, encodeRelayMessage, encodeFilter, encodeTags).
package serf

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/codec"
	"github.com/hashicorp/serf/coordinate"
)

type vector struct {
	Name string `json:"name"`
	Hex  string `json:"hex"`
}

func TestGolden(t *testing.T) {
	var out []vector
	add := func(name string, b []byte, err error) {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, vector{name, hex.EncodeToString(b)})
	}
	msg := func(name string, ty messageType, m interface{}) {
		b, err := encodeMessage(ty, m)
		add(name, b, err)
	}

	msg("leave", messageLeaveType, &messageLeave{LTime: 7, Node: "node-a", Prune: true})
	msg("join", messageJoinType, &messageJoin{LTime: 300, Node: "node-b"})
	msg("push_pull", messagePushPullType, &messagePushPull{
		LTime:        70000,
		StatusLTimes: map[string]LamportTime{"node-a": 5},
		LeftMembers:  []string{"node-c"},
		EventLTime:   9,
		Events: []*userEvents{nil, {LTime: 8, Events: []userEvent{
			{Name: "deploy", Payload: []byte("v1")},
			{Name: "restart", Payload: nil},
		}}},
		QueryLTime: 3,
	})
	// As LocalState writes a fresh node's state: empty (non-nil) map and
	// list, and an event buffer of nils.
	msg("push_pull_empty", messagePushPullType, &messagePushPull{
		LTime:        1,
		StatusLTimes: map[string]LamportTime{},
		LeftMembers:  []string{},
		Events:       make([]*userEvents, 3),
	})
	msg("user_event", messageUserEventType, &messageUserEvent{
		LTime: 1 << 33, Name: "deploy", Payload: []byte(strings.Repeat("x", 40)), CC: true,
	})
	msg("user_event_no_payload", messageUserEventType, &messageUserEvent{LTime: 0, Name: "ping"})

	fNodes, err := encodeFilter(filterNodeType, filterNode{"node-a", "node-b"})
	add("filter_nodes", fNodes, err)
	fTag, err := encodeFilter(filterTagType, &filterTag{Tag: "role", Expr: "^web$"})
	add("filter_tag", fTag, err)
	msg("query", messageQueryType, &messageQuery{
		LTime:       4,
		ID:          0xdeadbeef,
		Addr:        []byte{127, 0, 0, 1},
		Port:        7946,
		SourceNode:  "node-a",
		Filters:     [][]byte{fNodes, fTag},
		Flags:       queryFlagAck | queryFlagNoBroadcast,
		RelayFactor: 2,
		Timeout:     5 * time.Second,
		Name:        "uptime",
		Payload:     []byte("p"),
	})
	msg("query_no_filters", messageQueryType, &messageQuery{
		LTime: 200, ID: 1, Addr: net.ParseIP("::1"), Port: 80, SourceNode: "n",
		Timeout: 500 * time.Millisecond, Name: "_serf_ping",
	})
	msg("query_response", messageQueryResponseType, &messageQueryResponse{
		LTime: 4, ID: 0xdeadbeef, From: "node-b", Flags: queryFlagAck,
	})
	msg("query_response_payload", messageQueryResponseType, &messageQueryResponse{
		LTime: 4, ID: 7, From: "node-b", Payload: []byte("12:00 up 3 days"),
	})
	msg("conflict_response", messageConflictResponseType, &Member{
		Name: "node-a", Addr: net.ParseIP("127.0.0.1"), Port: 7946,
		Tags: map[string]string{"role": "web"}, Status: StatusAlive,
		ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 2,
		DelegateMin: 2, DelegateMax: 5, DelegateCur: 4,
	})
	// A conflict query about a node the responder does not know: a nil *Member.
	var none *Member
	msg("conflict_response_unknown", messageConflictResponseType, none)
	msg("key_request", messageKeyRequestType, keyRequest{Key: bytes.Repeat([]byte{0xab}, 16)})
	msg("key_response", messageKeyResponseType, &nodeKeyResponse{
		Result: true, Keys: []string{"q4vLzA==", "3q2+7w=="}, PrimaryKey: "q4vLzA==",
	})
	msg("key_response_error", messageKeyResponseType, &nodeKeyResponse{Message: "no keyring"})
	relay, err := encodeRelayMessage(messageQueryResponseType,
		net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 7946}, "node-c",
		&messageQueryResponse{LTime: 4, ID: 9, From: "node-b", Payload: []byte("ok")})
	add("relay", relay, err)

	s := &Serf{config: &Config{ProtocolVersion: 5}}
	add("tags", s.encodeTags(map[string]string{"role": "web"}), nil)
	add("tags_empty", s.encodeTags(map[string]string{}), nil)
	add("tags_v2_role_only", (&Serf{config: &Config{ProtocolVersion: 2}}).encodeTags(map[string]string{"role": "db"}), nil)

	// Coordinates: the ack payload of a fresh node and of a set coordinate,
	// as the ping delegate writes them, and a fixed run of Vivaldi updates
	// (the resulting coordinate, msgpack-encoded, bit for bit).
	client, err := coordinate.NewClient(coordinate.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ping := &pingDelegate{serf: &Serf{coordClient: client}}
	add("ping_payload_fresh", ping.AckPayload(), nil)
	set := &coordinate.Coordinate{
		Vec:   []float64{0.001, -0.002, 0.5, 0, 0, 0, 0, 1e-9},
		Error: 0.5, Adjustment: -0.001, Height: 0.0002,
	}
	if err := client.SetCoordinate(set); err != nil {
		t.Fatal(err)
	}
	add("ping_payload_set", ping.AckPayload(), nil)
	run, _ := coordinate.NewClient(coordinate.DefaultConfig())
	for i := 0; i < 30; i++ {
		other := &coordinate.Coordinate{
			Vec:        []float64{0.001 * float64(i%5+1), -0.002, 0, 0, 0, 0, 0, 0.0005 * float64(i)},
			Error:      0.3 + 0.01*float64(i),
			Adjustment: 0.0001 * float64(i),
			Height:     0.00002,
		}
		rtt := time.Duration(1000000 + 137000*i)
		if _, err := run.Update(fmt.Sprintf("node-%d", i%3), other, rtt); err != nil {
			t.Fatal(err)
		}
	}
	var coordBuf bytes.Buffer
	err = codec.NewEncoder(&coordBuf, &codec.MsgpackHandle{}).Encode(run.GetCoordinate())
	add("vivaldi_after_30_updates", coordBuf.Bytes(), err)

	js, _ := json.MarshalIndent(out, "", "  ")
	fmt.Printf("GOLDEN-BEGIN\n%s\nGOLDEN-END\n", js)
}
