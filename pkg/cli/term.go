package cli

import (
	"io"
	"os"
	"strconv"
	"unicode/utf8"
)

// terminal reports whether w is a terminal: progress is then redrawn in
// place instead of printed as one line per change.
func terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// width is the terminal's width in columns; 0 when w is not a terminal
// and $COLUMNS does not say.
func width(w io.Writer) int {
	if f, ok := w.(*os.File); ok && terminal(w) {
		if n := termWidth(f); n > 0 {
			return n
		}
	}
	n, _ := strconv.Atoi(os.Getenv("COLUMNS"))
	return n
}

// shorten cuts s to at most n characters, marking the cut with "…".
func shorten(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	if n == 1 {
		return "…"
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
