package httpserve

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"time"
)

// responseWriter is the http.ResponseWriter of a request served here. A
// reply with a Content-Length goes out as the handler writes it; another
// is kept until the handler returns, then sent with its length.
type responseWriter struct {
	srv        *Server     // nil for a refusal before the request was read
	body       *bodyReader // nil for such a refusal too
	conn       net.Conn
	br         *bufio.Reader
	bw         *bufio.Writer
	header     http.Header // made on first use (Header)
	typ        string      // Content-Type of a WriteWhole reply, outside header
	status     int
	length     int64 // declared by the handler; -1: none
	sent       int64 // of the body, once started
	started    bool  // the head is written
	over       bool  // the handler wrote more than it declared
	buf        []byte
	closeAfter bool // the connection ends after this reply
	hijacked   bool
}

func (w *responseWriter) Header() http.Header {
	if w.header == nil {
		w.header = http.Header{}
	}
	return w.header
}

// WriteWhole sends a 200 reply whose body is body, of contentType: what
// setting those headers, WriteHeader and Write send, without the header
// map (XML-RPC replies, one per client call: the map, its values and the
// length's text were about five allocations a call). With any header
// already set, or a status written, it does just that.
func (w *responseWriter) WriteWhole(contentType string, body []byte) {
	if len(w.header) > 0 || w.status != 0 || w.hijacked {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
		return
	}
	w.typ = contentType
	w.status, w.length = http.StatusOK, int64(len(body))
	w.start(w.length)
	_, _ = w.Write(body)
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status != 0 || w.hijacked || code < 200 {
		return // as net/http, a second status is ignored; 1xx are not sent
	}
	w.status, w.length = code, -1
	if w.header.Get("Connection") == "close" {
		w.closeAfter = true
	}
	if !bodyAllowed(code) {
		w.start(0)
		return
	}
	if n, err := strconv.ParseInt(w.header.Get("Content-Length"), 10, 64); err == nil && n >= 0 {
		w.length = n
		w.start(n)
	}
}

// start writes the head of a reply whose body has size bytes.
func (w *responseWriter) start(size int64) {
	w.started = true
	if w.srv != nil && w.srv.closed() {
		w.closeAfter = true // shutting down: this reply is the last
	}
	if !w.closeAfter && w.body != nil && !w.body.settle() {
		w.closeAfter = true
	}
	h := w.header
	h.Del("Content-Length")
	h.Del("Connection")
	h.Del("Transfer-Encoding")
	b := w.bw.AvailableBuffer()
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.status)...)
	b = append(b, "\r\nDate: "...)
	b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
	if bodyAllowed(w.status) {
		b = append(b, "\r\nContent-Length: "...)
		b = strconv.AppendInt(b, size, 10)
	}
	if w.closeAfter {
		b = append(b, "\r\nConnection: close"...)
	}
	if w.typ != "" {
		b = append(b, "\r\nContent-Type: "...)
		b = append(b, w.typ...)
	}
	b = append(b, "\r\n"...)
	_, _ = w.bw.Write(b)
	_ = h.Write(w.bw) // a failed write: the client is gone, finish says so
	_, _ = w.bw.WriteString("\r\n")
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	w.WriteHeader(http.StatusOK)
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.length < 0 {
		w.buf = append(w.buf, b...)
		return len(b), nil
	}
	if left := w.length - w.sent; int64(len(b)) > left {
		b, w.over = b[:left], true
	}
	n, err := w.bw.Write(b)
	w.sent += int64(n)
	if err == nil && w.over {
		err = http.ErrContentLength
	}
	return n, err
}

// finish sends what is left of the reply; false if the connection cannot
// carry another (the reply was not the length it declared, or the write
// failed).
func (w *responseWriter) finish() bool {
	w.WriteHeader(http.StatusOK)
	if !w.started {
		w.start(int64(len(w.buf)))
		_, _ = w.bw.Write(w.buf)
		w.sent, w.length = int64(len(w.buf)), int64(len(w.buf))
	}
	err := w.bw.Flush()
	return err == nil && !w.over && (!bodyAllowed(w.status) || w.sent == w.length)
}

// refuse answers with code and a one-line text, and ends the connection.
func (w *responseWriter) refuse(code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.closeAfter = true
	w.WriteHeader(code)
	_, _ = w.Write([]byte(text + "\n"))
	w.finish()
}

// Hijack hands the connection to the handler, as net/http's does.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.started {
		if err := w.bw.Flush(); err != nil {
			return nil, nil, err
		}
	}
	w.hijacked = true
	_ = w.conn.SetDeadline(time.Time{}) // the request's are not the new owner's
	return w.conn, bufio.NewReadWriter(w.br, w.bw), nil
}

func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}
