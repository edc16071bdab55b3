package rpc

import "sync"

// Encoders are pooled: growing a fresh buffer up to the size of a batch
// reply was most of the cost of encoding one. Every Encode function hands
// the bytes to its writer before it returns, so the buffer is free again.
var encoders = sync.Pool{New: func() any { return new(encoder) }}

// maxPooledEncoder keeps one huge reply from pinning its buffer.
const maxPooledEncoder = 1 << 20

func getEncoder() *encoder {
	e := encoders.Get().(*encoder)
	e.Reset()
	return e
}

func putEncoder(e *encoder) {
	if e.Cap() <= maxPooledEncoder {
		encoders.Put(e)
	}
}

// checkText reports, as encoder.text does, whether XML can carry s; the
// pooled buffer makes the check free of garbage.
func checkText(s string) error {
	e := getEncoder()
	defer putEncoder(e)
	return e.text(s)
}
