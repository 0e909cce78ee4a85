"""Drives a Serf agent through serfclient, a Python RPC client from PyPI.

    python3 client.py HOST:PORT TAG

Runs members (plain and filtered), event with a stream subscribed to it,
query (on serfclient's connection: it has no query call), and stats, and prints what came back as one JSON object on stdout, for
crates/swim-agent/tests/serf_cli.rs to compare between a Go agent and ours.
TAG names this run's event so that runs on one cluster do not see each
other's.
"""

import json
import signal
import socket
import sys

import msgpack
from serfclient import SerfClient


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def member(m):
    # Addr is the raw IP (4 or 16 bytes).
    addr = m["Addr"]
    family = socket.AF_INET if len(addr) == 4 else socket.AF_INET6
    out = {k: text(v) for k, v in m.items() if k != "Addr"}
    out["Addr"] = socket.inet_ntop(family, addr)
    return out


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    tag = sys.argv[2]
    # The stream and the query read without a timeout: give up as a whole.
    signal.alarm(30)
    client = SerfClient(host=host, port=int(port))
    out = {}

    members = client.members().body["Members"]
    out["members"] = sorted((member(m) for m in members), key=lambda m: m["Name"])
    filtered = client.members(status="alive", tags={"role": "rust"}).body["Members"]
    out["filtered"] = sorted(text(m["Name"]) for m in filtered)

    # A stream on a second connection, then the event through the first.
    listener = SerfClient(host=host, port=int(port))
    stream = listener.stream("user:py-" + tag)
    client.event("py-" + tag, b"payload-" + tag.encode(), coalesce=False)
    for record in stream.body:
        event = record.body
        if text(event.get("Name")) == "py-" + tag:
            out["event"] = {
                "Event": text(event["Event"]),
                "Name": text(event["Name"]),
                "Payload": text(event["Payload"]),
                "Coalesce": event["Coalesce"],
                "LTime": event["LTime"] > 0,
            }
            break

    # serfclient has no query call, and its streaming reader mis-pairs
    # records that arrive in one read with the response header (it takes
    # the last message read as the header; seen against Go's agent): the
    # query goes out on serfclient's connection, and its records are read
    # here.
    conn = client.connection
    request = {
        "FilterNodes": [],
        "FilterTags": {},
        "RequestAck": True,
        "RelayFactor": 0,
        "Timeout": 3 * 10**9,
        "Name": "whoami",
        "Payload": b"py",
    }
    seq = conn._counter()
    conn._socket.sendall(
        msgpack.packb({"Command": "query", "Seq": seq}) + msgpack.packb(request)
    )
    unpacker = msgpack.Unpacker()
    acks, responses, done = set(), {}, False
    while not done:
        unpacker.feed(conn._socket.recv(4096))
        for message in unpacker:
            # Headers ({Seq, Error}) come before the answer and each record.
            if "Error" in message and message["Error"]:
                raise SystemExit("query failed: " + text(message["Error"]))
            kind = text(message.get("Type"))
            if kind == "ack":
                acks.add(text(message["From"]))
            elif kind == "response":
                responses[text(message["From"])] = text(message["Payload"])
            elif kind == "done":
                done = True
    out["query"] = {"acks": sorted(acks), "responses": responses}

    stats = client.stats().body
    out["stats"] = {text(k): sorted(text(x) for x in v) for k, v in stats.items()}
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
