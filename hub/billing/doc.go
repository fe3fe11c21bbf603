package billing

// Metering: the rules.
//
// Usage is derived from committed state only, by the FSM (hub/state,
// usage.go and apply_usage.go) as it applies commands, so that every hub
// node holds the same usage and a leader change neither loses nor repeats
// a second. The FSM never reads a clock: every time is the command's
// Time, stamped by the node that proposed it.
//
// Instances. An instance counts from the status report that makes it
// running (the InstanceUpdate command's Time) while it is desired to run
// and reported running. It stops counting when:
//   - its agent reports it in any other state (stopped, failed, ...): at
//     that report;
//   - it is replaced or scaled away (the plan that asks it to stop) or its
//     app is deleted (AppDelete): at that command, even if the agent takes
//     a while to stop it;
//   - the hub marks its host down (it is lost): at that HostState
//     command. A lost instance that its agent reports running again
//     counts again from that report; the host becoming ready alone does
//     not make it count;
//   - it is removed with its host.
//
// A command stamped before the end of the last closed hour (a status report
// committed late, after an election) counts from that end: the closed
// hours counted the instance as it was when they closed.
//
// It counts its reserved resources: Instance.CPU millicores and
// Instance.Memory MB, per second: instance-seconds, millicore-seconds and
// MB-seconds. Times count in whole seconds: each start and end is
// truncated to its second, so back-to-back intervals add up exactly.
//
// The FSM keeps a counting instance's start (Instance.MeteredSince). When
// it stops counting, the interval is kept as a segment (state table
// usage_segments) in the same command, so nothing is lost when the
// instance record is dropped.
//
// Requests, egress and log bytes. Routers count requests and response
// bytes per app per second and report them to the hub node their agent
// is connected to; the log path counts the bytes of the lines it accepts
// (acknowledged to the agent once a second node holds them). Each node
// sums these per tenant, app and hour (Counter) and commits them through
// Raft in batches, one UsageCounters entry per node every few seconds at
// most, forwarded to the leader. A batch carries (node, seq); the FSM
// remembers the last seq applied per node and ignores a batch that is not
// newer, so a proposer that retries after a timeout or a leader change
// never counts twice. A node keeps a batch until it is committed: a
// leader loss loses none. What a node holds in memory dies with the node
// itself, though: at most its last few seconds of counts, as agents do
// not send access counts again. Counts that reach the FSM after their
// hour closed count in the first hour still open.
//
// Hours. The leader (Meter.Run) closes each hour once it ended and a grace
// passed, one at a time and in order: a CloseHour command carries only
// the hour's bounds; the FSM sums, for every app, the segments, the share
// of the instances still counting, and the counters of that hour (an
// entry of a few bytes, whatever the number of instances), writes the
// rows as final (state table usage), drops what they hold from the open
// tables and records the hour as closed. A CloseHour of an hour closed
// already changes nothing, and one out of order is refused, so a new
// leader resumes after the last hour committed: no hour is closed twice
// or skipped. After downtime the leader closes the missed hours one
// after another. The first close starts with the hour of the earliest
// usage.
//
// Hours are UTC hours (Config.Hour is one hour in production; tests
// shorten it). The hours that are not closed yet are computed on read by
// the same function the FSM closes them with, from the same state
// (Meter.Usage): they are not final, and the hour that holds now counts
// up to now. Closed rows are kept when their app or tenant is deleted:
// that usage stays billable.
//
// Upgrades: a snapshot written before metering has no instance starts;
// on restore an instance running then counts from its last status change
// (Instance.UpdatedAt).
