// Package supervisor converges a host to its assignments through the
// driver: it starts what is assigned, restarts what exits (with backoff),
// checks health, stops what is no longer assigned (after a drain delay),
// fences instances whose lease ran out, and queues status changes for the
// hub. Assignments are kept on disk, so after a reboot without the hub the
// host runs its instances again (offline autonomy).
//
// Apps' secrets are the exception: they arrive with the assignments and
// are held in memory only. The copy on disk has them removed (marked
// withheld), so after an agent restart without the hub, running instances
// are adopted as they are, but an instance with secrets that must be
// started waits for the hub to send them again; no encrypted local copy
// is kept.
package supervisor
