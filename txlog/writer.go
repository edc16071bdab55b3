package txlog

import "time"

// run is the writer goroutine. Each turn it takes everything queued (the
// records that arrived while the previous batch was on its way to disk),
// writes it with one write, fsyncs once if anyone waits for durability,
// wakes those callers, and then compacts if asked to or if the file is due.
// Compaction therefore always sits between two batches and never races an
// append.
func (l *Log) run() {
	defer close(l.done)
	for {
		<-l.wake
		l.linger()
		l.mu.Lock()
		b := l.cur
		l.cur = newBatch(l.spare)
		calls := l.compactCalls
		l.compactCalls = nil
		closing := l.closed
		l.mu.Unlock()

		err := l.flush(b, closing)
		b.err = err
		close(b.done)
		b.tell(err)
		l.spare = b

		if err == nil && (len(calls) > 0 || (!closing && l.dueForCompaction())) {
			err = l.compact()
		}
		for _, c := range calls {
			c <- err
		}
		if err != nil {
			l.fail(err)
			return
		}
		if closing {
			// Nothing was queued after closed was set: b was the last batch.
			return
		}
	}
}

// linger lets a batch whose only waiters are lazy wait, up to
// Options.Linger, for a record that wants its fsync now. A record that
// wants none (AppendAsync's) joins the batch without ending the wait:
// under serial load an END comes just after each COMMIT, and ending the
// wait on it gave almost every COMMIT an fsync of its own. Flush,
// Compact and Close end it.
func (l *Log) linger() {
	var t *time.Timer
	for l.lingers() {
		if t == nil {
			t = time.NewTimer(l.opts.Linger)
			defer t.Stop()
		}
		_ = l.failpoint("linger")
		select {
		case <-l.wake:
		case <-t.C:
			return
		}
	}
}

// lingers: the batch has lazy waiters only, and nothing asks for it now.
func (l *Log) lingers() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur.lazy && !l.cur.sync && !l.closed && len(l.compactCalls) == 0
}

// flush writes b and fsyncs if a caller waits for it or force is set.
func (l *Log) flush(b *batch, force bool) error {
	if len(b.buf) > 0 {
		for _, q := range b.recs {
			if err := l.live.apply(q.rec, q.len); err != nil {
				// enqueue checked the epoch order; this is a bug in txlog.
				panic("txlog: " + err.Error())
			}
		}
		if err := l.failpoint("write"); err != nil {
			return failed(l.path, "write", err)
		}
		n, err := l.f.Write(b.buf)
		l.size.Add(int64(n))
		l.unsynced = true
		if err != nil {
			return failed(l.path, "write", err)
		}
		l.batches.Add(1)
		l.records.Add(uint64(len(b.recs)))
	}
	if (b.sync || b.lazy || force) && l.unsynced {
		if err := l.failpoint("sync"); err != nil {
			return failed(l.path, "fsync", err)
		}
		start := time.Now()
		if err := l.f.Sync(); err != nil {
			return failed(l.path, "fsync", err)
		}
		if l.opts.ObserveFsync != nil {
			l.opts.ObserveFsync(time.Since(start))
		}
		l.fsyncs.Add(1)
		l.unsynced = false
	}
	return nil
}

// fail makes the log fail-stop with err: it fails everything still queued
// and, by setting l.err, everything that comes later.
func (l *Log) fail(err error) {
	l.mu.Lock()
	l.err = err
	b := l.cur
	calls := l.compactCalls
	l.compactCalls = nil
	l.mu.Unlock()

	b.err = err
	close(b.done)
	b.tell(err)
	for _, c := range calls {
		c <- err
	}
}

func (l *Log) failpoint(point string) error {
	if l.opts.failpoint == nil {
		return nil
	}
	return l.opts.failpoint(point)
}
