package hostile

import (
	"context"
	"strings"
	"sync"

	"github.com/twopc/twopc/internal/rpc"
)

// The attacks of issue 13, sized as the issue ran them.
var (
	// Multicall asks, in a 188 KB request, for 1000 copies of a 1 MiB
	// value: an unbounded server builds a 1 GB reply.
	Multicall = Attack{
		Name:    "multicall",
		About:   "system.multicall of 1000 gets of a 1 MiB value (188 KB request), no token",
		Workers: 4,
		setup: func(ctx context.Context, t Target) error {
			_, err := rpc.NewClient(t.Coordinator, nil).Call(ctx, "put", BigKey, strings.Repeat("A", 1<<20))
			return err
		},
		request: func(_ int, t Target) (string, []byte) { return t.Coordinator, multicallBody() },
	}
	// UnauthBatch sends a participant, without its token, a batch of
	// 2.79 million empty structs (64 MiB): decoded before the token was
	// checked, it cost 470 MB each.
	UnauthBatch = Attack{
		Name:    "unauth-batch",
		About:   "64 MiB batch of empty structs to a participant, without the peer token",
		Workers: 8,
		request: func(_ int, t Target) (string, []byte) { return t.Participant, unauthBatchBody() },
	}
	// Echo sends input that the server used to copy whole into its fault
	// and its log: long method, entity, element and type names, 3 MB to
	// the coordinator and 10 MB to a participant, in turn.
	Echo = Attack{
		Name:    "echo",
		About:   "3 MB (coordinator) and 10 MB (participant) names that faults and logs used to repeat whole",
		Workers: 4,
		request: func(round int, t Target) (string, []byte) {
			bodies := echoBodies()
			b := bodies[round%len(bodies)]
			if round/len(bodies)%2 == 1 {
				return t.Participant, b.participant
			}
			return t.Coordinator, b.coordinator
		},
	}
	// Flood sends 64 concurrent 4 MiB bodies (the coordinator's limit)
	// of empty values, the shape that decodes into the most memory.
	Flood = Attack{
		Name:    "flood",
		About:   "64 concurrent 4 MiB requests of empty values to the coordinator",
		Workers: 64,
		request: func(_ int, t Target) (string, []byte) { return t.Coordinator, floodBody() },
	}
)

// All lists the attacks in the order.
var All = []Attack{Multicall, UnauthBatch, Echo, Flood}

// ByName returns the attack called name.
func ByName(name string) (Attack, bool) {
	for _, a := range All {
		if a.Name == name {
			return a, true
		}
	}
	return Attack{}, false
}

// BigKey is the key Multicall puts its 1 MiB value under.
const BigKey = "hostile-big"

func call(method string, params ...string) string {
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\"?><methodCall><methodName>" + method + "</methodName><params>")
	for _, p := range params {
		b.WriteString("<param>" + p + "</param>")
	}
	b.WriteString("</params></methodCall>")
	return b.String()
}

func array(n int, unit string) string {
	return "<value><array><data>" + strings.Repeat(unit, n) + "</data></array></value>"
}

var multicallBody = sync.OnceValue(func() []byte {
	get := "<value><struct><member><name>methodName</name><value><string>get</string></value></member>" +
		"<member><name>params</name><value><array><data><value><string>" + BigKey +
		"</string></value></data></array></value></member></struct></value>"
	return []byte(call("system.multicall", array(1000, get)))
})

// emptyStruct is the unit of the bodies that decode into the most memory
// per byte.
const emptyStruct = "<value><struct/></value>"

var unauthBatchBody = sync.OnceValue(func() []byte {
	return []byte(call("batch", array((64<<20-200)/len(emptyStruct), emptyStruct)))
})

var floodBody = sync.OnceValue(func() []byte {
	return []byte(call("put", "<value>k</value>", array((4<<20-200)/len(emptyStruct), emptyStruct)))
})

type echoBody struct{ coordinator, participant []byte }

// echoBodies: a long method name (unknown method; not authorised at a
// participant), entity name, element name and type name.
var echoBodies = sync.OnceValue(func() []echoBody {
	shapes := []func(string) string{
		func(s string) string { return call(s) },
		func(s string) string { return call("get", "<value>&"+s+";</value>") },
		func(s string) string { return call("get", "<"+s+"/>") },
		func(s string) string { return call("get", "<value><"+s+">x</"+s+"></value>") },
	}
	out := make([]echoBody, len(shapes))
	for i, shape := range shapes {
		out[i] = echoBody{
			coordinator: []byte(shape(strings.Repeat("A", 3<<20))),
			participant: []byte(shape(strings.Repeat("A", 10<<20))),
		}
	}
	return out
})
