// Package scheduler decides where app instances run. It owns placement
// and nothing else: given a read-only view of hosts and instances (State)
// and the apps' desired state (App), Plan returns the instances to start
// and stop and, for what cannot be placed, a human explanation; Check
// tells the FSM whether a plan still fits the state it is applied to.
//
// The package is pure: it imports only the standard library, does no I/O,
// reads no clock and draws no random numbers (instance ids come from the
// caller), so a plan is a function of its inputs. The hub adapts its state
// store to State and its app records to App.
//
// Placement filters by pool, readiness, drivers (a host takes an app
// only if one of its drivers runs it: an image on docker or kubernetes,
// only a command on exec), free CPU and memory, and constraints; spreads
// over hosts (and over zones or datacenters when an app asks for it);
// then packs by free capacity. PoolRuns judges whether a pool could ever
// run an app, from its declared drivers or its provider, never from its
// current hosts.
package scheduler
