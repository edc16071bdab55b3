/*
Package txlog is the coordinator's durable transaction log.

The coordinator runs presumed-abort two-phase commit with parallel commits.
It logs only what it cannot afford to forget, as records of the kinds
package protocol defines (and says the meaning of):

  - STAGED: the transaction, its participants and the keys it may write,
    written (durably) while the participants prepare. A STAGED transaction
    whose every participant holds a durable YES vote is committed, even
    before anything else is logged; that is what lets the client hear
    success after one round of fsyncs instead of two.
  - COMMIT: durable before any participant is told to commit (after that a
    participant may forget it ever held the transaction prepared).
  - ABORT: durable before anyone hears of an abort of a STAGED transaction.
  - END once every participant acknowledged the commit, or none had
    anything to write (queued, not waited for: losing an END only means
    commits are re-sent after a restart);
  - EPOCH at every start, so that transaction ids of different incarnations
    never collide.

Recovery uses the keys of every STAGED or COMMIT record it finishes: it
holds them locked, so that no new transaction reads or writes them
before the outcome is known everywhere.

A transaction with no record at all was aborted (presumed abort). On restart
the coordinator needs the highest epoch and every STAGED or COMMIT without
an outcome; Open returns exactly that in State.

# File format

The log is one UTF-8 text file, one record per line, readable with less and
grep:

	<crc> <kind> <fields...>\n

<crc> is 8 lowercase hex digits of the CRC-32C (Castagnoli) of the line's
body: the bytes after the first space up to, not including, the newline.
Fields are separated by exactly one space. The kinds are:

	format <n>
	    The records after it are in format n. This code writes format 4
	    and reads 1 to 4; a file starts with its format line. Format 1
	    (before multi-key transactions) had no format line and one key per
	    record; format 2 had no exclude records, format 3 no include,
	    join or remove. A greater n, or one
	    smaller than an earlier format line, is corruption: a file written
	    by a newer twopc is refused, never misread. For the same reason
	    Open rewrites a file of an older format in this one (by
	    compaction) before appending to it: an older twopc then stops at
	    the first line ("unknown kind format", or "written by a newer
	    twopc").

	epoch <n>
	    A coordinator incarnation started. n is a decimal uint64 without
	    leading zeros; every epoch record is greater than the one before it.

	staged <txid> <p1,p2,...> <key> [<key>...]
	    txid's prepares are out; its outcome is open. txid and the
	    participant names are non-empty, valid UTF-8, and contain no
	    whitespace or control characters; names contain no commas and the
	    list has at least one name. The keys are those the transaction
	    may write, at least one, sorted bytewise without repeats, each
	    written with strconv.Quote so that any key stays on one line.

	commit <txid> <p1,p2,...> <key> [<key>...]
	    The decision to commit txid was made. Fields as for staged.

	abort <txid>
	    The decision to abort txid was made.

	end <txid>
	    Every participant acknowledged the commit of txid (or was
	    excluded).

	exclude <participant>
	    The participant left the write set: transactions may commit
	    without its vote and finish without its acknowledgement. Written
	    durably before any transaction does so.

	include <participant>
	    The participant caught up and is back in the write set. Written
	    durably before any transaction needs its vote.

	join <participant> <url>
	    A participant was added, served at url (a non-empty word, like a
	    name but commas allowed). It starts excluded: it is in the write
	    set only after an include.

	remove <participant>
	    The participant was taken out for good: it is no longer a member,
	    and no transaction waits for it any more.

Examples (the CRCs are real):

	7cba0bd5 format 4
	a056e9c2 epoch 7
	afde8e07 staged 7.1523 p1,p2,p3 "user:42"
	6c6e28f5 commit 7.1523 p1,p2,p3 "user:42"
	130ce873 end 7.1523
	fb95b02c staged 7.1524 p1,p2,p3 "user:7"
	c9256d7a abort 7.1524
	c4909115 staged 7.1525 p1,p2,p3 "acct:alice" "acct:bob"
	c3697e60 exclude p3
	e08b6b64 include p3
	8a9bb149 join p4 http://10.0.0.4:7001/RPC2
	a88b4ea6 remove p2

The encoding is canonical: a line is accepted only if re-encoding the record
it holds gives back the very same bytes (no "007", no `raw` keys, no "\x41"
where "A" is meant). That keeps the checksum meaningful and lets a fuzz test
check parse and encode against each other.

# Replay

Records are applied in file order:

  - format: see above.
  - epoch: the epoch must exceed the previous one, or the file is corrupt.
  - staged, commit: txid becomes pending, at this position in log order. A
    commit for a txid pending as staged replaces the staged record and keeps
    its position. Any other staged or commit for a txid that is already
    pending is a duplicate and is ignored (the first record stays, with its
    fields and position).
  - abort, end: txid is no longer pending. One for a txid that is not
    pending (unknown, already ended, or compacted away) is ignored.
  - membership (exclude, include, join, remove): each participant's
    standing is that of the last record naming it, except that once
    removed, only a join brings it back (other records about it are
    ignored). Excluded participants are State.Excluded; joined ones,
    State.Joined (with their URL, excluded until an include); removed
    ones, State.Removed. Recovery leaves excluded and removed
    participants out of every pending transaction (protocol.Recover), so
    a commit naming a removed participant is not in doubt for its sake.
    Compaction writes, per participant by name, the fewest records that
    give the same standing: "remove p"; "join p url" (then "include p"
    if it caught up); or "exclude p". A participant of the flags that is
    in the write set needs none.

So the fate of a txid is decided by its last record: a commit after an end
makes it pending again. That errs on the safe side (a commit re-sent to a
participant is idempotent; a forgotten commit is lost data), and it gives
the same answer before and after compaction, which forgets ended txids.

# Torn tails and corruption

The writer pads the file past its last line with blank lines (see
Writing and durability). The padding begins at a blank line whose 512-byte
sector is blank from there on (PaddingAt): that is where the log's lines
end. Open and Scan read no further, and padding alone after it is no
damage. A blank line with anything else in its sector is damage, judged
by the rules below. (Damage that turns the last byte of a sector into a
newline just after another one cannot be told from the padding: the
lines after it would be cut as a torn tail, a copy kept.)

A crash in the middle of a write leaves a torn tail: a last line without its
newline, a last line whose checksum does not match, or a run of NUL bytes or
garbage where the file system extended the file but never stored the data.
Open tells it from corruption this way:

 1. Find the first line whose framing is bad: no terminating newline, not
    "<8 lowercase hex> ", or a checksum mismatch.
 2. If any later line has good framing, the damage is in the middle of the
    file: Open refuses with ErrCorrupt, naming the file and the byte offset of
    the bad line. A refused file is never modified. Lines after the
    padding do not count: a write over padding that a crash tore may
    have lost any of its sectors, which then read as padding, while
    later ones arrived; none of it was covered by an fsync (one writes
    every sector before it returns). A write that extended the file can
    still leave NUL bytes where a sector was lost, as an append always
    could: NUL bytes followed by good lines are refused.
 3. Otherwise it is a torn tail, as is anything but blank lines after
    the padding begins. Open copies the whole original file to
    <path>.torn-<unixnano> (and fsyncs it), truncates the log at the start of
    the bad line, fsyncs the file and the directory, and reports the cut in
    State.TornTail. The records before the cut are intact.

A line with good framing but bad content (unknown kind, malformed fields,
non-canonical encoding, an epoch that does not increase) was written whole by
someone: it is not a torn write but a bug or a newer format, so it is
ErrCorrupt wherever it appears, even at the end.

Scan applies the same rules read-only: it reports a torn tail with an empty
CopyPath instead of cutting it. ScanBytes does the same with a copy of the
file's content (the deploy reads the coordinator's log over SSH).

# Writing and durability

Append returns once the record is written and fsynced. A single writer
goroutine does all file I/O: it takes every record queued while the previous
batch was being written, writes them with one write and makes them durable
with one fsync (group commit), then wakes all their callers at once.
AppendAsync queues a record and returns; it is written with the next batch
and durable with the next fsync. A batch holding only AppendAsync records is
written without an fsync; the next Append, compaction or Close covers it.

The file is padded with blank lines, PadBytes at a time, and the writer
writes over them (Appender): an fsync after a write that leaves the
file's length and blocks alone costs about a third less on ext4. The
padding a write adds is made durable by that write's fsync, so that the
next write goes over durable padding. The file stays text, its lines
and then blank lines; Stats.Bytes and CompactBytes count the lines.

The log is fail-stop. Once a write, fsync, or compaction step fails, the log
is failed: every waiting and later call returns that error (wrapping
ErrFailed), and nothing more is written. A later fsync is never trusted to
cover an earlier failed one (after a failed fsync Linux may drop the dirty
pages and report the next fsync as clean), and no record is ever written
after a possibly partial one. The way out is to Close and Open again, which
re-reads what actually reached the file.

# Compaction

The log keeps its own set of live records: the latest epoch, every
exclusion, and every pending staged or commit record. Compaction writes the
format line, then them (exclusions sorted, transactions in log order) to
<path>.compact.tmp, fsyncs
it, renames it over the log, fsyncs the directory, and continues appending
to the new file. It runs inside the writer goroutine between batches, so a
record appended meanwhile is queued and lands in the new file. It runs
automatically after a batch when the file exceeds Options.CompactBytes and
the live records take less than a quarter of it, and on demand with Compact.
A <path>.compact.tmp found by Open is the remains of a compaction that crashed
before its rename; Open removes it (the log itself is still whole).

Only one Log may have a file open at a time: Open takes an flock on <path>.lock
and fails with ErrLocked while another process (or Log) holds it.
*/
package txlog
