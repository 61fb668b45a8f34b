package testkit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestClock(t *testing.T) {
	c := NewClock()
	start := c.Now()
	assert.Equal(t, start, c.Now(), "it does not move by itself")
	for _, d := range []time.Duration{time.Millisecond, time.Hour, 0} {
		before := c.Now()
		c.Advance(d)
		assert.Equal(t, before.Add(d), c.Now())
	}
}
