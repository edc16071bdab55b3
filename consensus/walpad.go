package consensus

import "bytes"

// blankTail blanks tail, what the file holds past its last line, if a
// torn write left anything there but padding: a later write shorter
// than it must not be followed by its whole lines, which would then read
// as entries. Then the file is synced.
func (w *wal) blankTail(tail []byte) error {
	if !isBlank(tail) {
		if err := w.a.BlankTail(); err != nil {
			return err
		}
	}
	return w.a.Sync()
}

// start writes the header of a new file (or of one that holds no whole
// line) and blanks the rest of old, what the file held.
func (w *wal) start(old []byte) error {
	w.size.Store(0)
	header := w.line(nil, []byte(walHeader))
	if err := w.write(header); err != nil {
		return err
	}
	return w.blankTail(old[min(len(header), len(old)):])
}

func isBlank(b []byte) bool { return len(bytes.TrimLeft(b, "\n")) == 0 }

func firstLine(data []byte) []byte {
	line, _, _ := cutLine(data)
	return line
}
