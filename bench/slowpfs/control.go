package slowpfs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// Control commands, one line each on the control socket; the answer is
// one JSON Snapshot (or {"error": "..."}) and the connection closes.
const (
	CmdStats = "stats" // counters since start or the last reset
	CmdReset = "reset" // the same, then zero them
)

// ControlServer answers control commands on a unix socket.
type ControlServer struct {
	ln   net.Listener
	e    *Emulator
	path string
	wg   sync.WaitGroup
}

// ListenControl serves e's counters on a unix socket at path (mode 0600;
// a stale socket file there is replaced).
func ListenControl(path string, e *Emulator) (*ControlServer, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("slowpfs control socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("slowpfs control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("slowpfs control socket %s: %w", path, err)
	}
	s := &ControlServer{ln: ln, e: e, path: path}
	s.wg.Go(s.accept)
	return s, nil
}

func (s *ControlServer) accept() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		s.wg.Go(func() { s.serve(conn) })
	}
}

func (s *ControlServer) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(conn, 256)).ReadString('\n')
	if err != nil && line == "" {
		return
	}
	var answer any
	switch cmd := strings.TrimSpace(line); cmd {
	case CmdStats:
		answer = s.e.Snapshot()
	case CmdReset:
		answer = s.e.Reset()
	default:
		answer = map[string]string{"error": fmt.Sprintf("unknown command %q (want %s or %s)", cmd, CmdStats, CmdReset)}
	}
	_ = json.NewEncoder(conn).Encode(answer)
}

// Close stops serving and removes the socket file.
func (s *ControlServer) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	if rmErr := os.Remove(s.path); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		err = errors.Join(err, rmErr)
	}
	return err
}

// Query sends cmd to the emulator serving the control socket sock.
func Query(ctx context.Context, sock, cmd string) (Snapshot, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return Snapshot{}, fmt.Errorf("slowpfs control %s: %w", sock, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := fmt.Fprintf(conn, "%s\n", cmd); err != nil {
		return Snapshot{}, fmt.Errorf("slowpfs control %s: send %q: %w", sock, cmd, err)
	}
	raw, err := io.ReadAll(conn)
	if err != nil {
		return Snapshot{}, fmt.Errorf("slowpfs control %s: read answer to %q: %w", sock, cmd, err)
	}
	var failure struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &failure) == nil && failure.Error != "" {
		return Snapshot{}, fmt.Errorf("slowpfs control %s: %s", sock, failure.Error)
	}
	var s Snapshot
	if err := json.Unmarshal(raw, &s); err != nil {
		return Snapshot{}, fmt.Errorf("slowpfs control %s: decode answer to %q: %w", sock, cmd, err)
	}
	return s, nil
}
