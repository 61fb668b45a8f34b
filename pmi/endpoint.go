package pmi

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// Endpoint is where the launcher's PMI server is, from the environment.
type Endpoint struct {
	FD   int    // PMI_FD, an inherited connected socket; -1 if unset
	Addr string // PMI_PORT, host:port; used when FD is -1
	ID   int    // PMI_ID, this process's id for the PMI_PORT handshake; -1 if unset
	Rank int    // PMI_RANK; -1 if unset
}

// Source names the variable the connection comes from, for messages.
func (e Endpoint) Source() string {
	if e.FD >= 0 {
		return "PMI_FD=" + strconv.Itoa(e.FD)
	}
	return "PMI_PORT=" + e.Addr
}

// EndpointFromEnv reads PMI_FD, PMI_PORT, PMI_ID and PMI_RANK. ok is
// false when neither PMI_FD nor PMI_PORT is set (no PMI server: Open
// MPI's PMIx and Cray PALS do not offer one). A malformed value is an
// error naming the variable.
func EndpointFromEnv(getenv func(string) string) (e Endpoint, ok bool, err error) {
	e = Endpoint{FD: -1, ID: -1, Rank: -1}
	num := func(name string) (int, error) {
		raw := strings.TrimSpace(getenv(name))
		if raw == "" {
			return -1, nil
		}
		v, err := strconv.Atoi(raw)
		if err != nil || v < 0 {
			return -1, fmt.Errorf("pmi: %s=%q is not a non-negative integer", name, raw)
		}
		return v, nil
	}
	if e.FD, err = num("PMI_FD"); err != nil {
		return e, false, err
	}
	if e.ID, err = num("PMI_ID"); err != nil {
		return e, false, err
	}
	if e.Rank, err = num("PMI_RANK"); err != nil {
		return e, false, err
	}
	e.Addr = strings.TrimSpace(getenv("PMI_PORT"))
	if e.FD >= 0 {
		return e, true, nil
	}
	if e.Addr == "" {
		return e, false, nil
	}
	if _, _, err := net.SplitHostPort(e.Addr); err != nil {
		return e, false, fmt.Errorf("pmi: PMI_PORT=%q is not host:port: %w", e.Addr, err)
	}
	return e, true, nil
}

func connect(ctx context.Context, e Endpoint) (net.Conn, error) {
	if e.FD >= 0 {
		f := os.NewFile(uintptr(e.FD), "PMI_FD")
		if f == nil {
			return nil, fmt.Errorf("pmi: PMI_FD=%d is not an open descriptor", e.FD)
		}
		conn, err := net.FileConn(f)
		f.Close() // the duplicate in conn is close-on-exec; the inherited one is not
		if err != nil {
			return nil, fmt.Errorf("pmi: PMI_FD=%d: not a socket from the launcher: %w", e.FD, err)
		}
		return conn, nil
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.Addr)
	if err != nil {
		return nil, fmt.Errorf("pmi: PMI_PORT=%s: %w", e.Addr, err)
	}
	return conn, nil
}
