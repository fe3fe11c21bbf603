package cluster

import (
	"bytes"
	"context"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// logWriter turns the line-oriented logs of Raft (hclog) and memberlist
// ("[LEVEL] text") into slog records: the one place both are adapted.
type logWriter struct {
	log *slog.Logger
}

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		level := slog.LevelInfo
		switch {
		case bytes.Contains(line, []byte("[ERR")):
			level = slog.LevelError
		case bytes.Contains(line, []byte("[WARN")):
			level = slog.LevelWarn
		case bytes.Contains(line, []byte("[DEBUG")), bytes.Contains(line, []byte("[TRACE")):
			level = slog.LevelDebug
		}
		if !w.log.Enabled(context.Background(), level) {
			continue
		}
		// Drop hclog's own timestamp and level prefix.
		if i := bytes.Index(line, []byte("] ")); i >= 0 && i < 48 {
			line = line[i+2:]
		}
		w.log.Log(context.Background(), level, string(bytes.TrimSpace(line)))
	}
	return len(p), nil
}

func newHCLog(log *slog.Logger, name string) hclog.Logger {
	level := hclog.Info
	if log.Enabled(context.Background(), slog.LevelDebug) {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:            name,
		Level:           level,
		Output:          logWriter{log.With("lib", name)},
		DisableTime:     true,
		IncludeLocation: false,
	})
}
