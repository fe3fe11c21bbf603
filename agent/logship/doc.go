// Package logship is the agent-side durable buffer for instance logs.
//
// The agent captures each instance's stdout/stderr (Buffer.Writer) and
// router access lines (Buffer.Append) into a bounded, append-only,
// segmented log on local disk. A shipper (wired by the agent to a QUIC
// stream; this package knows nothing of QUIC or the hub) reads lines with
// Read/ReadWait, sends them, and calls Ack when the hub acknowledges them.
// After a reconnect it calls Rewind to resend everything not acknowledged.
// After an agent restart, Open recovers the log and shipping resumes from
// the last acknowledged seq: no gaps and no duplicates, except as listed
// under "Durability". The hub drops duplicates by (instance, seq).
//
// # Sequence numbers
//
// Each instance has its own seq, starting at 1 and increasing by one per
// stored record, assigned under the buffer's lock in append order. Seqs are
// never reused: on Open the next seq of an instance is one past the highest
// of (the last complete record on disk, the acked seq, the highest dropped
// seq), the latter two from the state file.
//
// # Long lines
//
// A line longer than Config.MaxLineBytes is stored as several records, each
// with at most MaxLineBytes bytes of Text. Every piece but the last has
// Partial set; the last has Partial false. A cut is moved back by up to 3
// bytes so it does not split a UTF-8 encoded rune (it falls at exactly
// MaxLineBytes when no rune start lies there, e.g. for binary output).
// Pieces of one line share Instance and Stream and have increasing seqs;
// they are consecutive seqs for Append, but a Writer emits full pieces of an
// unterminated line as soon as they are complete (to bound memory), so
// records of another stream of the same instance may come in between. To
// reassemble, concatenate the records of one (instance, stream) up to and
// including the first with Partial false. Writer splits on "\n" and removes
// one "\r" right before it; Append never splits on newlines.
//
// # On-disk format
//
// The framing, the field codec, segment files and state files are
// internal/seglog's (its doc.go has the common format); this buffer's own
// parts follow. Config.Dir holds segment files named <16 hex digit
// id>.seg, a state file "state" and transiently a temporary "state.tmp…"
// while that is replaced. All integers are little endian; uvarint/varint
// are encoding/binary's, in their shortest encoding.
//
// A segment starts with the 8-byte magic "WLOGSEG1", followed by records:
//
//	uint32 payload length (2 .. 16 MiB)
//	uint32 CRC32C (Castagnoli) of the 4 length bytes followed by the payload
//	payload:
//	  byte     kind = 1 (line)
//	  byte     flags (bit 0: Partial; other bits must be 0)
//	  uvarint  seq (> 0)
//	  varint   time, Unix nanoseconds
//	  uvarint  len, instance bytes (1 .. 1024)
//	  uvarint  len, stream bytes (0 .. 1024)
//	  uvarint  len, text bytes
//
// The payload must be consumed exactly. Covering the length by the CRC
// means a zero-filled or garbage tail never decodes as a record. Records of
// one segment hold, per instance, one contiguous range of seqs. The active
// (newest) segment is rotated when the next record would pass
// Config.SegmentBytes; a finished segment is fsynced before it is closed.
//
// The state file holds, per instance, the acked seq, the highest seq ever
// dropped and the drops not yet taken by TakeDropped:
//
//	"WLOGSTA2", uvarint count,
//	count × (uvarint len, name, uvarint acked, uvarint dropHigh,
//	         uvarint dropCount, uvarint dropFirst, uvarint dropLast,
//	         uvarint streams, streams × (uvarint len, stream, varint ns)),
//	uint32 CRC32C of all preceding bytes
//
// It is replaced atomically (internal/atomicfile: a temporary file, fsync,
// rename, fsync of the directory) before a segment is dropped or deleted, by the sync loop when
// acks advanced since the last write, on TakeDropped, AckDropped and on
// Close. It also keeps, per instance and stream, the time of the newest
// line stored (see Last). The previous format, "WLOGSTA1" without those
// times, is still read. It only grows with the number of
// instances (about 30 bytes each); nothing prunes it yet.
//
// # Recovery
//
// Open reads every segment in id order and stops at the first record that
// is short, has a bad length, a bad CRC, an undecodable payload or a seq
// not above the previous one of its instance; the file is truncated there
// (and fsynced), so a torn tail is dropped and never misread. A segment
// shorter than its magic and a prefix of it (torn creation) is deleted;
// any other with a foreign magic is renamed to *.corrupt and skipped.
// Temporary state files left by a crash are removed. A corrupt state file is logged
// and ignored: acked lines still on disk are then resent (never lost), and
// seqs still continue after the last record on disk. Fully acked segments
// are deleted; the read cursor starts at the oldest segment and Read skips
// acked records. Corruption in the middle of an old segment (bit rot) also
// truncates there: later records of that segment are lost, without a drop
// report.
//
// # Bound and drops
//
// When an append would push the total size of all segments past
// Config.MaxBytes, the oldest segment is deleted even if not acked (the
// active one is rotated first when it is the only one). Its unacked lines
// are added, per instance, to DropInfo (count, first and last seq) and
// logged; Dropped/TakeDropped report them, and the report survives
// restarts until taken. A dropped line may already have been sent but not
// yet acked, so DropInfo may over-count lines the hub did receive. The
// SegmentBytes is clamped to MaxBytes/4, so a drop frees about a quarter
// of the buffer at most. Only a single record larger than MaxBytes can
// exceed the bound.
//
// # Durability
//
// Append and Writer.Write write the records with one write(2) per batch
// before returning; Read sees only complete records.
//
//   - Process crash / kill -9: nothing lost. Every line Append (or
//     Writer.Write) returned nil for is in the kernel page cache and is
//     recovered; a write cut short by the kill is a torn tail that Open
//     removes (that line's Append had not returned).
//   - Power loss / kernel crash, SyncInterval (the default, 200 ms): lines
//     appended in the last unsynced interval (up to Interval plus one
//     fsync's duration) may be lost. If such lines had already been sent,
//     their seqs are reassigned to new lines after the restart, and the hub
//     drops those as duplicates: the new lines are then lost too.
//   - Power loss, SyncEveryAppend: nothing Append returned nil for is lost;
//     each batch costs an fsync.
//   - Acks are persisted (state file, fsynced) by the background sync
//     within SyncInterval, and at once when they make a segment deletable
//     (and always at once with SyncEveryAppend). A restarted agent may
//     resend lines acked within the last interval before a crash, and
//     lines sent but not acked at a crash, a reconnect (Rewind) or a
//     corrupt state file; the hub drops them by (instance, seq).
//   - Segment deletions are made durable by the next state write; a
//     deletion lost to power loss brings back a fully acked segment, whose
//     lines Read skips, or a dropped one, whose lines are then resent.
//
// A failed write is cut off again with ftruncate; if that also fails the
// buffer refuses further appends (sticky error) rather than leave garbage
// between records.
package logship
