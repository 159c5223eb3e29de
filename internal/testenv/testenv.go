// Package testenv gives tests the real services `make test` starts (scripts/services.sh): a fresh,
// migrated MariaDB database per test, Redis, the SQS emulator, and an embedded EVM chain. A missing
// service fails the test with instructions; it never skips.
package testenv

import (
	"context"
	"crypto/ecdsa"
	"database/sql"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/sluice-custody/sluice/internal/devchain"
	"github.com/sluice-custody/sluice/internal/store"
)

func need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run the tests with `make test`, which starts MariaDB, Redis and the SQS emulator "+
			"(or `scripts/services.sh up DIR && . DIR/env` by hand)", name)
	}
	return v
}

var dbSeq atomic.Int64

// MySQLDSN creates an empty database for this test, dropped at cleanup, and returns its DSN.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	base := need(t, "SLUICE_TEST_MYSQL_DSN")
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("parse SLUICE_TEST_MYSQL_DSN: %v", err)
	}
	name := fmt.Sprintf("t_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, dbSeq.Add(1))
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("open mysql: %v", err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err == nil {
			_, _ = db.Exec("DROP DATABASE IF EXISTS " + name)
			db.Close()
		}
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// Store opens a fresh database with every migration applied.
func Store(t testing.TB) (*store.Store, string) {
	t.Helper()
	dsn := MySQLDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, dsn, 20)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s, dsn
}

// RedisAddr is the test Redis. Tests share it: use keys unique to the test (TestKeyPrefix).
func RedisAddr(t testing.TB) string { return need(t, "SLUICE_TEST_REDIS_ADDR") }

// Redis returns a client on the test Redis.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: RedisAddr(t)})
	t.Cleanup(func() { c.Close() })
	return c
}

// UniqueName returns a name no other test of any run uses, for Redis prefixes and queue names.
func UniqueName(t testing.TB) string {
	n := strings.NewReplacer("/", "-", " ", "-", "#", "-").Replace(t.Name())
	if len(n) > 30 {
		n = n[:30]
	}
	return fmt.Sprintf("%s-%d-%d", strings.ToLower(n), time.Now().UnixNano()%1e12, dbSeq.Add(1))
}

// SQSEndpoint is the SQS emulator's URL.
func SQSEndpoint(t testing.TB) string { return need(t, "SLUICE_TEST_SQS_ENDPOINT") }

// Account is a funded test account.
type Account struct {
	Key     *ecdsa.PrivateKey
	Address common.Address
}

// NewAccount makes a fresh key.
func NewAccount(t testing.TB) Account {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return Account{Key: k, Address: crypto.PubkeyToAddress(k.PublicKey)}
}

// Ether is n whole coins in wei.
func Ether(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1e18)) }

// Chain starts an embedded chain (chain id 31337) sealing a block every interval, with funded accounts
// getting 1,000,000 coins each, and stops it at cleanup.
func Chain(t testing.TB, interval time.Duration, funded ...common.Address) *devchain.Chain {
	t.Helper()
	alloc := types.GenesisAlloc{}
	for _, a := range funded {
		alloc[a] = types.Account{Balance: Ether(1_000_000)}
	}
	c, err := devchain.Start(devchain.Options{BlockInterval: interval, Alloc: alloc})
	if err != nil {
		t.Fatalf("start chain: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// FreeAddr is a loopback host:port nothing listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
