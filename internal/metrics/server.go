package metrics

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/twopc/twopc/internal/rpc"
)

// latencyBuckets span 50µs (a loopback call, a fast fsync) to 6.5s
// (beyond every timeout of the protocol), doubling.
var latencyBuckets = prometheus.ExponentialBuckets(50e-6, 2, 18)

// Server is the metrics every twopc server has: its XML-RPC calls, the
// Go runtime and the process.
type Server struct {
	reg      *prometheus.Registry
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// byMethod holds each method's children for answers that are not
	// faults (*callMetrics by method name), so that the common call
	// costs no label lookup (faults take the slower way). Names are the server's registered ones
	// (rpc.CallInfo), so it stays small.
	byMethod sync.Map
}

type callMetrics struct {
	ok       prometheus.Counter
	duration prometheus.Observer
}

func newServer() *Server {
	s := &Server{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twopc_rpc_calls_total",
			Help: `XML-RPC calls answered, by method ("other": a name this server does not have, or an undecodable request) and code ("ok", or the fault code sent).`,
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "twopc_rpc_call_duration_seconds",
			Help:    "Time from the start of an XML-RPC request (or system.multicall entry) to its answer being ready, by method.",
			Buckets: latencyBuckets,
		}, []string{"method"}),
	}
	s.reg.MustRegister(s.calls, s.duration,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s
}

// ObserveCall counts one answered call; install it with
// rpc.Server.SetObserver.
func (s *Server) ObserveCall(ci rpc.CallInfo) {
	method := ci.Method
	if method == "" {
		method = "other"
	}
	if ci.Code != 0 {
		s.calls.WithLabelValues(method, strconv.Itoa(ci.Code)).Inc()
		s.duration.WithLabelValues(method).Observe(ci.Duration.Seconds())
		return
	}
	v, ok := s.byMethod.Load(method)
	if !ok {
		v, _ = s.byMethod.LoadOrStore(method, &callMetrics{
			ok: s.calls.WithLabelValues(method, "ok"), duration: s.duration.WithLabelValues(method)})
	}
	m := v.(*callMetrics)
	m.ok.Inc()
	m.duration.Observe(ci.Duration.Seconds())
}

// Handler serves the registry in the Prometheus text format (or what
// the scraper asks for). A collector that fails is reported in the
// answer, with what the others collected.
func (s *Server) Handler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
