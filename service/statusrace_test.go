package service_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/control"
	"github.com/hpc-copper/copper/internal/testkit"
	"github.com/hpc-copper/copper/service"
)

// TestStatsWhileWaitingToMount: `copper-node stats` answers while the
// node still waits for its tree to mount its view, and goes on answering
// as it mounts (run with -race: the answer reads the mount Start sets).
func TestStatsWhileWaitingToMount(t *testing.T) {
	testkit.RequireFuse(t)
	s := clusterSettings(t, t.TempDir())
	dir := t.TempDir()
	s.Mount = filepath.Join(dir, "{rank}", "mnt")
	mnt := filepath.Join(dir, "1", "mnt")
	require.NoError(t, os.MkdirAll(mnt, 0o755))
	book := loopbackBook(t, 2)
	token := []byte("stats-race-test-job-secret")
	t.Cleanup(func() {
		if err := testkit.DetachMountsUnder(dir); err != nil {
			t.Errorf("after the test: %v", err)
		}
	})

	started := make(chan *service.Service, 1)
	go func() {
		svc, err := service.Start(t.Context(), s, service.Identity{Rank: 1, Book: book, Token: token}, service.Options{Mount: true, Control: true})
		assert.NoError(t, err)
		started <- svc
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var answers atomic.Int64
	stopAsking := make(chan struct{})
	asked := make(chan struct{})
	go func() {
		defer close(asked)
		for {
			select {
			case <-stopAsking:
				return
			default:
			}
			var st service.Status
			if control.Call(ctx, mnt, control.Request{Cmd: "stats"}, &st) == nil {
				answers.Add(1)
			}
		}
	}()
	require.Eventually(t, func() bool { return answers.Load() > 0 }, 30*time.Second, time.Millisecond, "stats before the mount")
	root, err := service.Start(t.Context(), s, service.Identity{Rank: 0, Book: book, Token: token}, service.Options{})
	require.NoError(t, err)
	leaf := <-started
	require.NotNil(t, leaf)
	before := answers.Load()
	require.Eventually(t, func() bool { return answers.Load() > before+5 }, 30*time.Second, time.Millisecond, "stats after the mount")
	close(stopAsking)
	<-asked
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer stopCancel()
	assert.NoError(t, leaf.Stop(stopCtx))
	assert.NoError(t, root.Stop(stopCtx))
}
