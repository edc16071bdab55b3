package e2e

import (
	"testing"

	"github.com/twopc/twopc/internal/putload"
	"github.com/twopc/twopc/internal/rpc"
)

func startPutLoad(t *testing.T, url string, clients int) *putload.Load {
	return startPutLoadAt(t, []string{url}, clients, false)
}

// startPutLoadAt spreads the clients over urls. With unknownOK, fault 6
// (outcome unknown) is no error: a coordinator that stops leading, or
// fails to forward, answers it for a put that may or may not be done.
func startPutLoadAt(t *testing.T, urls []string, clients int, unknownOK bool) *putload.Load {
	var tolerate []int
	if unknownOK {
		tolerate = append(tolerate, rpc.OutcomeUnknown)
	}
	return putload.Start(t, clients, func(i int) *rpc.Client { return rpc.NewClient(urls[i%len(urls)], nil) }, tolerate...)
}
