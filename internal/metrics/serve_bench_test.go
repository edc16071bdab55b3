package metrics

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/twopc/twopc/internal/rpc"
)

// BenchmarkServeCall is the coordinator's serving path for one small call
// without the network: admission against a peer token (the caller
// presents none), decoding, the handler, the reply and the metrics.
func BenchmarkServeCall(b *testing.B) {
	srv := rpc.NewServer(rpc.DefaultLimits(), nil)
	srv.Register(rpc.Method{Name: "get", Handler: func(context.Context, []any) (any, error) {
		return "0123456789012345678901234567890123456789012345678901234567890123", nil
	}})
	srv.SetCredentials(rpc.Credential{}, rpc.Credential{Secret: rpc.NewSecret("peer-token"), MaxBodyBytes: 1 << 20})
	srv.SetObserver(NewCoordinator().ObserveCall)
	body := []byte(`<?xml version="1.0"?><methodCall><methodName>get</methodName><params><param><value><string>k0000001</string></value></param></params></methodCall>`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest(http.MethodPost, "/RPC2", bytes.NewReader(body))
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatal(w.Code)
			}
		}
	})
}
