package logship

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"
)

// SyncPolicy says when appended data is fsynced.
type SyncPolicy struct {
	// EveryAppend fsyncs before every Append (or Writer.Write batch)
	// returns.
	EveryAppend bool
	// Interval is the period of background fsyncs when EveryAppend is
	// false; zero means DefaultSyncInterval.
	Interval time.Duration
}

// DefaultSyncInterval is the background fsync period of the zero SyncPolicy.
const DefaultSyncInterval = 200 * time.Millisecond

// SyncEveryAppend returns the policy that fsyncs every append batch.
func SyncEveryAppend() SyncPolicy { return SyncPolicy{EveryAppend: true} }

// SyncInterval returns the policy that fsyncs at most every d.
func SyncInterval(d time.Duration) SyncPolicy { return SyncPolicy{Interval: d} }

// Config configures a Buffer. Zero values take the documented defaults.
type Config struct {
	Dir          string // where segments live (created)
	MaxBytes     int64  // total on-disk bound, zero = 256 MiB, at least 1 KiB
	SegmentBytes int64  // zero = 8 MiB; clamped to MaxBytes/4, at least 256
	MaxLineBytes int    // zero = 16 KiB, between 4 and 1 MiB
	Logger       *slog.Logger
	Now          func() time.Time
	Sync         SyncPolicy
}

func (c *Config) normalize() error {
	if c.Dir == "" {
		return errors.New("config: empty dir")
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 256 << 20
	}
	if c.MaxBytes < 1024 {
		return fmt.Errorf("config: max bytes %d below 1024", c.MaxBytes)
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = 8 << 20
	}
	c.SegmentBytes = min(c.SegmentBytes, c.MaxBytes/4)
	if c.SegmentBytes < 256 {
		return fmt.Errorf("config: segment bytes %d below 256", c.SegmentBytes)
	}
	if c.MaxLineBytes == 0 {
		c.MaxLineBytes = 16 << 10
	}
	if c.MaxLineBytes < utf8.UTFMax || c.MaxLineBytes > maxLineBytesLimit {
		return fmt.Errorf("config: max line bytes %d out of range [%d, %d]", c.MaxLineBytes, utf8.UTFMax, maxLineBytesLimit)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sync.Interval < 0 {
		return fmt.Errorf("config: negative sync interval %v", c.Sync.Interval)
	}
	if !c.Sync.EveryAppend && c.Sync.Interval == 0 {
		c.Sync.Interval = DefaultSyncInterval
	}
	return nil
}
