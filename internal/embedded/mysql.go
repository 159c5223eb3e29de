package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	sqle "github.com/dolthub/go-mysql-server"
	"github.com/dolthub/go-mysql-server/memory"
	"github.com/dolthub/go-mysql-server/server"
	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/sqltypes"
	querypb "github.com/dolthub/vitess/go/vt/proto/query"
	driver "github.com/go-sql-driver/mysql"
	"github.com/sirupsen/logrus"
)

// MySQLOptions configure StartMySQL; the zero value gives an empty database "sluice" on a free port of
// 127.0.0.1.
type MySQLOptions struct {
	// Addr is host:port to listen on; "" means 127.0.0.1 with a free port.
	Addr string
	// Database is created empty at start and named in DSN (default "sluice"). Clients may create and
	// drop more databases with SQL.
	Database string
	// LockWaitTimeout bounds how long a statement waits for another connection's transaction to end
	// before failing with error 1205 (default 20 s). Transactions are serial here: a connection that
	// holds a transaction open blocks every other connection, readers included, until it commits.
	LockWaitTimeout time.Duration
	// Verbose keeps go-mysql-server's own logging (logrus, process-wide) at Info. By default StartMySQL
	// lowers the standard logrus logger to errors only: the server logs every failed query otherwise,
	// and duplicate keys are expected.
	Verbose bool
}

// MySQL is a running in-process MySQL-compatible server (go-mysql-server with in-memory storage).
type MySQL struct {
	srv      *server.Server
	pro      *memory.DbProvider
	addr     string
	database string
	lock     *txLock
	wait     time.Duration

	sessMu   sync.Mutex
	sessions map[uint32]*memory.Session

	closeOnce sync.Once
	served    chan struct{}
}

// StartMySQL starts the server and returns once it accepts connections.
func StartMySQL(ctx context.Context, opts MySQLOptions) (*MySQL, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Database == "" {
		opts.Database = "sluice"
	}
	if opts.LockWaitTimeout <= 0 {
		opts.LockWaitTimeout = 20 * time.Second
	}
	if !opts.Verbose {
		logrus.SetLevel(logrus.ErrorLevel)
	}
	// Native indexes: without them the memory tables have no primary-key index, and a FOREIGN KEY
	// referencing a primary key (the migrations have several) fails to create.
	pro, ok := memory.NewDBProviderWithOpts(memory.NativeIndexProvider(true)).(*memory.DbProvider)
	if !ok {
		return nil, errors.New("embedded mysql: unexpected memory provider type")
	}
	if err := pro.CreateDatabase(sql.NewContext(ctx), opts.Database); err != nil {
		return nil, fmt.Errorf("embedded mysql: create database %s: %w", opts.Database, err)
	}
	engine := sqle.NewDefault(pro)

	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("embedded mysql: listen on %s: %w", opts.Addr, err)
	}
	m := &MySQL{
		pro:      pro,
		addr:     l.Addr().String(),
		database: opts.Database,
		lock:     newTxLock(),
		wait:     opts.LockWaitTimeout,
		sessions: map[uint32]*memory.Session{},
		served:   make(chan struct{}),
	}
	newSession := memory.NewSessionBuilder(pro)
	builder := func(ctx context.Context, c *mysql.Conn, addr string) (sql.Session, error) {
		s, err := newSession(ctx, c, addr)
		if err != nil {
			return nil, err
		}
		if ms, ok := s.(*memory.Session); ok {
			m.sessMu.Lock()
			m.sessions[c.ConnectionID] = ms
			m.sessMu.Unlock()
		}
		return s, nil
	}
	cfg := server.Config{Protocol: "tcp", Address: m.addr, Listener: l}
	m.srv, err = server.NewServerWithHandler(cfg, engine, sql.NewContext, builder, nil,
		func(h mysql.Handler) (mysql.Handler, error) { return &serialHandler{Handler: h, m: m}, nil })
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("embedded mysql: %w", err)
	}
	go func() {
		defer close(m.served)
		_ = m.srv.Start()
	}()
	return m, nil
}

// Addr is the host:port the server listens on.
func (m *MySQL) Addr() string { return m.addr }

// Database is the database created at start.
func (m *MySQL) Database() string { return m.database }

// DSN is a go-sql-driver DSN for the database created at start (user root, no password), for
// store.Open.
func (m *MySQL) DSN() string { return m.DSNFor(m.database) }

// DSNFor is DSN for another database of this server ("" for none).
func (m *MySQL) DSNFor(database string) string {
	cfg := driver.NewConfig()
	cfg.User = "root"
	cfg.Net = "tcp"
	cfg.Addr = m.addr
	cfg.DBName = database
	return cfg.FormatDSN()
}

// Close stops accepting connections and closes the listener. The data is gone.
func (m *MySQL) Close() error {
	m.closeOnce.Do(func() {
		_ = m.srv.Close()
		<-m.served
	})
	return nil
}

