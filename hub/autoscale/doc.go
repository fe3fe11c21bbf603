// Package autoscale sets the instance count of apps that have an
// autoscaling policy, on the hub leader.
//
// Decide is pure: given a policy, what the app runs and what its
// instances see (routed requests per second, CPU and memory in percent of
// the app's limits), and the decider's own memory (State), it returns the
// count and why. Each target answers ceil(current × observed / target);
// the largest answer wins, within the bounds the schedules set. When the
// last few seconds show more than twice the capacity the current count
// serves, the decider panics: it answers from those seconds and never
// scales down until a whole window has passed calm. It panics sooner on a
// router's signal: a router that counts, within the current second,
// twice what the committed count serves (the rate the hub gives it with
// its routes) says so at once, and the signalled rate, summed over the
// routers, stands for the seconds the counts do not show yet. It scales up at once
// and down only to the highest count it wanted over scale_down_delay. An
// app with min 0 that had no routed request for scale_down_delay goes to
// zero; a request for it (routers count those they hold) wakes it.
//
// Runner is the thin loop around it: once a second, and at once on a
// router's signal (after a moment for the other routers'), it reads the store,
// the routers' counts (hub/traffic) and the instances' series
// (hub/series), decides for every autoscaled app and commits each change
// through Raft with its reason (state.AutoscaleRequest). It keeps nothing
// that a new leader needs: a new leader starts with the committed counts
// as its memory, so it scales down no earlier than scale_down_delay after
// it took office, and never flaps on the telemetry it has not yet
// received. Rollouts and drills are left alone: while an app's instances
// of an older version run, or a drill runs on hosts it uses, the
// autoscaler does not scale it down (and during a drill not up either).
package autoscale
