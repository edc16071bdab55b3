// Package rpc is twopc's XML-RPC layer: the server (kolo/xmlrpc has none),
// the codec it needs, and a concurrent client built on kolo's encoder.
//
// The coordinator serves its public API with Server; coordinator and
// participants talk to each other with Client. Python's xmlrpc.client is
// the reference peer: whatever it sends decodes to the values it meant, and
// whatever we send it reads back exactly.
//
// # Types
//
// Decoding (DecodeCall, DecodeResponse) gives these Go values:
//
//	<string>, untyped <value>   string (byte for byte, whitespace kept, as Python does)
//	<int>, <i4>                 int64 (must fit in 32 bits)
//	<i8>                        int64
//	<boolean>                   bool (only 0 or 1)
//	<double>                    float64 (decimal, finite)
//	<base64>                    []byte, never nil (whitespace inside is ignored)
//	<dateTime.iso8601>          time.Time in UTC (20060102T15:04:05, optionally
//	                            with Z or ±hh:mm, or 2006-01-02T15:04:05...);
//	                            no zone means UTC
//	<struct>                    map[string]any (a repeated name keeps the last value)
//	<array>                     []any, never nil
//	<nil/>, <ex:nil/>           nil
//
// Encoding (EncodeResponse, EncodeCall) takes the same values and also:
// every integer type (<int> when it fits in 32 bits, else <i8>), float32,
// any slice or array (<array>; a slice of bytes is <base64>), any map with
// string keys (<struct>, members sorted by name), pointers (nil is <nil/>)
// and named types of those kinds. time.Time goes out in UTC at second
// precision, without a zone, the only form Python reads. Go structs are not
// encoded: build a map[string]any. A caller that sends many values of a
// known shape writes them with a ValueWriter instead, element by element,
// and passes what it wrote as one param or result (Raw): the same bytes,
// without a tree of any to allocate (package peer's batches).
//
// Every string XML 1.0 can carry goes out and comes back byte for byte: CR
// is sent as &#xD; (a parser would turn a raw CR into LF) and > as &gt;, so
// "]]>" cannot appear. A string XML cannot carry (invalid UTF-8, U+0000 and
// the other C0 controls except tab, LF and CR, U+FFFE, U+FFFF) is an encode
// error: we never send broken XML. Fault messages are the exception: their
// bad characters are replaced with U+FFFD, because a fault must get out.
//
// # Faults
//
// faults.go holds the project's one table of fault codes. Decoding errors
// in a request are faults with the XML-RPC interoperability codes
// (ParseError for bad XML or scalar text, InvalidRequest for XML that is
// not a methodCall, TransportError for a body that could not be read: too
// slow, or cut short), or TooLarge for a request beyond Limits.
//
// Input is quoted in a message only as a short excerpt (excerpt.go): a
// name or a number, an encoding/xml message, a method name; and every
// fault message is cut to maxMessage bytes on its way out, whatever built
// it, so that no request can make a large fault or log line.
//
// # Fast path
//
// DecodeCall and DecodeResponse read the whole body (within
// Limits.MaxBodyBytes) and first try a hand-written scanner (the fast*.go
// files) that handles only the XML real peers write: our encoder's,
// kolo's and Python's documents, with an optional byte order mark and XML
// declaration, bare element names, whitespace between elements, the five predefined
// entities and character references. It exists because encoding/xml's
// tokens and their garbage were the coordinator's largest CPU cost; it
// decodes a put or a batch reply 10 to 20 times faster, with a few
// allocations per value instead of dozens.
//
// The fast path only ever reports success. On anything else (a comment,
// CDATA, a DOCTYPE, an attribute or namespace prefix, an unknown entity,
// any error at all, a limit reached) it gives up, and the encoding/xml
// decoder (decodeCallXML, decodeResponseXML) decodes the same bytes and
// has the last word, so values, faults and messages are exactly what the
// slow path alone gives. A body over the limit, or whose reading fails,
// goes to the slow path as the same stream: the bytes read, then the rest
// or the error. FuzzFastDecode checks that equivalence; a change to one
// path's rules must be made in the other too.
//
// # Limits
//
// Limits bound the body size, the nesting of values, the number of params
// and of system.multicall entries; each is enforced with a TooLarge fault
// that states it. The decoder never recurses except into <value>, whose
// nesting is bounded, so no input can exhaust the stack.
//
// A Server bounds what any request can make it hold, with or without a
// token, in four steps:
//
//   - Admission (admit.go), from the headers alone, before a byte of the
//     body is read: the token (SetCredentials: each credential admits its
//     holders with its own body limit, so that a token good for one small
//     method admits only small bodies) and the declared Content-Length.
//     A refused request is answered at once on a connection that then
//     closes; its body is not held.
//   - Memory in flight (budget.go): every request is charged, before its
//     body is read, what decoding the body can make of it (8 bytes per
//     byte, the worst shapes' peak; a body sent without Content-Length
//     counts as long as allowed), and later what its reply needs;
//     past Limits.MaxInflightBytes it waits up to Limits.BusyWait, then
//     gets an Unavailable ("busy") fault. Requests that hold more than
//     1 MiB are served one per two CPUs and may hold 3/4 of the budget,
//     and while ordinary requests are in flight a lane rests after a big
//     request for as long as it was held, so that big ones cannot crowd
//     out a put of a short value, in memory or in CPU.
//   - Replies (reply.go): one over 32 KiB is measured first, by encoding
//     it into a sink that only counts; over Limits.MaxReplyBytes it is a
//     TooLarge fault, otherwise it is charged and encoded again straight
//     onto the connection. system.multicall counts the sum of its
//     results: the entry whose result would pass the limit gets TooLarge,
//     and the entries after it are not run; nor are they once the client
//     is gone.
//   - What the handlers themselves hold (a value read for a get) is not
//     counted; it is bounded by their own limits and by the requests the
//     budget lets in.
//
// # Streams
//
// The coordinator calls its participants over streams (stream.go): a
// request upgrades its connection, which then carries one call after
// another, each a frame with the headers and the XML body a request
// would have. A server takes them only if told (AcceptStreams), only
// from a caller its credentials admit, and runs every frame through
// ServeHTTP, so that each call passes admission, the budget and the
// limits above on its own headers. The client (StreamTransport) writes
// and reads in the caller's goroutine; it falls back to plain HTTP for a
// server that does not take streams. A Client whose transports are all
// this package's (Metered, WithToken, StreamTransport) hands them each
// call as it is (outgoing), without net/http's Client and an
// http.Request for each layer: the frame carries the same headers.
//
// What is not supported: XML encodings other than UTF-8 (a declared
// encoding="ISO-8859-1" is a ParseError), DOCTYPE declarations (refused),
// and extension types other than <i8> and <nil/>. Element names are
// matched without their namespace prefix. encoding/xml turns a character
// reference to a surrogate (&#xD800;, what Python sends for a lone
// surrogate) into U+FFFD rather than refusing it, and the fast path does
// the same; that is the one ill-formed input accepted, and the README
// tells clients what it means for their keys.
package rpc
