package faultproxy

import (
	"errors"
	"fmt"
	"time"
)

// Link is all the TCP traffic between two processes A and B: the
// connections A opens to B go through Forward, those B opens to A through
// Backward (nil if B never calls A). Up is data from A to B whichever side
// opened the connection that carries it: a request on Forward's, a reply
// on Backward's. So a fault on a Link's direction reaches every byte
// travelling that way, as a fault of the network between two hosts would.
type Link struct {
	Forward, Backward *Proxy
}

// Delay delays every chunk travelling in dir by d until end is called.
func (l *Link) Delay(dir Direction, d time.Duration) (end func()) {
	ends := []func(){l.Forward.Delay(dir, d)}
	if l.Backward != nil {
		ends = append(ends, l.Backward.Delay(dir.reverse(), d))
	}
	return all(ends)
}

// Drop black-holes what travels in dir until end is called.
func (l *Link) Drop(dir Direction) (end func()) {
	ends := []func(){l.Forward.Drop(dir)}
	if l.Backward != nil {
		ends = append(ends, l.Backward.Drop(dir.reverse()))
	}
	return all(ends)
}

// Cut resets, until end is called, the connections whose opener sends
// in dir: Up cuts the connections A opens (A's calls to B), Down those B
// opens. A TCP connection dies as a whole, so this is as near as a cut
// comes to having a direction.
func (l *Link) Cut(dir Direction) (end func()) {
	p := l.Forward
	if dir == Down {
		p = l.Backward
	}
	if p == nil {
		return func() {} // B opens no connections: nothing to cut
	}
	return p.Cut()
}

// Fault names, as Apply takes them.
const (
	FaultDelay = "delay"
	FaultDrop  = "drop"
	FaultCut   = "cut"
)

// Apply starts the fault called fault ("delay", "drop" or "cut") in
// direction ("up", "down" or "both"); delay is the delay's length. It
// returns the function that ends the fault.
func (l *Link) Apply(fault, direction string, delay time.Duration) (end func(), err error) {
	dirs, err := ParseDirections(direction)
	if err != nil {
		return nil, err
	}
	var start func(Direction) func()
	switch fault {
	case FaultDelay:
		start = func(d Direction) func() { return l.Delay(d, delay) }
	case FaultDrop:
		start = l.Drop
	case FaultCut:
		start = l.Cut
	default:
		return nil, fmt.Errorf("faultproxy: fault %q: want %s, %s or %s", fault, FaultDelay, FaultDrop, FaultCut)
	}
	var ends []func()
	for _, d := range dirs {
		ends = append(ends, start(d))
	}
	return all(ends), nil
}

// Close closes both proxies.
func (l *Link) Close() error {
	err := l.Forward.Close()
	if l.Backward != nil {
		err = errors.Join(err, l.Backward.Close())
	}
	return err
}
