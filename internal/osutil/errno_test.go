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
