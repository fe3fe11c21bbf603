package netlab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// run runs a command and returns its combined output; a failure includes
// the command line and its output.
func run(name string, args ...string) (string, error) {
	return runStdin("", name, args...)
}

// runStdin is run with the given standard input (for ip -batch).
func runStdin(stdin, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(out.String())
		if stdin != "" {
			msg += " [stdin: " + strings.ReplaceAll(strings.TrimSpace(stdin), "\n", "; ") + "]"
		}
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return out.String(), nil
}

// ipBatch runs `ip [-n ns] -batch -` with the given lines.
func ipBatch(ns string, lines ...string) error {
	args := []string{}
	if ns != "" {
		args = append(args, "-n", ns)
	}
	args = append(args, "-batch", "-")
	_, err := runStdin(strings.Join(lines, "\n")+"\n", "ip", args...)
	return err
}

// readSysctl reads a file under /proc/sys, trimmed.
func readSysctl(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func writeSysctl(path, value string) error {
	if err := os.WriteFile(path, []byte(value+"\n"), 0o644); err != nil {
		return fmt.Errorf("write %s=%s: %w", path, value, err)
	}
	return nil
}

const ipForwardPath = "/proc/sys/net/ipv4/ip_forward"

// netnsList returns the names of the namespaces in /run/netns.
func netnsList() ([]string, error) {
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list netns: %w", err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, nil
}

// linkList returns the names of the links of the root namespace.
func linkList() ([]string, error) {
	ents, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, nil
}

// linkExists tells whether a link of the root namespace exists.
func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}
