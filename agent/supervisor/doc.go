// Package supervisor converges a host to its assignments through the
// driver: it starts what is assigned, restarts what exits (with backoff),
// checks health, stops what is no longer assigned (after a drain delay),
// fences instances whose lease ran out, and queues status changes for the
// hub. Assignments are kept on disk, so after a reboot without the hub the
// host runs its instances again (offline autonomy).
package supervisor
