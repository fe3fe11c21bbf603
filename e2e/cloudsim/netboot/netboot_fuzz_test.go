package netboot

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzScript feeds arbitrary user data through the decoder every booted
// machine's cloud-config goes through: nothing may panic, what decodes is
// a script, and a runcmd argv built from any words comes out quoted word
// by word.
func FuzzScript(f *testing.F) {
	f.Add("#cloud-config\nruncmd:\n  - echo hi\n  - [sh, -c, \"echo $0\", m-1]\n", "it's")
	f.Add("#!/bin/sh\necho hi\n", "")
	f.Add("#cloud-config\nruncmd: {}\n", "a b")
	f.Add("#cloud-config\nruncmd:\n  - [1, 2]\n  - {a: b}\n", "\x00")
	f.Add("", "'\"$")
	f.Fuzz(func(t *testing.T, userData, word string) {
		if s, err := Script([]byte(userData)); err == nil && !strings.HasPrefix(s, "#!") {
			t.Fatalf("%q decoded to %q, not a script", userData, s)
		}
		if !utf8.ValidString(word) {
			return // no JSON (or YAML) string holds it
		}
		argv, err := json.Marshal([]string{"echo", word})
		if err != nil {
			t.Fatal(err)
		}
		s, err := Script([]byte("#cloud-config\nruncmd:\n  - " + string(argv) + "\n"))
		if err != nil {
			return // JSON escapes YAML does not read the same way
		}
		if !strings.Contains(s, "\n'echo' "+shellQuote(word)+"\n") {
			t.Fatalf("argv %s came out as %q", argv, s)
		}
	})
}
