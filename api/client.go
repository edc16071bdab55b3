package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/internal/rpc"
	"github.com/twopc/twopc/protocol"
)

// Client calls a coordinator's public methods with Go types. It is safe
// for concurrent use. Faults come back as *rpc.Fault.
type Client struct {
	rpc *rpc.Client
}

// NewClient returns a client of the coordinator at url (its /RPC2 URL);
// hc may be nil, or carry a token and a CA (see rpc.NewClient).
func NewClient(url string, hc *http.Client) *Client {
	return &Client{rpc: rpc.NewClient(url, hc)}
}

// RPC is the untyped client underneath, for methods Client does not wrap.
func (c *Client) RPC() *rpc.Client { return c.rpc }

// Put stores value ([]byte goes as base64, string as string) under key.
func (c *Client) Put(ctx context.Context, key string, value any) error {
	_, err := c.rpc.Call(ctx, "put", key, value)
	return err
}

// Get returns key's value: a string, or []byte for a binary value.
func (c *Client) Get(ctx context.Context, key string) (any, error) {
	return c.rpc.Call(ctx, "get", key)
}

// Delete removes key and reports whether it existed.
func (c *Client) Delete(ctx context.Context, key string) (bool, error) {
	res, err := c.rpc.Call(ctx, "delete", key)
	if err != nil {
		return false, err
	}
	existed, ok := res.(bool)
	if !ok {
		return false, fmt.Errorf("api: delete: want boolean, got %T", res)
	}
	return existed, nil
}

// Txn runs t (see the txn method) and returns which branch ran and each
// op's result.
func (c *Client) Txn(ctx context.Context, t *protocol.Txn) (coordinator.Result, error) {
	res, err := c.rpc.Call(ctx, "txn", EncodeTxn(t)...)
	if err != nil {
		return coordinator.Result{}, err
	}
	return decodeResult(res, t)
}

// Status returns the coordinator's view of the cluster.
func (c *Client) Status(ctx context.Context) (coordinator.Status, error) {
	res, err := c.rpc.Call(ctx, "status")
	if err != nil {
		return coordinator.Status{}, err
	}
	return DecodeStatus(res)
}

// Transactions lists what is not finished in the cluster (see the
// transactions method).
func (c *Client) Transactions(ctx context.Context) ([]coordinator.PendingTx, error) {
	res, err := c.rpc.Call(ctx, "transactions")
	if err != nil {
		return nil, err
	}
	return DecodePending(res)
}
