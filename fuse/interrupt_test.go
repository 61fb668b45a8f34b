package fuse

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/hpc-copper/copper/op"
)

type ctxRecorder struct{ err error }

func (c *ctxRecorder) Get(ctx context.Context, _ op.Op, _ string) op.Result {
	c.err = ctx.Err()
	return op.Result{}
}

// A kernel interrupt (the request's context cancelled, as SIGURG to a Go
// caller does) must not reach the Source, or callers see EINTR from stat.
func TestKernelInterruptDoesNotReachSource(t *testing.T) {
	rec := &ctxRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	uninterruptible{rec}.Get(ctx, op.Getattr, "/x")
	assert.NoError(t, rec.err)
}
