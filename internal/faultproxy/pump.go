package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"time"
)

// A direction of a connection holds at most queueChunks chunks of at most
// chunkSize bytes (512 KiB) between reading and delivering them: enough
// for the XML-RPC calls of a drill to flow under a delay, and a bound on
// what a delay that outlives the sender's patience can pin in memory.
const (
	chunkSize   = 32 << 10
	queueChunks = 16
)

// chunk is what one read returned, or the end of the stream.
type chunk struct {
	data []byte
	at   time.Time // when it was read: its delay counts from here
	eof  bool
}

// pump carries one direction of c, from src to dst. A reader takes chunks
// off src as they come, so that a drop discards them at once and a delay
// does not hold up the reading of what follows; the writer delivers each
// when the faults let it.
func (p *Proxy) pump(c *pair, dir Direction, src, dst *net.TCPConn) {
	q := make(chan chunk, queueChunks)
	p.wg.Go(func() { p.read(c, dir, src, q) })
	p.write(c, dir, dst, q)
}

func (p *Proxy) read(c *pair, dir Direction, src *net.TCPConn, q chan<- chunk) {
	buf := make([]byte, chunkSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if p.f.view(dir).drop {
				p.dropped[dir].Add(int64(n))
			} else {
				select {
				case q <- chunk{data: bytes.Clone(buf[:n]), at: p.clock.Now()}:
				case <-c.done:
					return
				}
			}
		}
		if errors.Is(err, io.EOF) {
			select {
			case q <- chunk{eof: true, at: p.clock.Now()}:
			case <-c.done:
			}
			return
		}
		if err != nil {
			// Reset by the peer, or torn down by us: either way the
			// other side must not go on as if nothing happened.
			c.reset()
			return
		}
	}
}

func (p *Proxy) write(c *pair, dir Direction, dst *net.TCPConn, q <-chan chunk) {
	for {
		var ch chunk
		select {
		case ch = <-q:
		case <-c.done:
			return
		}
		if !p.await(c, dir, ch) {
			return
		}
		if ch.eof {
			dst.CloseWrite()
			if c.ended.Add(1) == 2 {
				c.finish()
			}
			return
		}
		// A drop that began while the chunk was held by a delay takes
		// it too: it was still on the wire.
		if p.f.view(dir).drop {
			p.dropped[dir].Add(int64(len(ch.data)))
			continue
		}
		if _, err := dst.Write(ch.data); err != nil {
			c.reset()
			return
		}
		p.delivered[dir].Add(int64(len(ch.data)))
	}
}

// await waits until ch may be delivered: the longest delay held now,
// counted from when ch was read, has passed; and, for the end of the
// stream, no drop holds it back (a partition passes no FIN either). The
// faults are read again whenever they change, so that ending a delay
// releases what it held at once. It returns false if c is torn down
// meanwhile.
func (p *Proxy) await(c *pair, dir Direction, ch chunk) bool {
	for {
		v := p.f.view(dir)
		var timer <-chan time.Time
		if wait := ch.at.Add(v.delay).Sub(p.clock.Now()); wait > 0 {
			timer = p.clock.After(wait)
		} else if !ch.eof || !v.drop {
			return true
		}
		select {
		case <-timer: // nil while only a drop holds the end of stream
		case <-v.changed:
		case <-c.done:
			return false
		}
	}
}
