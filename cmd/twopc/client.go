package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/coordinator"
	"github.com/twopc/twopc/internal/rpc"
)

// faultNames are the documented application fault codes, for messages.
var faultNames = map[int]string{
	rpc.NotFound: "not found", rpc.Conflict: "conflict", rpc.Unavailable: "unavailable",
	rpc.TooLarge: "too large", rpc.NotAuthorised: "not authorised",
}

// clientOpts are the flags every client command takes.
type clientOpts struct {
	addr             string
	timeout          time.Duration
	tokenFile, tlsCA string
	// peer: present the peer token (from peerTokenFile) instead of the
	// client token (the members commands).
	peer          bool
	peerTokenFile string
	// direct: calls on connections of their own goroutine
	// (directTransport), for the load generator.
	direct bool
}

func clientFlags(name, args, summary string) (*flag.FlagSet, *clientOpts) {
	fs := newFlags(name, args, summary)
	o := &clientOpts{}
	fs.StringVar(&o.addr, "addr", "http://"+defaultCoordinator+"/RPC2", "coordinator URL")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "give up on a call after this long")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the coordinator's client token (or set "+envClientToken+")")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "CA certificates (PEM file) the coordinator's HTTPS certificate must chain to")
	return fs, o
}

// client returns an XML-RPC client of the coordinator.
func (o *clientOpts) client() (*rpc.Client, error) {
	c, _, err := o.meteredClient()
	return c, err
}

// meteredClient is client, plus a count of the bytes it exchanges.
func (o *clientOpts) meteredClient() (*rpc.Client, *rpc.Traffic, error) {
	file, env := o.tokenFile, envClientToken
	if o.peer {
		file, env = o.peerTokenFile, envPeerToken
	}
	token, err := loadSecret(file, env)
	if err != nil {
		return nil, nil, err
	}
	sec := &security{tlsCA: o.tlsCA}
	var hc *http.Client
	if o.direct {
		tc, err := sec.clientTLS()
		if err != nil {
			return nil, nil, err
		}
		hc = rpc.WithToken(&http.Client{Transport: &directTransport{tls: tc}}, token)
	} else if hc, err = sec.httpClient(token); err != nil {
		return nil, nil, err
	}
	hc, t := rpc.Metered(hc)
	return rpc.NewClient(o.addr, hc), t, nil
}

func (o *clientOpts) call(method string, args ...any) (any, error) {
	c, err := o.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	res, err := c.Call(ctx, method, args...)
	var f *rpc.Fault
	if errors.As(err, &f) {
		if name, ok := faultNames[f.Code]; ok {
			return nil, fmt.Errorf("fault %d (%s): %s", f.Code, name, f.Message)
		}
		return nil, fmt.Errorf("fault %d: %s", f.Code, f.Message)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.addr, err)
	}
	return res, nil
}

func runPut(args []string) error {
	fs, o := clientFlags("put", "[flags] KEY VALUE", "Store VALUE under KEY on every participant, atomically")
	binary := fs.Bool("base64", false, "VALUE is base64: store the decoded bytes as a binary value")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errors.New("want KEY VALUE")
	}
	var value any = fs.Arg(1)
	if *binary {
		b, err := base64.StdEncoding.DecodeString(fs.Arg(1))
		if err != nil {
			return fmt.Errorf("VALUE is not base64: %w", err)
		}
		value = b
	}
	_, err := o.call("put", fs.Arg(0), value)
	return err
}

func runGet(args []string) error {
	fs, o := clientFlags("get", "[flags] KEY", "Print the value of KEY (a binary value is written as raw bytes)")
	asBase64 := fs.Bool("base64", false, "print a binary value as base64")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("want KEY")
	}
	res, err := o.call("get", fs.Arg(0))
	if err != nil {
		return err
	}
	switch v := res.(type) {
	case string:
		fmt.Println(v)
	case []byte:
		if *asBase64 {
			fmt.Println(base64.StdEncoding.EncodeToString(v))
		} else {
			os.Stdout.Write(v)
		}
	default:
		return fmt.Errorf("unexpected reply %T", res)
	}
	return nil
}

func runDelete(args []string) error {
	fs, o := clientFlags("delete", "[flags] KEY", "Delete KEY on every participant, atomically; prints whether it existed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("want KEY")
	}
	res, err := o.call("delete", fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Println(res)
	return nil
}

func runStatus(args []string) error {
	fs, o := clientFlags("status", "[flags]", "Show the coordinator's view of the participants and of its transactions")
	if err := fs.Parse(args); err != nil {
		return err
	}
	res, err := o.call("status")
	if err != nil {
		return err
	}
	st, err := api.DecodeStatus(res)
	if err != nil {
		return err
	}
	printStatus(os.Stdout, st)
	return nil
}

// printStatus shows a status as a table of participants and a line of
// counters. Counters count since the coordinator last started.
func printStatus(out io.Writer, st coordinator.Status) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PARTICIPANT\tSTATE\tIN FLIGHT\tPREPARED\tURL")
	for _, p := range st.Participants {
		prepared := strconv.Itoa(p.Prepared)
		if p.State == coordinator.StateOffline {
			prepared = "?"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", p.Name, p.State, p.InFlight, prepared, p.URL)
	}
	w.Flush()
	fmt.Fprintf(out, "\nsince start (epoch %d): committed=%d aborted=%d in_doubt=%d active=%d cache_hits=%d cache_misses=%d\n",
		st.Epoch, st.Committed, st.Aborted, st.InDoubt, st.Active, st.CacheHits, st.CacheMisses)
	if l := st.Log; l != nil {
		fmt.Fprintf(out, "log: fsyncs=%d records=%d bytes=%d compactions=%d\n", l.Fsyncs, l.Records, l.Bytes, l.Compactions)
	}
}
