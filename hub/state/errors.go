package state

import (
	"errors"
	"fmt"
)

// Kind classifies an error returned by the FSM so that the API can map it to
// an HTTP status and the internal RPC can carry it as a code plus a message.
type Kind uint8

// Error kinds. The values travel over the internal RPC: append only.
const (
	KindInternal Kind = 0 // 500
	KindInvalid  Kind = 1 // 400
	KindNotFound Kind = 2 // 404
	KindConflict Kind = 3 // 409
	KindRefused  Kind = 4 // 422: valid input the cluster refuses (quota, unknown pool)
	// KindUnavailable (503) is not produced by the FSM: the cluster returns
	// it when no leader is known (cluster.ErrNoLeader).
	KindUnavailable Kind = 5
)

// Error is an error with a Kind. The FSM returns *Error (or nil) from Apply.
type Error struct {
	Kind  Kind
	Msg   string
	Field string
	// NotSubmitted (with KindUnavailable) says the command never reached a
	// leader's log, so retrying it cannot apply it twice.
	NotSubmitted bool
}

// Error implements error.
func (e *Error) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrNotFound) and the like match any *Error of the
// same kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Kind == e.Kind
}

// Sentinels for errors.Is.
var (
	ErrInvalid  = &Error{Kind: KindInvalid}
	ErrNotFound = &Error{Kind: KindNotFound}
	ErrConflict = &Error{Kind: KindConflict}
	ErrRefused  = &Error{Kind: KindRefused}
	// ErrUnavailable matches errors that mean "no leader, try again".
	ErrUnavailable = &Error{Kind: KindUnavailable}
)

// Errorf returns an *Error of kind k.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// KindOf returns the Kind of err (KindInternal if it carries none).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}
