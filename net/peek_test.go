package net

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// TestPeek: a request Config.Peek answers never reaches the Handler; one
// it declines (or panics on) does; either way the caller gets the answer.
func TestPeek(t *testing.T) {
	big := op.Result{Attr: op.Attr{Size: maxReaderAnswer + 1}, Data: bytes.Repeat([]byte{7}, maxReaderAnswer+1)}
	peek := func(o op.Op, path string) (op.Result, bool) {
		switch {
		case path == "/panic":
			panic("bug in peek")
		case path == "/big":
			return big, true // too large for the reader: a worker writes it
		case strings.HasPrefix(path, "/hot"):
			return op.Result{Target: "peeked " + path}, true
		}
		return op.Result{}, false
	}
	tests := []struct {
		name, path  string
		o           op.Op
		want        op.Result
		handlerRuns bool
	}{
		{"peeked", "/hot/a", op.Readlink, op.Result{Target: "peeked /hot/a"}, false},
		{"declined", "/cold", op.Readlink, op.Result{Target: "handled /cold"}, true},
		{"peek panics", "/panic", op.Readlink, op.Result{Target: "handled /panic"}, true},
		{"large peeked answer", "/big", op.Read, big, false},
		{"bad path", "/hot/../x", op.Readlink, op.Fail(op.CheckPath("/hot/../x")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, logs := testLogger(t)
			var handled atomic.Int32
			h := func(_ context.Context, _ op.Op, path string) op.Result {
				handled.Add(1)
				return op.Result{Target: "handled " + path}
			}
			s := startServer(t, h, Config{Peek: peek, Logger: logger})
			c := dial(t, s.Addr(), Config{})
			res, err := c.Call(callCtx(t), tt.o, tt.path)
			require.NoError(t, err)
			assert.Equal(t, tt.want, res)
			assert.Equal(t, tt.handlerRuns, handled.Load() == 1, "handler ran %d times", handled.Load())
			if tt.path == "/panic" {
				assert.NotEmpty(t, logs.line("peek panic", "bug in peek"))
			}
		})
	}
	require.NotEqual(t, syscall.Errno(0), op.CheckPath("/hot/../x"), "the bad-path case needs a path CheckPath refuses")
}

// TestPeekedWhileHandlerBlocks: the reader answers peeked requests while
// a declined one waits in its handler.
func TestPeekedWhileHandlerBlocks(t *testing.T) {
	b := newBlocker()
	peek := func(o op.Op, path string) (op.Result, bool) {
		if strings.HasPrefix(path, "/block") {
			return op.Result{}, false
		}
		return echo(nil, o, path), true
	}
	s := startServer(t, b.handle, Config{Peek: peek})
	c := dial(t, s.Addr(), Config{})

	slow := callAsync(c, callCtx(t), op.Read, "/block/slow")
	b.waitStarted(t, "/block/slow")
	for range 10 {
		res, err := c.Call(callCtx(t), op.Read, "/fast")
		require.NoError(t, err)
		assert.Equal(t, echo(nil, op.Read, "/fast"), res)
	}
	select {
	case <-slow:
		t.Fatal("slow call answered before its handler was released")
	default:
	}
	close(b.release)
	r := await(t, slow)
	require.NoError(t, r.err)
	assert.Equal(t, echo(nil, op.Read, "/block/slow"), r.res)
}
