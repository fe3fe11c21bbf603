// Package provision is the leader's loop that keeps provisioned pools'
// machines: it creates machines in clouds (through package providers) when
// a pool is below min_hosts or has instances pending for lack of capacity,
// drains and deletes idle ones above min_hosts, replaces machines that do
// not enroll within boot_timeout, carries out the deletion of a host's
// machine (its host drained first), and deletes machines tagged with this
// cluster that the state does not know.
//
// The loop is level-triggered: each round (every Tick, and when woken) it
// reads the state (Store.View), decides, and acts. Everything it must not
// forget is in the state or in the clouds: a machine is written (creating)
// before its create call, the create is idempotent on the machine id (the
// cloud's client token) with a request that is a function of the machine
// (the join token's secret comes from Store.JoinSecret, the user data from
// a deterministic renderer), and a new leader redoes the rest from the
// state and the clouds' listings. Only backoffs, listings, cached shapes,
// the first sighting of unknown cloud machines and the errors already told
// live in memory; losing them only delays work.
//
// Machine lifecycle, with who moves it:
//
//	creating  --create ok-->  booting  --host enrolled-->  ready
//	creating  --refused (quota, credentials, bad request)-->  failed
//	booting   --no enrolment within boot_timeout-->  deleting
//	ready     --idle above min, above max, or DELETE of its host-->  draining
//	draining  --host drained (or down, or DrainTimeout)-->  deleting
//	deleting  --cloud delete ok-->  removed (with its host and join token)
//	failed    --pool or account changed, FailurePause passed, or pool shrank-->  deleting
//
// Every guarded write (Store.SetMachine's From) keeps a decision taken on a
// stale view from overwriting a concurrent change. Cloud calls run in the
// background with timeouts, at most Parallel at once and one per machine;
// no lock is held across one. A failing account backs off exponentially
// with jitter (BackoffMin to BackoffMax, reset on success; bad credentials
// pause it for FailurePause or until the account changes); a refusal that
// needs an admin fails the machine with the cloud's words and pauses its
// pool's growth. Each distinct failure is recorded as one event.
//
// Growth is sized once per burst of pending instances: they are packed,
// largest first, into the pool's free capacity, then into the machines on
// their way, then into new machines of the template's shape (the cloud's
// Shape, else the pool's largest host); without a shape, one machine at a
// time. Machines count toward min_hosts and max_hosts; hosts enrolled by
// hand are never touched, though their free capacity is used.
//
// The hub wires it: Store reads the leader's state store and writes
// through Raft (AddMachine creates the machine and its bound join token in
// one command; SetMachine is a compare-and-set on the machine's state;
// RemoveMachine drops machine, host and token; DrainHost is an admin's
// drain), JoinSecret is an HMAC of the machine id under the cluster's data
// key, Open unseals an account's credentials for providers.Open, and
// UserData renders the cloud-init document with the hub's sorted addresses.
// The leader runs Run for its term and calls Wake on relevant changes.
package provision