func (m *MySQL) session(id uint32) *memory.Session {
	m.sessMu.Lock()
	defer m.sessMu.Unlock()
	return m.sessions[id]
}

// endStatement runs after every command of connection id: the connection keeps the lock while it is
// inside a transaction (BEGIN … COMMIT, or autocommit off) and gives it up otherwise. An autocommit
// statement that failed leaves go-mysql-server's implicit transaction open with the table copies it
// took; it is rolled back here, or the next statement would run on (and commit) stale copies.
func (m *MySQL) endStatement(id uint32) {
	if s := m.session(id); s != nil {
		ctx := sql.NewContext(context.Background(), sql.WithSession(s))
		if tx := s.GetTransaction(); tx != nil {
			if inTransaction(ctx, s) {
				return
			}
			_ = s.Rollback(ctx, tx)
			s.SetTransaction(nil)
		}
	}
	m.lock.release(id)
}

func inTransaction(ctx *sql.Context, s *memory.Session) bool {
	if s.GetIgnoreAutoCommit() {
		return true // START TRANSACTION / BEGIN until COMMIT or ROLLBACK
	}
	v, err := s.GetSessionVariable(ctx, "autocommit")
	if err != nil {
		return false
	}
	on, err := sql.ConvertToBool(ctx, v)
	return err == nil && !on
}

// txLock is the server-wide lock: one connection at a time runs a statement or holds a transaction.
type txLock struct {
	sem   chan struct{}
	mu    sync.Mutex
	owner uint32
	held  bool
}

func newTxLock() *txLock { return &txLock{sem: make(chan struct{}, 1)} }

var errLockWait = mysql.NewSQLError(mysql.ERLockWaitTimeout, "HY000", "Lock wait timeout exceeded; try restarting transaction")

func (l *txLock) acquire(ctx context.Context, id uint32, wait time.Duration) error {
	l.mu.Lock()
	if l.held && l.owner == id {
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case l.sem <- struct{}{}:
	case <-t.C:
		return errLockWait
	case <-ctx.Done():
		return ctx.Err()
	}
	l.mu.Lock()
	l.owner, l.held = id, true
	l.mu.Unlock()
	return nil
}

func (l *txLock) release(id uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held || l.owner != id {
		return
	}
	l.held = false
	<-l.sem
}

// serialHandler puts every command that can touch data under the server-wide lock.
type serialHandler struct {
	mysql.Handler
	m *MySQL
}

func (h *serialHandler) ComQuery(ctx context.Context, c *mysql.Conn, query string, callback mysql.ResultSpoolFn) error {
	if err := h.m.lock.acquire(ctx, c.ConnectionID, h.m.wait); err != nil {
		return err
	}
	defer h.m.endStatement(c.ConnectionID)
	return h.m.fixDuplicate(c.ConnectionID, query, h.Handler.ComQuery(ctx, c, query, callback))
}

func (h *serialHandler) ComMultiQuery(ctx context.Context, c *mysql.Conn, query string, callback mysql.ResultSpoolFn) (string, error) {
	if err := h.m.lock.acquire(ctx, c.ConnectionID, h.m.wait); err != nil {
		return "", err
	}
	defer h.m.endStatement(c.ConnectionID)
	rest, err := h.Handler.ComMultiQuery(ctx, c, query, callback)
	return rest, h.m.fixDuplicate(c.ConnectionID, query, err)
}

func (h *serialHandler) ComPrepare(ctx context.Context, c *mysql.Conn, query string, prepare *mysql.PrepareData) ([]*querypb.Field, error) {
	if err := h.m.lock.acquire(ctx, c.ConnectionID, h.m.wait); err != nil {
		return nil, err
	}
	defer h.m.endStatement(c.ConnectionID)
	return h.Handler.ComPrepare(ctx, c, query, prepare)
}

func (h *serialHandler) ComStmtExecute(ctx context.Context, c *mysql.Conn, prepare *mysql.PrepareData, callback func(*sqltypes.Result) error) error {
	if err := h.m.lock.acquire(ctx, c.ConnectionID, h.m.wait); err != nil {
		return err
	}
	defer h.m.endStatement(c.ConnectionID)
	return h.m.fixDuplicate(c.ConnectionID, prepare.PrepareStmt, h.Handler.ComStmtExecute(ctx, c, prepare, callback))
}

func (h *serialHandler) ComResetConnection(c *mysql.Conn) error {
	if err := h.m.lock.acquire(context.Background(), c.ConnectionID, h.m.wait); err != nil {
		return err
	}
	defer h.m.endStatement(c.ConnectionID)
	return h.Handler.ComResetConnection(c)
}

// ConnectionClosed drops the connection's session (an open transaction is never committed) and its
// hold on the lock.
func (h *serialHandler) ConnectionClosed(c *mysql.Conn) {
	h.Handler.ConnectionClosed(c)
	h.m.sessMu.Lock()
	delete(h.m.sessions, c.ConnectionID)
	h.m.sessMu.Unlock()
	h.m.lock.release(c.ConnectionID)
}
