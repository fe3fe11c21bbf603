package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// execProbe is what `wharf app exec` tests run in an instance (images of
// it have no shell):
//
//	testapp exec exit N   exits with N
//	testapp exec out      writes "to stdout" and "to stderr" on each, exits 3
//	testapp exec cat      copies stdin to stdout until EOF
//	testapp exec sleep N  sleeps N seconds, deaf to its stdin
//	testapp exec tty      prints "tty=BOOL size=COLSxROWS", then again after
//	                      each line of input, until a line "q"
func execProbe(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "testapp exec: exit N | out | cat | sleep N | tty")
		return 2
	}
	switch args[0] {
	case "exit":
		if len(args) < 2 {
			return 2
		}
		n, _ := strconv.Atoi(args[1])
		return n
	case "out":
		fmt.Println("to stdout")
		fmt.Fprintln(os.Stderr, "to stderr")
		return 3
	case "sleep":
		if len(args) < 2 {
			return 2
		}
		n, _ := strconv.Atoi(args[1])
		time.Sleep(time.Duration(n) * time.Second)
		return 0
	case "cat":
		if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
			return 1
		}
		return 0
	case "tty":
		size := func() {
			_, err := unix.IoctlGetTermios(0, unix.TCGETS)
			ws, werr := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ)
			if werr != nil {
				ws = &unix.Winsize{}
			}
			fmt.Printf("tty=%t size=%dx%d\n", err == nil, ws.Col, ws.Row)
		}
		size()
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			if in.Text() == "q" {
				return 0
			}
			size()
		}
		return 0
	}
	return 2
}
