package rpc

import (
	"io"
	"sync"
)

// Encoders are pooled: growing a fresh buffer up to the size of a batch
// reply was most of the cost of encoding one. Every Encode function hands
// the bytes to its writer before it returns, so the buffer is free again.
var encoders = sync.Pool{New: func() any { return new(encoder) }}

// maxPooledEncoder keeps one huge reply from pinning its buffer.
const maxPooledEncoder = 1 << 20

func getEncoder() *encoder {
	e := encoders.Get().(*encoder)
	e.reset(nil)
	return e
}

func putEncoder(e *encoder) {
	if e.buf.Cap() <= maxPooledEncoder {
		e.reset(nil) // drop the sink
		encoders.Put(e)
	}
}

// reset empties e and gives it sink (nil: none).
func (e *encoder) reset(sink io.Writer) {
	e.buf.Reset()
	e.sink, e.sent, e.err = sink, 0, nil
}

// checkText reports, as encoder.text does, whether XML can carry s; the
// pooled buffer makes the check free of garbage.
func checkText(s string) error {
	e := getEncoder()
	defer putEncoder(e)
	return e.text(s)
}
