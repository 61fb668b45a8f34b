package pfsbench

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func counters(t *testing.T, js string) *nodeCounters {
	t.Helper()
	var c nodeCounters
	require.NoError(t, json.Unmarshal([]byte(js), &c))
	return &c
}

func TestNodeCalls(t *testing.T) {
	before := counters(t, `{"fuse_calls":{"LOOKUP":3,"STATFS":1},"kernel_pushes":{"pushed":0,"pushed_bytes":0},
		"node":{"ops":[{"op":"dirplus","forwarded":1,"backend_ops":0},{"op":"read","forwarded":0,"backend_ops":2}]}}`)
	after := counters(t, `{"fuse_calls":{"LOOKUP":10,"STATFS":1,"READDIRPLUS":4},"kernel_pushes":{"pushed":7,"pushed_bytes":7000,"late":1},
		"node":{"ops":[{"op":"dirplus","forwarded":5,"backend_ops":0},{"op":"read","forwarded":0,"backend_ops":9}]}}`)
	got, err := nodeCalls([]*nodeCounters{before}, []*nodeCounters{after})
	require.NoError(t, err)
	assert.Equal(t, []NodeCalls{{Rank: 0, Fuse: map[string]int64{"LOOKUP": 7, "READDIRPLUS": 4}, Pushed: 7, PushedBytes: 7000, PushLate: 1,
		Forwarded: map[string]int64{"dirplus": 4}, Backend: map[string]int64{"read": 7}}}, got, "the phase's: after less before, unchanged counters left out")

	_, err = nodeCalls([]*nodeCounters{before, nil}, []*nodeCounters{after, after})
	assert.ErrorContains(t, err, "rank 1", "a node whose stats were not read is named")
}
