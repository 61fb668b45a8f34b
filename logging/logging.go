// Package logging maps Copper 1.0's log levels and log types onto log/slog.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/hpc-copper/copper/internal/osutil"
)

// LevelFatal sits above slog's error level: Copper 1.0's level 1 shows
// only fatal messages.
const LevelFatal = slog.Level(12)

// SlogLevel maps a user level (0 none, 1 fatal, 2 error, 3 warn, 4 info,
// 5 debug) to the lowest slog level shown; ok is false for level 0.
func SlogLevel(user int) (level slog.Level, ok bool) {
	switch {
	case user <= 0:
		return 0, false
	case user == 1:
		return LevelFatal, true
	case user == 2:
		return slog.LevelError, true
	case user == 3:
		return slog.LevelWarn, true
	case user == 4:
		return slog.LevelInfo, true
	default:
		return slog.LevelDebug, true
	}
}

// Options describe one process's logger.
type Options struct {
	Level int    // user level 0..5
	Type  string // file | stdout | both
	File  string // log file path, used for types file and both
	Attrs []slog.Attr
}

// New returns a logger and a close function for its file. The file's
// directory is created. Level 0 discards everything and opens no file.
func New(o Options) (*slog.Logger, func() error, error) {
	noop := func() error { return nil }
	level, on := SlogLevel(o.Level)
	if !on {
		return slog.New(slog.DiscardHandler), noop, nil
	}
	var writers []io.Writer
	closeFn := noop
	switch o.Type {
	case "stdout", "both", "file", "file_and_stdout":
	default:
		return nil, nil, fmt.Errorf("log_type %q: want file, stdout or both", o.Type)
	}
	if o.Type == "stdout" || o.Type == "both" || o.Type == "file_and_stdout" {
		writers = append(writers, os.Stdout)
	}
	if o.Type != "stdout" {
		if o.File == "" {
			return nil, nil, fmt.Errorf("log_type %q needs a log file", o.Type)
		}
		f, err := osutil.AppendLog(o.File)
		if err != nil {
			return nil, nil, err
		}
		writers = append(writers, f)
		closeFn = f.Close
	}
	h := slog.NewTextHandler(io.MultiWriter(writers...), &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.LevelKey {
				if l, ok := a.Value.Any().(slog.Level); ok && l >= LevelFatal {
					a.Value = slog.StringValue("FATAL")
				}
			}
			return a
		},
	})
	// Warnings and errors repeat when a parent is gone; cap them.
	limited, flush := RateLimit(h, LimitConfig{MinLevel: slog.LevelWarn})
	closeAll := func() error {
		flush()
		return closeFn()
	}
	return slog.New(limited).With(attrsToAny(o.Attrs)...), closeAll, nil
}

func attrsToAny(attrs []slog.Attr) []any {
	out := make([]any, len(attrs))
	for i, a := range attrs {
		out[i] = a
	}
	return out
}

// Fatal logs at the fatal level.
func Fatal(l *slog.Logger, msg string, args ...any) {
	l.Log(context.Background(), LevelFatal, msg, args...)
}
