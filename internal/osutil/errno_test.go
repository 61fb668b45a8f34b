package osutil

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestErrno(t *testing.T) {
	_, statErr := os.Stat("/no/such/path")
	tests := []struct {
		name string
		err  error
		want syscall.Errno
	}{
		{"nil", nil, 0},
		{"bare errno", syscall.EACCES, syscall.EACCES},
		{"os.PathError", statErr, syscall.ENOENT},
		{"wrapped", fmt.Errorf("open x: %w", syscall.ELOOP), syscall.ELOOP},
		{"no errno", errors.New("something else"), syscall.EIO},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Errno(tt.err), tt.name)
	}
}

func TestRetryEINTR(t *testing.T) {
	tests := []struct {
		name  string
		errs  []error // answers in turn
		want  error
		calls int
	}{
		{"success", []error{nil}, nil, 1},
		{"interrupted twice", []error{syscall.EINTR, fmt.Errorf("open: %w", syscall.EINTR), nil}, nil, 3},
		{"other error returned", []error{syscall.EINTR, syscall.ENOENT}, syscall.ENOENT, 2},
	}
	for _, tt := range tests {
		calls := 0
		err := RetryEINTR(func() error { calls++; return tt.errs[calls-1] })
		assert.Equal(t, tt.want, err, tt.name)
		assert.Equal(t, tt.calls, calls, tt.name)
	}
}
