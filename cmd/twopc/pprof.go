package main

import (
	"flag"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"runtime"
)

func pprofFlag(fs *flag.FlagSet) *string {
	return fs.String("pprof", "", "serve Go profiles (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; off when empty. Keep it on loopback")
}

// servePprof serves profiles on their own listener, never on the public
// XML-RPC one, and only when asked for.
func servePprof(log *slog.Logger, addr string) {
	if addr == "" {
		return
	}
	runtime.SetBlockProfileRate(10000) // one sample per 10µs blocked
	runtime.SetMutexProfileFraction(100)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		log.Info("serving profiles", "url", "http://"+addr+"/debug/pprof/")
		if err := http.ListenAndServe(addr, mux); err != nil {
			log.Error("pprof listener failed", "err", err)
		}
	}()
}
