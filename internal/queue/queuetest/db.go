package queuetest

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/testenv"
)

// DB opens a fresh, migrated test database (testenv.MySQLDSN) with the driver's defaults: the server's
// default isolation (REPEATABLE READ), so the queue code is tested without relying on the session
// settings store.Open forces. The pool is closed at cleanup.
func DB(t testing.TB) *sql.DB {
	t.Helper()
	return DBWith(t, nil)
}

// DBWith is DB with extra session variables in the DSN (e.g. tx_isolation: "'READ-COMMITTED'").
func DBWith(t testing.TB, params map[string]string) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(testenv.MySQLDSN(t))
	if err != nil {
		t.Fatalf("parse dsn: %v", err)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	for k, v := range params {
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		cfg.Params[k] = v
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatalf("connector: %v", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(30)
	db.SetMaxIdleConns(30)
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := (&store.Store{DB: db}).Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}
