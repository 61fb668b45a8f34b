package node

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// TestPushedIsObservedAsARead: a push into the kernel's page cache is the
// last the node sees of the file's reads, so it is observed as one.
func TestPushedIsObservedAsARead(t *testing.T) {
	var got []Observation
	n, err := New(Config{Rank: 0, Cache: newCache(), Parent: &direct{}, Observe: func(o Observation) { got = append(got, o) }})
	require.NoError(t, err)
	n.Pushed("/pkg/core.py", 1234)
	assert.Equal(t, []Observation{{Op: op.Read, Path: "/pkg/core.py", Outcome: OutcomeHit, Bytes: 1234}}, got)

	quiet, err := New(Config{Rank: 0, Cache: newCache(), Parent: &direct{}})
	require.NoError(t, err)
	quiet.Pushed("/pkg/core.py", 1) // no observer: nothing to call
}
