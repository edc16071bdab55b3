package rpc

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	neturl "net/url"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kolo/xmlrpc"
)

// maxResponseBytes bounds what one reply may make the client read.
const maxResponseBytes = 64 << 20

// Client calls one XML-RPC endpoint. It is safe for concurrent use, and
// concurrent calls really are in flight together: kolo's own Client holds a
// lock across each round trip, so the project uses kolo only to encode.
type Client struct {
	url string
	hc  *http.Client
	lim Limits
	own bool // encode calls with EncodeCall instead of kolo (see OwnEncoder)
	// header is set on every request (WithHeader), for what belongs to
	// the whole client rather than to a call.
	header http.Header
	// post, if hc's transport ends in a StreamTransport through this
	// package's wrappers alone, and hc adds nothing of its own (timeout,
	// cookies, redirect policy), takes calls without
	// net/http's Client (see outgoing); postHeader is header with the
	// Content-Type, shared by every call, never changed.
	post       poster
	postHeader http.Header
	postURL    string // url as errors show it: without a password, as net/http's
}

// WithHeader returns a copy of c that sends the HTTP header name: value
// on every call. A header rather than a param, so that it covers every
// method, and every call of a batch, at the cost of a few bytes.
func (c *Client) WithHeader(name, value string) *Client {
	d := *c
	d.header = c.header.Clone()
	if d.header == nil {
		d.header = http.Header{}
	}
	d.header.Set(name, value)
	d.postHeader = withContentType(d.header)
	return &d
}

// withContentType is h with a call's Content-Type, in a map of its own.
func withContentType(h http.Header) http.Header {
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "text/xml; charset=utf-8")
	return h
}

// OwnEncoder returns a copy of c that encodes calls with this package's
// EncodeCall instead of kolo's reflection-based encoder, which profiles
// showed taking 17% of the coordinator's CPU on its calls to participants
// at 64 clients. EncodeCall is the encoder of every server response, and
// the codec tests check it against kolo's and Python's parsers.
func (c *Client) OwnEncoder() *Client {
	d := *c
	d.own = true
	return &d
}

// NewClient returns a client for url. A nil hc gets a client whose
// transport keeps many idle connections per host, so that a burst of
// concurrent calls to one participant reuses connections instead of
// opening (and leaving in TIME_WAIT) a new one per call. Neither has a
// timeout: each call's ctx is its deadline.
func NewClient(url string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Transport: defaultTransport()}
	}
	lim := DefaultLimits()
	lim.MaxBodyBytes = maxResponseBytes
	// A multicall reply holds each result two levels deeper than a plain
	// reply would; leave room for that.
	lim.MaxDepth *= 2
	c := &Client{url: url, hc: hc, lim: lim, postHeader: withContentType(nil)}
	if posts(hc.Transport) && hc.Timeout == 0 && hc.Jar == nil && hc.CheckRedirect == nil {
		c.post, c.postURL = hc.Transport.(poster), url
		if u, err := neturl.Parse(url); err == nil {
			c.postURL = u.Redacted()
		}
	}
	return c
}

// defaultTransport keeps many idle connections per host. Calls go to the
// named host, never through an HTTP proxy from the environment: these are
// calls inside one cluster, and a proxy would see its tokens.
func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return t
}

// Call calls method with args and returns the decoded result (types as in
// doc.go: a base64 comes back as []byte, a string as string). A fault reply
// is returned as a *Fault; a transport problem, a non-200 status or a
// malformed reply as another error. ctx bounds the whole call.
func (c *Client) Call(ctx context.Context, method string, args ...any) (any, error) {
	v, _, err := c.call(ctx, nil, method, args)
	return v, err
}

// CallReading is Call for a caller that reads the reply's value itself,
// with read, which says whether it read the value whole. If it did, the
// call returns true, and no value. If it did not (a value of a shape it
// does not expect, XML beyond the fast path, a fault), the reply is
// decoded again, and returned as Call returns it; whatever read kept of
// it is the caller's to drop. read is not called for a call that fails
// before a reply is read.
func (c *Client) CallReading(ctx context.Context, read func(*ValueReader) bool, method string, args ...any) (any, bool, error) {
	return c.call(ctx, read, method, args)
}

func (c *Client) call(ctx context.Context, read func(*ValueReader) bool, method string, args []any) (any, bool, error) {
	body, err := c.encode(method, args)
	if err != nil {
		return nil, false, err
	}
	resp, err := c.send(ctx, body)
	if err != nil {
		return nil, false, fmt.Errorf("rpc: call %s: %w", method, err)
	}
	defer func() {
		// Drain what is left (bounded) so that the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return nil, false, fmt.Errorf("rpc: call %s to %s: HTTP %s%s", method, c.url, resp.Status, explanation(resp))
	}
	v, done, err := decodeResponseReading(resp.Body, c.lim, read)
	if f, ok := asFault(err); ok {
		return nil, false, f
	}
	if err != nil {
		return nil, false, fmt.Errorf("rpc: call %s to %s: %w", method, c.url, err)
	}
	return v, done, nil
}

