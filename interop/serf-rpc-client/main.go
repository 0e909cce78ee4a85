// serf-rpc-client drives a Serf agent through Go Serf's own RPC client
// library (github.com/hashicorp/serf/client, Debian's
// golang-github-hashicorp-serf-dev), for what the `serf` CLI does not do:
// answering queries from an event stream (`stream` + `respond`), and the
// `stats`, `get-coordinate`, `stop` calls.
//
// Usage: serf-rpc-client RPC_ADDR NODE
//
// It prints "ready" once its stream is registered, then for each event:
// "user NAME PAYLOAD" for user events; for a query named "ask" it answers
// "rpc:PAYLOAD" and prints "answered PAYLOAD". On a line "stop" on stdin
// it checks stats, the node's coordinate and stopping the stream, prints
// "stopped" and exits.
package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/hashicorp/serf/client"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 3 {
		fail("usage: serf-rpc-client RPC_ADDR NODE")
	}
	c, err := client.NewRPCClient(os.Args[1])
	if err != nil {
		fail("connect: %v", err)
	}
	defer c.Close()
	events := make(chan map[string]interface{}, 64)
	handle, err := c.Stream("user,query:ask", events)
	if err != nil {
		fail("stream: %v", err)
	}
	fmt.Println("ready")
	stop := make(chan struct{})
	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			if in.Text() == "stop" {
				close(stop)
				return
			}
		}
	}()
	for {
		select {
		case e := <-events:
			switch e["Event"] {
			case "user":
				fmt.Printf("user %s %s\n", e["Name"], e["Payload"])
			case "query":
				// go-msgpack reads an integer into an interface{} as
				// int64 or uint64, by its encoding.
				var id uint64
				switch n := e["ID"].(type) {
				case int64:
					id = uint64(n)
				case uint64:
					id = n
				default:
					fail("query without an ID: %#v", e)
				}
				payload := fmt.Sprintf("%s", e["Payload"])
				if err := c.Respond(id, []byte("rpc:"+payload)); err != nil {
					fail("respond: %v", err)
				}
				// A second answer to the same query is refused.
				if err := c.Respond(id, []byte("again")); err == nil {
					fail("a second respond was accepted")
				}
				fmt.Printf("answered %s\n", payload)
			default:
				fail("unexpected event: %#v", e)
			}
		case <-stop:
			stats, err := c.Stats()
			if err != nil || stats["agent"]["name"] != os.Args[2] {
				fail("stats: %v %#v", err, stats)
			}
			coord, err := c.GetCoordinate(os.Args[2])
			if err != nil || coord == nil || len(coord.Vec) != 8 {
				fail("coordinate: %v %#v", err, coord)
			}
			if err := c.Stop(handle); err != nil {
				fail("stop: %v", err)
			}
			fmt.Println("stopped")
			return
		}
	}
}
