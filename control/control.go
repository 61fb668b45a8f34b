// Package control is a node's local control endpoint: a unix socket found
// from the mount directory alone, so that `copper-node stats --mount DIR`
// and `stop` need nothing else. One JSON request and one JSON response per
// connection.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"
)

// RuntimeDir is where control sockets live: $XDG_RUNTIME_DIR/copper, or
// /tmp/copper-<uid>/run.
func RuntimeDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "copper")
	}
	return filepath.Join(os.TempDir(), "copper-"+strconv.Itoa(os.Getuid()), "run")
}

// SocketPath names the socket of the node serving mount. The mount path is
// hashed (xxhash) because unix socket paths are limited to 108 bytes.
func SocketPath(mount string) (string, error) {
	abs, err := filepath.Abs(mount)
	if err != nil {
		return "", fmt.Errorf("mount %q: %w", mount, err)
	}
	return filepath.Join(RuntimeDir(), fmt.Sprintf("ctl-%016x.sock", xxhash.Sum64String(filepath.Clean(abs)))), nil
}

// Request is one command.
type Request struct {
	Cmd  string            `json:"cmd"`
	Args map[string]string `json:"args,omitempty"`
}

// Response carries a command's result or its error.
type Response struct {
	Error string          `json:"error,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// Handler answers one request.
type Handler func(ctx context.Context, req Request) (any, error)

// Server serves a control socket.
type Server struct {
	ln   net.Listener
	path string
	wg   sync.WaitGroup
	log  *slog.Logger
}

// maxRequest bounds what a client may send.
const maxRequest = 64 << 10

// Listen creates the socket (mode 0600: only the owner controls the node).
// A socket left by a dead node is replaced; one answered by a live node is
// an error naming the mount.
func Listen(mount string, log *slog.Logger) (*Server, error) {
	path, err := SocketPath(mount)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("a copper node already serves mount %s (control socket %s)", mount, path)
	}
	_ = os.Remove(path)
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{ln: ln, path: path, log: log}, nil
}

// Path is the socket path.
func (s *Server) Path() string { return s.path }

// Serve answers requests until ctx ends or Close.
func (s *Server) Serve(ctx context.Context, h Handler) {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.serveConn(ctx, c, h)
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, c net.Conn, h Handler) {
	var req Request
	if err := json.NewDecoder(&limited{c, maxRequest}).Decode(&req); err != nil {
		s.log.Warn("bad control request", "err", err)
		_ = json.NewEncoder(c).Encode(Response{Error: "bad request: " + err.Error()})
		return
	}
	var resp Response
	data, err := h(ctx, req)
	if err != nil {
		resp.Error = err.Error()
	} else if data != nil {
		raw, err := json.Marshal(data)
		if err != nil {
			resp.Error = err.Error()
		}
		resp.Data = raw
	}
	_ = json.NewEncoder(c).Encode(resp)
}

// Close stops accepting, waits for requests being answered and removes
// the socket.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	_ = os.Remove(s.path)
	return err
}

// ErrNoNode says no node answers for a mount.
var ErrNoNode = errors.New("no copper node serves this mount")

// Call sends one request to the node serving mount and decodes its data
// into out (which may be nil).
func Call(ctx context.Context, mount string, req Request, out any) error {
	path, err := SocketPath(mount)
	if err != nil {
		return err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("mount %s: %w (control socket %s: %v)", mount, ErrNoNode, path, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return fmt.Errorf("mount %s: send %s: %w", mount, req.Cmd, err)
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return fmt.Errorf("mount %s: %s: no answer: %w", mount, req.Cmd, err)
	}
	if resp.Error != "" {
		return fmt.Errorf("mount %s: %s: %s", mount, req.Cmd, resp.Error)
	}
	if out != nil && len(resp.Data) > 0 {
		return json.Unmarshal(resp.Data, out)
	}
	return nil
}

type limited struct {
	c net.Conn
	n int
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("request too large")
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.c.Read(p)
	l.n -= n
	return n, err
}
