// Package seglog is the segmented record log under the agent's log buffer
// (agent/logship) and the hub's log store (hub/logstore): the framing of
// records, the field codec of their payloads and of state files, segment
// files and their names, torn-tail recovery, and state files. Each log
// keeps its own policy (what a record means, when to rotate, what to
// delete) and its own magics; this package owns the bytes they share.
//
// # On-disk format
//
// All integers are little endian; uvarint and varint are encoding/binary's
// and must be in their shortest encoding (a longer one is corrupt, so
// every decoded record re-encodes to the same bytes).
//
// A segment file is named by 16 lower-case hex digits of its id and
// ".seg" (FileName, SegmentPath); side files of a segment share its id
// with another suffix. A segment starts with a header of the log's own
// (always beginning with an 8-byte magic), followed by frames:
//
//	uint32 payload length (1 .. the log's maximum)
//	uint32 CRC32C (Castagnoli) of the 4 length bytes followed by the payload
//	payload
//
// Covering the length by the CRC means a zero-filled or garbage tail never
// decodes as a frame. Segments are only appended to, truncated back to a
// frame boundary, or deleted whole.
//
// Both logs store line records (LineFormat), whose payload is:
//
//	byte     kind = 1 (line)
//	byte     flags (bits the log defines; others must be 0)
//	uvarint  pos (> 0; only in logs whose format has positions)
//	uvarint  seq (> 0)
//	varint   time, Unix nanoseconds
//	uvarint  len, instance bytes (1 .. the log's name bound)
//	uvarint  len, stream bytes (0 .. the log's name bound)
//	uvarint  len, text bytes (0 .. the log's text bound)
//
// consumed exactly. Strings in payloads and state files are a uvarint
// length followed by the bytes.
//
// A state file (and any other whole-file encoding, such as an index) is
// "sealed": an 8-byte magic, a body of the log's own, and a uint32 CRC32C
// of all preceding bytes (Seal, Unseal). A log may accept older magics
// when reading. State files are replaced with internal/atomicfile: a
// temporary file named after the state file plus ".tmp" and a suffix,
// fsynced, renamed over it, and the directory fsynced; CleanState removes
// temporaries an interrupted write left behind.
//
// # Recovery
//
// Recover reads a segment's frames in order and truncates the file (and
// fsyncs it) at the first one that is short (a torn tail: a write cut off
// by a crash), has a bad length or CRC, or that the log's decoder rejects
// (an undecodable payload, or a record out of the log's order), so a torn
// tail is dropped and never misread. Corruption in the middle of a segment
// also cuts there: later records of that segment are lost. A segment
// shorter than its magic whose bytes are a prefix of it (TornHeader) is a
// creation cut short that never held records; the log deletes it.
package seglog
