package participant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/twopc/twopc/protocol"
)

// Fencing (see protocol.WithTerm): a request carries its coordinator's
// term in its context. The store keeps the highest term it has seen in
// meta, and in term once that is durable. A request of a lower term is
// refused whole; one of a higher term raises it, durably, before anything
// it causes is answered: a write in its own batch's SQLite transaction
// (the writer checks and raises, in the order it applies requests, so no
// write of a lower term can follow the raise); a read-only request by a
// term-only write of its own, before it reads.
//
// Outside the writer, terms are compared with the durable one only: a
// raise not yet committed, which a crash would undo, must not count as
// seen. A read of that very term finds it above the durable one, so it
// waits, through the writer, for the raise to be durable.

const metaTerm = "term"

// reloadTerm reads the highest term seen from meta (0: none yet).
func (s *Store) reloadTerm() error {
	var v string
	err := s.wdb.QueryRow(`SELECT value FROM meta WHERE name = ?`, metaTerm).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reload term: %w", err)
	}
	t, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return fmt.Errorf("meta term %q: %w", v, err)
	}
	s.term.Store(t)
	return nil
}

// admitTerm returns the term ctx carries (0: none), or the refusal of a
// stale one, counted as that many refused calls.
func (s *Store) admitTerm(ctx context.Context, calls int) (uint64, error) {
	term := protocol.TermOf(ctx)
	if seen := s.term.Load(); fenceTerms && term != 0 && term < seen {
		return 0, s.refuseTerm(term, seen, calls)
	}
	return term, nil
}

// fenceRead admits a read-only request: refused if its term is stale,
// and if it is higher than any seen, not answered before that is durable.
func (s *Store) fenceRead(ctx context.Context) error {
	term, err := s.admitTerm(ctx, 1)
	if err != nil || term <= s.term.Load() {
		return err
	}
	return s.submitOne(ctx, &request{term: term, termOnly: true})
}

// fenceWrite runs on the writer goroutine, in the batch's transaction,
// for request r; term is the highest seen so far, this batch included.
// It refuses r (setting r.err) if its term is lower, and records a
// higher one in meta. It reports whether r may go on.
func (s *Store) fenceWrite(tx *wtx, r *request, term *uint64) (bool, error) {
	switch {
	case r.term == 0 || r.term == *term:
		return true, nil
	case r.term < *term && fenceTerms:
		r.err = s.refuseTerm(r.term, *term, 1)
		return false, nil
	case r.term < *term:
		return true, nil
	}
	if err := tx.exec(stSetMeta, metaTerm, strconv.FormatUint(r.term, 10)); err != nil {
		return false, err
	}
	*term = r.term
	return true, nil
}

// refuseTerm counts and logs a refusal (the server's logger is rate
// limited) and returns its error. Each one means a coordinator that has
// been replaced is still calling: an operator should know.
func (s *Store) refuseTerm(sent, seen uint64, calls int) error {
	s.stats.staleTerm.Add(uint64(calls))
	s.log.Warn("participant: refused a request of a stale term: a replaced coordinator is still calling",
		"db", s.path, "term", sent, "seen", seen)
	return &protocol.StaleTermError{Seen: seen, Sent: sent}
}
