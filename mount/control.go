package mount

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ufs"
)

// The control channel: the one way into a live mount from outside it. A
// mount serves a Unix socket and leaves a record of itself (mount point,
// target, the target's device and inode numbers, the socket) in the
// registry directory, so that a command given the mount point or the
// image finds the mount and goes through it, never around it. Requests
// and replies are single lines of JSON carrying the protocol version;
// only root and the user who mounted may ask (the peer's credentials, as
// the kernel gives them, are checked). Its users: snapshots of the live
// filesystem now; background fsck's corrections, dump -L, migration and
// shadow status next.

// ControlVersion is the protocol's version; a request of another version
// gets an error reply.
const ControlVersion = 1

// ErrControl: a control request failed (the reply's error says why).
var ErrControl = errors.New("mount: control request failed")

// Request is one control request.
type Request struct {
	Version int             `json:"version"`
	Op      string          `json:"op"`
	Args    json.RawMessage `json:"args,omitempty"`
}

// Reply answers one Request.
type Reply struct {
	Version int             `json:"version"`
	OK      bool            `json:"ok"`
	Error   string          `json:"error,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
}

// MountRecord is what the registry holds of one live mount.
type MountRecord struct {
	Version    int    `json:"version"`
	MountPoint string `json:"mountpoint"`
	Target     string `json:"target"`
	Dev        uint64 `json:"dev"` // the target's st_dev and st_ino
	Ino        uint64 `json:"ino"`
	PID        int    `json:"pid"`
	UID        int    `json:"uid"`
	Socket     string `json:"socket"`
}

// RegistryDir is where live mounts leave their records and sockets:
// /run/ufs2 for root, else $XDG_RUNTIME_DIR/ufs2, else the temporary
// directory's ufs2-UID.
func RegistryDir() string {
	if os.Geteuid() == 0 {
		return "/run/ufs2"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "ufs2")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("ufs2-%d", os.Geteuid()))
}

// control is a mount's control server.
type control struct {
	m      *mountFS
	ln     net.Listener
	rec    MountRecord
	recPth string
	wg     sync.WaitGroup
	uid    int
}

// startControl serves the control socket of the mount at dir, of target.
func startControl(m *mountFS, dir, target string) (*control, error) {
	reg := RegistryDir()
	if err := os.MkdirAll(reg, 0o700); err != nil {
		return nil, fmt.Errorf("control channel: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(abs))
	id := hex.EncodeToString(sum[:8])
	sock := filepath.Join(reg, id+".sock")
	os.Remove(sock) // a stale socket of a mount that died
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("control channel: %w", err)
	}
	os.Chmod(sock, 0o600)
	rec := MountRecord{Version: ControlVersion, MountPoint: abs, PID: os.Getpid(), UID: os.Getuid(), Socket: sock}
	if target != "" {
		if t, err := filepath.Abs(target); err == nil {
			rec.Target = t
		}
		var st unix.Stat_t
		if unix.Stat(target, &st) == nil {
			rec.Dev, rec.Ino = st.Dev, st.Ino
		}
	}
	c := &control{m: m, ln: ln, rec: rec, recPth: filepath.Join(reg, id+".json"), uid: os.Getuid()}
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(c.recPth, b, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control channel: %w", err)
	}
	c.wg.Add(1)
	go c.serve()
	return c, nil
}

// stop closes the socket and removes the record.
func (c *control) stop() {
	c.ln.Close()
	c.wg.Wait()
	os.Remove(c.recPth)
	os.Remove(c.rec.Socket)
}

func (c *control) serve() {
	defer c.wg.Done()
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer conn.Close()
			c.handle(conn.(*net.UnixConn))
		}()
	}
}

// allowed reports whether a peer of uid may use the channel.
func (c *control) allowed(uid int) bool { return uid == 0 || uid == c.uid }

func (c *control) handle(conn *net.UnixConn) {
	enc := json.NewEncoder(conn)
	reply := func(v any, err error) {
		r := Reply{Version: ControlVersion, OK: err == nil}
		if err != nil {
			r.Error = err.Error()
		} else if v != nil {
			r.Result, _ = json.Marshal(v)
		}
		enc.Encode(r)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		return
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) { cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if err != nil || !c.allowed(int(cred.Uid)) {
		reply(nil, errors.New("permission denied: only root and the user who mounted may use the mount's control channel"))
		return
	}
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var req Request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			reply(nil, fmt.Errorf("bad request: %v", err))
			return
		}
		if req.Version != ControlVersion {
			reply(nil, fmt.Errorf("protocol version %d not served (this mount speaks %d): use the ufs2 that mounted it", req.Version, ControlVersion))
			continue
		}
		reply(c.do(req))
	}
}

// MaxRead bounds one snapshot.read.
const MaxRead = 4 << 20

// ReadArgs asks for Len bytes at Off of the frozen image of snapshot Name.
type ReadArgs struct {
	Name string `json:"name"`
	Off  int64  `json:"off"`
	Len  int    `json:"len"`
}

// SnapshotArgs names a snapshot.
type SnapshotArgs struct {
	Name string `json:"name"`
}

// do runs one request.
func (c *control) do(req Request) (any, error) {
	m := c.m
	switch req.Op {
	case "hello":
		return c.rec, nil
	case "snapshot.list":
		fsys, ok := m.eng.(*ufs.FS)
		if !ok {
			return nil, errors.New("this mount's engine has no snapshots")
		}
		return fsys.Snapshots()
	case "snapshot.read":
		var a ReadArgs
		if err := json.Unmarshal(req.Args, &a); err != nil || a.Name == "" || a.Len < 0 || a.Len > MaxRead {
			return nil, fmt.Errorf("give the snapshot's name and at most %d bytes to read", MaxRead)
		}
		fsys, ok := m.eng.(*ufs.FS)
		if !ok {
			return nil, errors.New("this mount's engine has no snapshots")
		}
		s, err := fsys.SnapshotByName(a.Name)
		if err != nil {
			return nil, err
		}
		// Read through the engine, under the snapshot's lock: a copy
		// made meanwhile is either seen or not yet needed.
		buf := make([]byte, a.Len)
		n, err := fsys.ReadAt(s.Ino, buf, a.Off)
		if err != nil && n < len(buf) {
			return nil, err
		}
		return buf[:n], nil
	case "snapshot.create", "snapshot.delete":
		var a SnapshotArgs
		if err := json.Unmarshal(req.Args, &a); err != nil || a.Name == "" {
			return nil, errors.New("give the snapshot's name")
		}
		fsys, ok := m.eng.(*ufs.FS)
		if !ok || m.weng == nil {
			return nil, errors.New("the mount is read-only: a snapshot needs a read-write mount")
		}
		// Writers are held off for the creation (FreeBSD suspends the
		// filesystem); reads go on.
		m.writes.Lock()
		defer m.writes.Unlock()
		if req.Op == "snapshot.delete" {
			return nil, fsys.DeleteSnapshot(a.Name)
		}
		return fsys.CreateSnapshot(a.Name)
	}
	return nil, fmt.Errorf("unknown request %q", req.Op)
}

// FindMount returns the record of the live mount of target: a mount point,
// or the image or device a mount holds. ok is false when none has it.
func FindMount(target string) (MountRecord, bool) {
	abs, err := filepath.Abs(target)
	if err != nil {
		return MountRecord{}, false
	}
	var st unix.Stat_t
	haveSt := unix.Stat(target, &st) == nil
	files, _ := filepath.Glob(filepath.Join(RegistryDir(), "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var rec MountRecord
		if json.Unmarshal(b, &rec) != nil {
			continue
		}
		if unix.Kill(rec.PID, 0) != nil && !errors.Is(unix.Kill(rec.PID, 0), unix.EPERM) {
			continue // its mount is gone
		}
		if rec.MountPoint == abs || rec.Target == abs || haveSt && rec.Ino != 0 && rec.Dev == st.Dev && rec.Ino == st.Ino {
			return rec, true
		}
	}
	return MountRecord{}, false
}

// Call sends one request to the mount of rec and decodes its result into
// out (nil: ignored).
func Call(rec MountRecord, op string, args, out any) error {
	conn, err := net.Dial("unix", rec.Socket)
	if err != nil {
		return fmt.Errorf("%w: the mount of %s: %w", ErrControl, rec.MountPoint, err)
	}
	defer conn.Close()
	req := Request{Version: ControlVersion, Op: op}
	if args != nil {
		if req.Args, err = json.Marshal(args); err != nil {
			return err
		}
	}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return fmt.Errorf("%w: %w", ErrControl, err)
	}
	var r Reply
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&r); err != nil {
		return fmt.Errorf("%w: reading the reply of the mount of %s: %w", ErrControl, rec.MountPoint, err)
	}
	if !r.OK {
		return fmt.Errorf("%w: %s", ErrControl, r.Error)
	}
	if out != nil && len(r.Result) > 0 {
		return json.Unmarshal(r.Result, out)
	}
	return nil
}

// Client is a connection to a mount's control channel for many requests.
type Client struct {
	rec  MountRecord
	mu   sync.Mutex
	conn net.Conn
	enc  *json.Encoder
	dec  *json.Decoder
}

// Dial connects to the control channel of the mount of rec.
func Dial(rec MountRecord) (*Client, error) {
	conn, err := net.Dial("unix", rec.Socket)
	if err != nil {
		return nil, fmt.Errorf("%w: the mount of %s: %w", ErrControl, rec.MountPoint, err)
	}
	return &Client{rec: rec, conn: conn, enc: json.NewEncoder(conn), dec: json.NewDecoder(bufio.NewReader(conn))}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Call sends one request and decodes its result into out (nil: ignored).
func (c *Client) Call(op string, args, out any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	req := Request{Version: ControlVersion, Op: op}
	if args != nil {
		var err error
		if req.Args, err = json.Marshal(args); err != nil {
			return err
		}
	}
	if err := c.enc.Encode(req); err != nil {
		return fmt.Errorf("%w: %w", ErrControl, err)
	}
	var r Reply
	if err := c.dec.Decode(&r); err != nil {
		return fmt.Errorf("%w: reading the reply of the mount of %s: %w", ErrControl, c.rec.MountPoint, err)
	}
	if !r.OK {
		return fmt.Errorf("%w: %s", ErrControl, r.Error)
	}
	if out != nil && len(r.Result) > 0 {
		return json.Unmarshal(r.Result, out)
	}
	return nil
}

// SnapshotDevice is the frozen image of snapshot name of a live mount,
// read through its control channel, as a read-only device (dump -L).
func (c *Client) SnapshotDevice(name string, size int64) blockdev.Device {
	return &remoteSnap{c: c, name: name, size: size}
}

type remoteSnap struct {
	c    *Client
	name string
	size int64
}

func (d *remoteSnap) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > d.size {
		return 0, fmt.Errorf("%w: %d bytes at %d of a %d-byte snapshot", blockdev.ErrOutOfRange, len(p), off, d.size)
	}
	done := 0
	for done < len(p) {
		n := min(len(p)-done, MaxRead)
		var b []byte
		if err := d.c.Call("snapshot.read", ReadArgs{Name: d.name, Off: off + int64(done), Len: n}, &b); err != nil {
			return done, err
		}
		copy(p[done:], b)
		if len(b) < n {
			return done + len(b), fmt.Errorf("%w: short read of the snapshot at %d", ErrControl, off+int64(done+len(b)))
		}
		done += n
	}
	return done, nil
}

func (d *remoteSnap) WriteAt([]byte, int64) (int, error) {
	return 0, fmt.Errorf("%w: snapshot %s through the mount", blockdev.ErrReadOnly, d.name)
}
func (d *remoteSnap) Size() int64    { return d.size }
func (d *remoteSnap) Sync() error    { return nil }
func (d *remoteSnap) Close() error   { return nil }
func (d *remoteSnap) ReadOnly() bool { return true }
func (d *remoteSnap) Name() string {
	return fmt.Sprintf("snapshot %s of %s", d.name, d.c.rec.MountPoint)
}