// send posts body, through c.post if it can (see outgoing), and closes it.
func (c *Client) send(ctx context.Context, body *callBody) (*http.Response, error) {
	if c.post != nil {
		defer body.Close() // the transport copies what it keeps
		resp, err := c.post.post(&outgoing{ctx: ctx, url: c.url, header: c.postHeader, body: body.all})
		if err != nil {
			return nil, &neturl.Error{Op: "Post", URL: c.postURL, Err: err} // as net/http's Client says it
		}
		return resp, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, body)
	if err != nil {
		body.Close()
		return nil, err
	}
	req.ContentLength = int64(body.Len())
	for name, values := range c.header {
		req.Header[name] = values
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	return c.hc.Do(req)
}

// encode builds the methodCall document of a call.
func (c *Client) encode(method string, args []any) (*callBody, error) {
	if f := checkMethodName(method); f != nil {
		return nil, fmt.Errorf("rpc: call %s: %s", excerpt(method), f.Message)
	}
	if c.own {
		body, err := encodeCallBody(method, args)
		if err != nil {
			return nil, fmt.Errorf("rpc: call %s: %w", method, err)
		}
		return body, nil
	}
	kargs := make([]any, len(args))
	for i, a := range args {
		ka, err := toKolo(a, 0)
		if err != nil {
			return nil, fmt.Errorf("rpc: call %s: param %d: %w", method, i+1, err)
		}
		kargs[i] = ka
	}
	body, err := xmlrpc.EncodeMethodCall(method, kargs...)
	if err != nil {
		return nil, fmt.Errorf("rpc: call %s: %w", method, err)
	}
	return newCallBody(body, nil), nil
}

// toKolo rewrites an argument into values kolo encodes correctly, copying
// (never changing) the caller's maps and slices. It works around kolo's
// encoder: []byte would go out as an array of ints, xmlrpc.Base64 is sent
// as given (so it must be encoded here), map keys are not escaped, times
// lose their zone, out-of-range ints go out as <int>, NaN as "NaN", nil
// cannot be sent, and strings XML cannot carry are silently mangled. Each
// of those is either fixed here or refused with an error.
func toKolo(v any, depth int) (any, error) {
	if depth > maxEncodeDepth {
		return nil, fmt.Errorf("values nested deeper than %d levels (a value that contains itself?)", maxEncodeDepth)
	}
	switch v := v.(type) {
	case nil:
		return nil, fmt.Errorf("cannot send nil: kolo/xmlrpc has no <nil/>")
	case xmlrpc.Base64:
		return v, nil // already encoded by the caller
	case Raw:
		return nil, errors.New("cannot send a ValueWriter's Raw through kolo's encoder: use OwnEncoder")
	case []byte:
		return xmlrpc.Base64(base64.StdEncoding.EncodeToString(v)), nil
	case time.Time:
		if err := checkYear(v); err != nil {
			return nil, err
		}
		return v.UTC(), nil // kolo writes the wall clock without its zone
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, fmt.Errorf("cannot send a nil %s: kolo/xmlrpc has no <nil/>", rv.Type())
		}
		return toKolo(rv.Elem().Interface(), depth+1)
	case reflect.String:
		if err := checkText(rv.String()); err != nil {
			return nil, err
		}
		return rv.String(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	// kolo writes every integer as <int>, which is 32-bit: refuse the
	// others rather than have the server refuse them.
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n := rv.Int(); n >= math.MinInt32 && n <= math.MaxInt32 {
			return n, nil
		}
		return nil, errKoloInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if n := rv.Uint(); n <= math.MaxInt32 {
			return int64(n), nil
		}
		return nil, errKoloInt
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("cannot send %v: XML-RPC doubles are finite", f)
		}
		return f, nil
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return xmlrpc.Base64(base64.StdEncoding.EncodeToString(rv.Bytes())), nil
		}
		fallthrough
	case reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			x, err := toKolo(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out[i] = x
		}
		return out, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("cannot send %s: struct member names must be strings", rv.Type())
		}
		out := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			k := it.Key().String()
			if err := checkKoloName(k); err != nil {
				return nil, err
			}
			x, err := toKolo(it.Value().Interface(), depth+1)
			if err != nil {
				return nil, fmt.Errorf("member %s: %w", excerpt(k), err)
			}
			out[k] = x
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot send %T: use map[string]any for a struct", v)
}

var errKoloInt = errors.New("integer outside the 32-bit range of <int>: kolo/xmlrpc cannot send <i8>")

// checkKoloName refuses a struct member name that kolo would write
// unescaped into broken or different XML.
func checkKoloName(k string) error {
	if err := checkText(k); err != nil {
		return fmt.Errorf("member name: %w", err)
	}
	if strings.ContainsAny(k, "<>&\r") {
		return fmt.Errorf("member name %s: kolo/xmlrpc cannot send < > & or CR in a name", excerpt(k))
	}
	return nil
}

// explanation is the first line of a plain-text error body, which says
// what went wrong (e.g. "use https://..."), prefixed for an error
// message; "" if there is none.
func explanation(resp *http.Response) string {
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	line, _, _ := strings.Cut(string(b), "\n")
	if line = strings.TrimSpace(line); line == "" || !utf8.ValidString(line) {
		return ""
	}
	return ": " + line
}
