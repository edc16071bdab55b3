package replicated

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/twopc/twopc/consensus"
	"github.com/twopc/twopc/internal/rpc"
)

// serverFollowing is a Server that follows a leader served at leaderURL,
// without raft: only the forwarding is under test.
func serverFollowing(t *testing.T, leaderURL string) *Server {
	s := &Server{cfg: Config{Forward: http.DefaultTransport}, log: slog.Default()}
	c := newCurrent(consensus.Role{Leader: "c2", Term: 3})
	if leaderURL != "" {
		u, err := url.Parse(leaderURL)
		if err != nil {
			t.Fatal(err)
		}
		c.proxy = s.newProxy(u)
	}
	s.cur.Store(c)
	return s
}

func callThrough(t *testing.T, h http.Handler) error {
	t.Helper()
	front := httptest.NewServer(h)
	defer front.Close()
	_, err := rpc.NewClient(front.URL+"/RPC2", nil).Call(context.Background(), "put", "k", "v")
	return err
}

func faultCode(err error) int {
	var f *rpc.Fault
	if errors.As(err, &f) {
		return f.Code
	}
	return 0
}

// Forwarded requests reach the leader, whose answer comes back as is.
func TestForwardsToTheLeader(t *testing.T) {
	var got []byte
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		got = b.Bytes()
		w.Header().Set("Content-Type", "text/xml")
		rpc.EncodeFault(w, &rpc.Fault{Code: 2, Message: "from the leader"})
	}))
	defer leader.Close()
	if err := callThrough(t, serverFollowing(t, leader.URL+"/RPC2")); faultCode(err) != 2 || !bytes.Contains(got, []byte("<methodName>put</methodName>")) {
		t.Fatalf("forwarded: %v; the leader got %q", err, got)
	}
}

// No leader known: fault 3, nothing done. A leader that cannot be
// reached: fault 3 too (the request never left).
func TestNoLeaderIsUnavailable(t *testing.T) {
	if err := callThrough(t, serverFollowing(t, "")); faultCode(err) != rpc.Unavailable {
		t.Fatalf("no leader: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/RPC2"
	ln.Close()
	if err := callThrough(t, serverFollowing(t, dead)); faultCode(err) != rpc.Unavailable {
		t.Fatalf("leader down: %v", err)
	}
}

// A request forwarded to a leader that stops answering (paused, cut
// off) ends when the role changes, with fault 6: the leader may have
// got it. Without that, the client would wait as long as the leader
// stays paused.
func TestForwardedRequestEndsWithTheRole(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release // a paused leader
	}))
	defer leader.Close()
	defer close(release) // before Close, which waits for the handler
	s := serverFollowing(t, leader.URL+"/RPC2")
	done := make(chan error, 1)
	go func() { done <- callThrough(t, s) }()
	<-arrived
	s.cur.Load().end() // what changeRole does when the next leader is known
	if err := <-done; faultCode(err) != rpc.OutcomeUnknown {
		t.Fatalf("after the role changed: %v", err)
	}
}
