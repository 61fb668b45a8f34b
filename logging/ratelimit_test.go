package logging

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// step is one log call at a time offset, or (msg "") nothing but a flush.
type step struct {
	at    time.Duration
	level slog.Level
	msg   string
}

func TestRateLimit(t *testing.T) {
	const burst, interval = 2, time.Second
	e := func(at time.Duration, msg string) step { return step{at, slog.LevelError, msg} }
	tests := []struct {
		name  string
		steps []step
		flush bool
		want  []string // messages written, in order
	}{
		{"under the burst", []step{e(0, "a"), e(1, "a")}, true, []string{"a", "a"}},
		{"over the burst, reported when the window ends",
			[]step{e(0, "a"), e(1, "a"), e(2, "a"), e(3, "a"), e(interval, "a")}, false,
			[]string{"a", "a", "suppressed 2 similar messages", "a"}},
		{"keys are per message",
			[]step{e(0, "a"), e(0, "a"), e(0, "b"), e(0, "a"), e(0, "b")}, true,
			[]string{"a", "a", "b", "b", "suppressed 1 similar messages"}},
		{"another key's record reports an ended window",
			[]step{e(0, "a"), e(0, "a"), e(0, "a"), e(2*interval, "b")}, false,
			[]string{"a", "a", "suppressed 1 similar messages", "b"}},
		{"flush reports what is held back", []step{e(0, "a"), e(0, "a"), e(0, "a"), e(0, "a")}, true,
			[]string{"a", "a", "suppressed 2 similar messages"}},
		{"below the minimum level: unlimited",
			[]step{{0, slog.LevelInfo, "i"}, {0, slog.LevelInfo, "i"}, {0, slog.LevelInfo, "i"}}, true,
			[]string{"i", "i", "i"}},
		{"levels are separate keys",
			[]step{e(0, "a"), e(0, "a"), {0, slog.LevelWarn, "a"}}, true,
			[]string{"a", "a", "a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			t0 := time.Unix(1000, 0)
			now := t0
			h, flush := RateLimit(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
				LimitConfig{Burst: burst, Interval: interval, MinLevel: slog.LevelWarn, Now: func() time.Time { return now }})
			l := slog.New(h)
			for _, s := range tc.steps {
				now = t0.Add(s.at)
				l.Log(context.Background(), s.level, s.msg)
			}
			if tc.flush {
				flush()
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if line == "" {
					continue
				}
				i := strings.Index(line, `"msg":"`)
				require.GreaterOrEqual(t, i, 0, line)
				rest := line[i+len(`"msg":"`):]
				got = append(got, rest[:strings.Index(rest, `"`)])
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// Loggers derived with With share one limit: the rank attribute every
// node adds must not reset it.
func TestRateLimitSharedAcrossWith(t *testing.T) {
	var buf bytes.Buffer
	h, _ := RateLimit(slog.NewTextHandler(&buf, nil), LimitConfig{Burst: 1, Interval: time.Hour, MinLevel: slog.LevelWarn})
	base := slog.New(h)
	base.With("rank", 1).Error("parent request failed")
	base.With("rank", 1).WithGroup("g").Error("parent request failed")
	assert.Equal(t, 1, strings.Count(buf.String(), "parent request failed"))
}

// New limits warnings and errors; closing reports the rest.
func TestNewLimitsErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "out.log")
	l, closeFn, err := New(Options{Level: 5, Type: "file", File: file})
	require.NoError(t, err)
	for range 1000 {
		l.Error("parent request failed", "path", "/x")
	}
	for range 30 {
		l.Debug("fuse traffic")
	}
	require.NoError(t, closeFn())
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, DefaultLimitBurst, strings.Count(string(data), `msg="parent request failed"`))
	assert.Contains(t, string(data), `msg="suppressed 990 similar messages" msg_suppressed="parent request failed"`)
	assert.Equal(t, 30, strings.Count(string(data), "fuse traffic"))
}
