package main

// Reading a member's real state out of memberlist v0.2.2.
//
// memberlist.Node has an exported State field, but v0.2.2 never writes it:
// the library keeps each member in an unexported
//
//	type nodeState struct {
//		Node
//		Incarnation uint32
//		State       NodeStateType // shadows Node.State
//		StateChange time.Time
//	}
//
// and every state change (alive, suspect, dead, left) goes to
// nodeState.State, which shadows the embedded Node.State. So Node.State is
// always StateAlive (0) and cannot tell a graceful leave from a failure.
//
// What v0.2.2 does record is the distinction itself: deadNode() sets
// nodeState.State to StateLeft when the dead message came from the node
// itself (Node == From, which is what Leave() sends) and to StateDead
// otherwise, and only then calls EventDelegate.NotifyLeave(&state.Node).
// Every *Node the library hands out (NotifyJoin/NotifyUpdate/NotifyLeave and
// Members()) is &nodeState.Node, and Node is the first field of nodeState, so
// the *Node points at the start of its nodeState. We read nodeState.State
// through a struct with the same layout.
//
// That is only safe if the layout really is the same, so checkLayout()
// compares our mirror with the library's type field by field (name, type,
// offset) through reflection at start-up. If it does not match (a different
// memberlist version, where Node.State is the real field), we fall back to
// Node.State.
//
// Locking: NotifyLeave runs with the library's nodeLock held for writing, so
// it reads the state directly. Members() returns pointers that the library
// keeps updating, so listing them takes nodeLock for reading (found the same
// way, by reflection, and checked to be a sync.RWMutex).

import (
	"reflect"
	"sync"
	"time"
	"unsafe"

	"github.com/hashicorp/memberlist"
)

type nodeStateMirror struct {
	memberlist.Node
	Incarnation uint32
	State       memberlist.NodeStateType
	StateChange time.Time
}

var (
	mirrorOK       bool    // nodeStateMirror matches memberlist's nodeState
	nodeLockOffset uintptr // offset of Memberlist.nodeLock
	nodeLockOK     bool
)

func init() { checkLayout() }

func checkLayout() {
	mt := reflect.TypeOf((*memberlist.Memberlist)(nil)).Elem()

	if f, ok := mt.FieldByName("nodeLock"); ok &&
		f.Type == reflect.TypeOf((*sync.RWMutex)(nil)).Elem() {
		nodeLockOffset = f.Offset
		nodeLockOK = true
	}

	f, ok := mt.FieldByName("nodeMap")
	if !ok || f.Type.Kind() != reflect.Map || f.Type.Elem().Kind() != reflect.Ptr {
		return
	}
	lib := f.Type.Elem().Elem() // nodeState
	ours := reflect.TypeOf(nodeStateMirror{})
	if lib.Kind() != reflect.Struct || lib.Size() != ours.Size() ||
		lib.NumField() != ours.NumField() {
		return
	}
	for i := 0; i < ours.NumField(); i++ {
		a, b := lib.Field(i), ours.Field(i)
		if a.Name != b.Name || a.Type != b.Type || a.Offset != b.Offset ||
			a.Anonymous != b.Anonymous {
			return
		}
	}
	// Node must sit at offset 0 so that &nodeState.Node == &nodeState.
	mirrorOK = ours.Field(0).Offset == 0
}

// rawState returns the library's state for n. The caller must hold the
// library's nodeLock (NotifyLeave does; see snapshot otherwise).
func rawState(n *memberlist.Node) memberlist.NodeStateType {
	if mirrorOK {
		return (*nodeStateMirror)(unsafe.Pointer(n)).State
	}
	return n.State
}

// nodeSnap is a copy of a member taken under the library's lock.
type nodeSnap struct {
	Node  memberlist.Node
	State memberlist.NodeStateType
}

// snapshot copies nodes (from m.Members()) and their states under m's
// nodeLock, since the library keeps updating the structs they point at.
func snapshot(m *memberlist.Memberlist, nodes []*memberlist.Node) []nodeSnap {
	out := make([]nodeSnap, len(nodes))
	if nodeLockOK {
		lock := (*sync.RWMutex)(unsafe.Add(unsafe.Pointer(m), nodeLockOffset))
		lock.RLock()
		defer lock.RUnlock()
	}
	for i, n := range nodes {
		out[i] = nodeSnap{Node: *n, State: rawState(n)}
	}
	return out
}
