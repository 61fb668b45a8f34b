// Package net is copper's node-to-node RPC: a framed request/response
// protocol over cloudwego/netpoll event-loop connections. Each side reads
// a connection with one long-lived reader goroutine of its own. A Server
// answers a request on that reader when Config.Peek answers it from
// memory (a cached answer), and otherwise hands it to a Handler on a
// worker goroutine (workers wait for the next request instead of a
// goroutine per request), so pings and other requests never wait behind
// a handler; a Client multiplexes many concurrent Calls over one
// connection to one parent. Small frames handed to a
// connection while another is being written go out together in one write;
// a large one (file data) waits its turn instead of being copied. Netpoll's
// pooled buffers are kept small on both sides: writes reach it in pieces of
// at most 1 MiB, and a large Read or Chunk answer is copied out of its input
// buffer piece by piece (netpoll would otherwise size every later buffer of
// the connection by its largest frame, rounded up to a power of two).
// It knows nothing about caches or FUSE. Other packages import it as
//
//	cnet "github.com/hpc-copper/copper/net"
//
// # Wire format
//
// Every message is one frame: a 20-byte header followed by a payload.
// All integers are big-endian.
//
//	offset size field
//	0      2    magic "C\xCE"
//	2      1    version (5; 3 added dirplus, 4 file content in dirplus
//	            entries, 5 the server's endpoint in the handshake proofs;
//	            older peers are refused, the error names both)
//	3      1    kind
//	4      1    op (op.Op for request/response, 0 otherwise)
//	5      3    reserved, zero
//	8      8    request id (0 for handshake frames)
//	16     4    payload length
//
// The payload length is capped by Config.MaxFrame; a larger length closes
// the connection before anything is allocated for it.
//
// Kinds:
//
//	1 hello     server→client on connect; payload: nonce_s (32 random bytes)
//	2 auth      client→server; payload: nonce_c (32 random bytes) ||
//	            HMAC-SHA256(token, "copper client v2" || nonce_s || nonce_c)
//	3 auth-ok   server→client; payload:
//	            HMAC-SHA256(token, "copper server v2" || nonce_s || nonce_c);
//	            requests may follow
//	4 request   client→server; payload: the view path bytes
//	5 response  server→client; same op and id as the request; payload below
//	6 ping      client→server after auth-ok; op 0, empty; id = ping sequence
//	7 pong      server→client; answers a ping with its id, from the reader
//	            (never queued behind handlers)
//
// Heartbeat: a client with calls outstanding that has heard no frame for a
// quarter of Config.HeartbeatTimeout sends a ping; after the whole timeout
// without any frame it fails its calls with ErrHeartbeat (and ErrClosed),
// so a hung server is left within about the timeout, not at a call's
// deadline. An idle connection is never pinged.
//
// Response payload: errno u32; when it is non-zero nothing follows (the
// real errno travels unchanged, it is never collapsed to EIO). On success:
//
//	is_ready  ready u8 (0 or 1)
//	getattr   attr (84 bytes, below)
//	readdir   count u32, then per entry: mode u32, ino u64, name length u16, name
//	readlink  target length u32, target
//	read      attr, data length u32, data
//	dirplus   more u8 (0 or 1), count u32, then per entry: name length u16,
//	          name, attr, target flag u8 (0 or 1), and when 1: target
//	          length u32, target; data flag u8 (0 or 1), and when 1: data
//	          length u32, data (the whole content of a regular file, read
//	          under attr: its length must be attr's size)
//	dirplus_next  the same
//
// dirplus (op 6) asks for a directory's listing with every entry's lstat
// and, for a symlink, its text; dirplus_next (op 7) with path "/d/x" asks
// for the page of "/d" after name "x". Entries are strictly sorted by name
// (bytewise; a receiver binary-searches them to answer ENOENT for an absent
// name), and more = 1 says a page follows. The server's handler answers
// the whole listing (after the name, for dirplus_next); the server cuts it
// to a payload of at most min(Config.MaxFrame, MaxPlusPage = 1 MiB), at
// least one entry (file content counts toward it). Client.Call of dirplus asks dirplus_next after the last
// name it got until more = 0 and returns the whole listing; a page that
// does not start after that name is a protocol violation.
//
// Attr, 84 bytes: dev u64, ino u64, mode u32, nlink u32, uid u32, gid u32,
// rdev u64, size i64, blocks i64, blksize i32, atime i64, mtime i64,
// ctime i64 (times in nanoseconds since the Unix epoch).
//
// Directory entry names are 1..255 bytes without '/' or NUL and never "."
// or ".."; link targets are at most op.MaxPathLen bytes without NUL.
// Trailing bytes after a payload are an error.
//
// Authentication is mutual and required: Listen and Dial refuse a token
// shorter than MinTokenLen. The server closes a connection whose auth MAC
// is wrong; the client checks the auth-ok MAC before it sends any request,
// and a wrong one fails Dial with ErrAuthFailed naming the server's address
// (so a node fails over instead of taking answers from an impostor parent).
// MACs are compared in constant time; the labels keep the two directions
// apart, the two nonces bind each proof to one connection, and the
// server's endpoint — the address the client dialed; the server's own,
// Config.Endpoint or its Listen address — binds it to one node, so a relay
// to another node fails. A connection that has not authenticated within
// Config.DialTimeout is closed.
//
// The handshake authenticates the endpoints; frames after it are neither
// encrypted nor individually MAC'd (paths and file bytes travel in clear).
//
// A request whose path fails op.CheckPath is answered with that errno. Bad
// magic, an unknown version, kind or op, non-zero reserved bytes, a frame
// out of turn (anything but auth before auth-ok), or a truncated or
// inconsistent payload closes that one connection with a logged error; the
// server keeps serving the others.
package net
