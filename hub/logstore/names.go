package logstore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrInvalid is wrapped by the errors of Append and Query for input they
// refuse; such a call changed nothing.
var ErrInvalid = errors.New("logstore: invalid input")

// Bounds of a Record.Time: what Unix nanoseconds in an int64 can hold.
var (
	minTime = time.Unix(0, -1<<63)
	maxTime = time.Unix(0, 1<<63-1)
)

// checkName validates a tenant, app or instance name. Names become path
// components (escaped, see dirName), so besides the length bounds they must
// not contain NUL or '/' and must not be "." or "..".
func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty %s", what)
	case len(s) > MaxNameBytes:
		return fmt.Errorf("%s of %d bytes (max %d)", what, len(s), MaxNameBytes)
	case s == "." || s == "..":
		return fmt.Errorf("%s %q", what, s)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%s %q contains NUL", what, s)
	case strings.IndexByte(s, '/') >= 0:
		return fmt.Errorf("%s %q contains '/'", what, s)
	}
	return nil
}

// Validate reports whether Append accepts r (Append refuses a whole call
// for one invalid record, so a caller may filter with it first). The error
// wraps ErrInvalid.
func (r *Record) Validate() error {
	if err := validate(r, nil); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// validate checks one record; prev is the record before it in the same
// call (or nil), whose already validated names need no second look.
func validate(r, prev *Record) error {
	if prev == nil || r.Tenant != prev.Tenant {
		if err := checkName("tenant", r.Tenant); err != nil {
			return err
		}
	}
	if prev == nil || r.App != prev.App {
		if err := checkName("app", r.App); err != nil {
			return err
		}
	}
	if prev == nil || r.Instance != prev.Instance {
		if err := checkName("instance", r.Instance); err != nil {
			return err
		}
	}
	if len(r.Stream) > MaxNameBytes {
		return fmt.Errorf("stream of %d bytes (max %d)", len(r.Stream), MaxNameBytes)
	}
	if r.Seq == 0 {
		return errors.New("zero seq")
	}
	if len(r.Line) > MaxLineBytes {
		return fmt.Errorf("line of %d bytes (max %d)", len(r.Line), MaxLineBytes)
	}
	if r.Time.IsZero() || r.Time.Before(minTime) || r.Time.After(maxTime) {
		return fmt.Errorf("time %v out of range", r.Time)
	}
	return nil
}

// maxDirName bounds an escaped name; longer ones are hashed.
const maxDirName = 200

// dirName maps a valid name to a directory name: bytes of [a-z0-9-] and
// '.' (except first) are kept, every other byte becomes %XX. The mapping is
// injective, never yields ".", ".." or a name starting with '_' (reserved
// for the store's own files), and is safe on case-insensitive file systems.
// An escaped name longer than maxDirName bytes is replaced by "~" and 32
// hex digits of its SHA-256; the segment headers hold the real names.
func dirName(name string) string {
	keep := func(i int) bool {
		c := name[i]
		return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' && i > 0
	}
	clean := true
	for i := range len(name) {
		if !keep(i) {
			clean = false
			break
		}
	}
	out := name
	if !clean {
		var b strings.Builder
		for i := range len(name) {
			if keep(i) {
				b.WriteByte(name[i])
			} else {
				fmt.Fprintf(&b, "%%%02X", name[i])
			}
		}
		out = b.String()
	}
	if len(out) > maxDirName {
		sum := sha256.Sum256([]byte(name))
		return "~" + hex.EncodeToString(sum[:16])
	}
	return out
}
