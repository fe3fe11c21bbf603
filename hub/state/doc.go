// Package state owns the hub's replicated state: the go-memdb schema, the
// typed read methods over it, the Raft commands that change it and the FSM
// that applies them. Only the FSM writes the store; objects read from it are
// shared and immutable (Copy before changing).
package state
