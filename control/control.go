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
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"
)

// SocketPath names the socket of the node serving mount. The mount path is
// hashed (xxhash) because unix socket paths are limited to 108 bytes.
func SocketPath(mount string) (string, error) {
	return runtimePath(mount, ".sock")
}

// runtimePath names a file of mount in the runtime directory.
func runtimePath(mount, ext string) (string, error) {
	abs, err := filepath.Abs(mount)
	if err != nil {
		return "", fmt.Errorf("mount %q: %w", mount, err)
	}
	return filepath.Join(RuntimeDir(), fmt.Sprintf("ctl-%016x%s", xxhash.Sum64String(filepath.Clean(abs)), ext)), nil
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

// Listen creates the socket (mode 0600, in the owner's 0700 runtime
// directory: only the owner controls the node; Serve checks each caller's
// uid too). A socket left by a dead node is replaced; one answered by a
// live node is an error naming the mount.
func Listen(mount string, log *slog.Logger) (*Server, error) {
	path, err := SocketPath(mount)
	if err != nil {
		return nil, err
	}
	if _, err := MakeRuntimeDir(); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("a copper node already serves mount %s (control socket %s)", mount, path)
	}
	_ = os.Remove(path)
	// Chmod after, not umask around: the umask is the whole process's,
	// and other goroutines create files and directories meanwhile. The
	// moment between is covered by the runtime directory's mode and by
	// Serve's check of the caller.
	ln, err := net.Listen("unix", path)
	if err == nil {
		if err = os.Chmod(path, 0o600); err != nil {
			ln.Close()
		}
	}
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
	if err := checkCaller(c); err != nil {
		s.log.Warn("control connection refused", "err", err)
		_ = json.NewEncoder(c).Encode(Response{Error: err.Error()})
		return
	}
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
	_, err := CallPID(ctx, mount, req, out)
	return err
}

// CallPID is Call that also returns the pid of the process serving the
// socket, as the kernel tells it (SO_PEERCRED), not as the answer claims.
// A socket served by another user is refused, as is a runtime directory
// that another user could have prepared.
func CallPID(ctx context.Context, mount string, req Request, out any) (int, error) {
	path, err := SocketPath(mount)
	if err != nil {
		return 0, err
	}
	if err := CheckRuntimeDir(); err != nil {
		return 0, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return 0, fmt.Errorf("mount %s: %w (control socket %s: %v)", mount, ErrNoNode, path, err)
	}
	defer c.Close()
	cred, err := peerCred(c)
	if err != nil {
		return 0, fmt.Errorf("mount %s: control socket %s: %w", mount, path, err)
	}
	if int(cred.Uid) != os.Geteuid() {
		return 0, fmt.Errorf("mount %s: control socket %s is served by uid %d (pid %d), not by you: refusing it", mount, path, cred.Uid, cred.Pid)
	}
	return int(cred.Pid), exchange(ctx, c, mount, req, out)
}

// exchange sends req on c and decodes the answer into out.
func exchange(ctx context.Context, c net.Conn, mount string, req Request, out any) error {
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

// peerCred asks the kernel who serves the other end of a unix socket.
func peerCred(c net.Conn) (*unix.Ucred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("not a unix socket: %T", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if credErr != nil {
		return nil, fmt.Errorf("peer credentials: %w", credErr)
	}
	return cred, nil
}

// checkCaller refuses a caller that is neither this node's user nor root,
// as the kernel names it (SO_PEERCRED): whatever the socket's mode came
// to be, another user can neither stop the node nor read its stats (the
// paths the job reads).
func checkCaller(c net.Conn) error {
	cred, err := peerCred(c)
	if err != nil {
		return fmt.Errorf("control connection: %w", err)
	}
	if uid := int(cred.Uid); uid != os.Geteuid() && uid != 0 {
		return fmt.Errorf("control connection from uid %d (pid %d) refused: only uid %d controls this node", uid, cred.Pid, os.Geteuid())
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
