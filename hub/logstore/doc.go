// Package logstore is a hub node's local on-disk store of app logs.
//
// Agents ship each instance's lines to a hub (agent/logship is the agent
// side) and the hub stores them here with Append, as it does copies
// replicated from a peer node; the store lives outside Raft and knows
// nothing of the network. Query reads one app's lines back (a time range,
// a tail, or a follow with AfterPos and Wait). Retention bounds each
// tenant's logs by size and age. The caller owns replication; this package
// owns one node's copy.
//
// # Dedup
//
// Agents send each instance's lines in seq order and resend only
// unacknowledged suffixes, so a record is stored only if its Seq is above
// the highest Seq the store holds (or held) for its instance; all others
// are dropped as duplicates. The instance is identified by (tenant, app,
// instance), so no tenant can suppress another's lines by reusing an
// instance name. The highest seq survives restarts (rebuilt from the
// segments) and retention (kept in the state file, written before any
// segment is deleted). An instance is forgotten once it holds no records
// and no Append named it for longer than its tenant's MaxAge: any resend
// of its lines would be older than MaxAge and deleted by age anyway.
//
// # Positions
//
// Every stored record gets a Pos, one more than the previous one stored
// anywhere in this store. A Query returns the highest Pos at its start;
// every record stored later has a larger Pos, so a follower queries again
// with AfterPos set to it (after Wait) and sees each record once. The last
// Pos is kept in the state file too, so positions keep increasing after
// retention deleted the newest segment of the store and a restart.
//
// # On-disk format
//
// The framing, the field codec, segment files and state files are
// internal/seglog's (its doc.go has the common format); this store's own
// parts follow. Config.Dir holds the lock file "_lock" (flock'ed while
// open), the state file "_state" (and transiently a temporary
// "_state.tmp…" while that is replaced), and a directory per tenant
// holding a directory per app:
//
//	<dir>/<tenant>/<app>/<16 hex digit id>.seg   a segment
//	<dir>/<tenant>/<app>/<16 hex digit id>.idx   its summary, optional
//	<dir>/<tenant>/<app>/<id>.seg.corrupt        a file recovery set aside
//
// Directory names are the tenant and app names with every byte outside
// [a-z0-9-] (and a leading '.') written as %XX; an escaped name over 200
// bytes becomes "~" and 32 hex digits of its SHA-256. Names are refused if
// empty, over 253 bytes, "." or "..", or containing NUL or '/'; names
// starting with '_' never collide with the store's own files since '_' is
// always escaped. Segment ids are unique in the store and never reused.
// All integers are little endian; uvarint/varint are encoding/binary's,
// in their shortest encoding.
//
// A segment starts with a header naming its tenant and app (so a segment
// is self-describing, even under a hashed directory name):
//
//	"WHLOGSG1", uvarint len, tenant, uvarint len, app,
//	uint32 CRC32C (Castagnoli) of all preceding header bytes
//
// followed by records:
//
//	uint32 payload length (2 .. 1 MiB + 4 KiB)
//	uint32 CRC32C of the 4 length bytes followed by the payload
//	payload:
//	  byte     kind = 1 (line)
//	  byte     flags (bit 0: Partial, bit 1: Primary; other bits must be 0)
//	  uvarint  pos (> 0)
//	  uvarint  seq (> 0)
//	  varint   time, Unix nanoseconds
//	  uvarint  len, instance bytes (1 .. 253)
//	  uvarint  len, stream bytes (0 .. 253)
//	  uvarint  len, line bytes (0 .. 1 MiB)
//
// The payload must be consumed exactly. Covering the length by the CRC
// means a zero-filled or garbage tail never decodes as a record. Within a
// segment pos strictly increases, and so does seq per instance.
//
// Each app appends to its newest ("active") segment until the next record
// would take it past the tenant's segment size (Config.SegmentBytes,
// clamped to a quarter of the tenant's MaxBytes, at least 4 KiB); then the
// segment is sealed and a new one started. A segment is never rewritten,
// only appended to, truncated back to its last complete record (recovery,
// or undoing a failed write), or deleted whole.
//
// # Index
//
// In memory each segment has its record count, min/max Time, max Pos, the
// highest seq of each instance in it, and a block list: for every run of
// records starting within 64 KiB of the previous block's start, its offset,
// min/max Time and max Pos. A query copies an app's block list under the
// store's lock, drops blocks outside its time range or at or below
// AfterPos, and reads the rest newest first without the lock; once it
// holds Limit records newer than a block's newest, it stops. So a tail or
// a follow reads about one block, not whole segments.
//
// When a segment is sealed, and for the active one on Close, its summary
// is written to <id>.idx (not fsynced):
//
//	"WHLOGIX1", uvarint file size, uvarint header length, uvarint records,
//	uvarint n, n × (uvarint offset, varint minTime, varint maxTime,
//	                uvarint maxPos),
//	uvarint m, m × (uvarint len, instance, uvarint highest seq),
//	uint32 CRC32C of all preceding bytes
//
// Open uses an index only if it decodes and its file size equals the
// segment's (segments only grow, and recovery only cuts what was never
// complete), else deletes it and scans the segment.
//
// The state file holds the last Pos and each instance's highest seq and
// last activity (Config.Now of its last Append, Unix ns):
//
//	"WHLOGST1", uvarint lastPos, uvarint count,
//	count × (uvarint len, tenant, uvarint len, app, uvarint len, instance,
//	         uvarint highest seq, varint last activity),
//	uint32 CRC32C of all preceding bytes
//
// It is replaced atomically (internal/atomicfile: a temporary file, fsync,
// rename, fsync of the directory) before retention deletes any segment file; a segment dropped
// from the index whose deletion could not be made safe stays on disk and
// is retried on the next pass.
//
// # Recovery
//
// Open reads every app directory. A segment whose header is a torn prefix
// of the magic (creation cut short) is deleted; one with another magic, a
// bad header or names that do not belong in its directory is renamed to
// *.corrupt and skipped. A segment without a matching index is scanned and
// truncated (and fsynced) at the first record that is short, has a bad
// length or CRC, an undecodable payload, or a pos or seq out of order: a
// torn tail after a kill is dropped, never misread. Temporary state files
// left by a crash are removed. Bit rot in the middle of a segment also
// truncates there (later records of that segment are lost). Each
// instance's highest seq is the maximum of the segments and the state
// file; the last Pos likewise. A corrupt state file is logged and ignored
// (seqs of already deleted segments are then forgotten). The newest
// segment of each app stays active.
//
// # Retention
//
// Enforce runs every minute, when an Append takes a tenant past its
// MaxBytes (asynchronously: the bound is soft by one pass) and when
// called. Per tenant (limits from Config.TenantLimits, else
// Config.Default) it deletes every segment whose newest record is older
// than MaxAge, then the segments with the oldest newest record across
// the tenant's apps until the tenant's total is at most MaxBytes. Only
// whole segments are deleted, so a tenant holds between MaxBytes minus one
// segment and MaxBytes (plus what arrives between passes), and one
// tenant's volume never deletes another tenant's logs.
//
// # Durability
//
// Append writes each app's records with one pwrite(2) (more only when a
// segment fills up mid-call) and never fsyncs: a hub node's copy is made
// durable by replication to another node, not by its disk.
//
//   - Process crash / kill -9: nothing lost. Every record Append returned
//     for is in the page cache and recovered; a write cut short by the kill
//     is a torn tail that Open removes (that Append had not returned).
//     Records of a call spanning several apps can be recovered for some
//     apps and not others; the agent resends the unacknowledged suffix and
//     dedup (per instance, and an instance has one app) stores each once.
//   - Power loss / kernel crash: recently appended records, and recently
//     created segments, may be lost; as they were never acknowledged to
//     the agent by a replicated write, the agent resends them. Positions of
//     lost records may be handed out again, so a follower across such a
//     crash may miss records; restart followers after a node restart.
//   - The state file is fsynced before each deletion, so seqs of deleted
//     segments are never forgotten, even on power loss.
//
// A failed write is cut off again with ftruncate and the call fails (the
// records of that app not stored); if the ftruncate fails too, the store
// refuses all further appends (sticky error) rather than risk a restart
// resurrecting records whose seqs and positions were handed out again.
package logstore
