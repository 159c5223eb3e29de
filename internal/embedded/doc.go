// Package embedded owns the in-process stand-ins for MySQL and Redis used by `sluice dev`, so that the
// whole engine runs in one process with nothing installed.
//
// Both are reached exactly as production reaches the real servers: through TCP on 127.0.0.1, with the
// same drivers (go-sql-driver/mysql, go-redis), the same SQL and the same Lua. Only the DSN and the
// address differ; business code has no dev branches.
//
//   - StartMySQL runs go-mysql-server (dolthub) with in-memory databases. Its in-memory storage has no
//     concurrency control of its own (a transaction copies the tables it touches and writes them all
//     back at commit, so concurrent transactions overwrite each other). This package therefore runs
//     every statement and every explicit transaction under one server-wide lock: transactions are
//     serial, which makes conditional updates, SELECT … FOR UPDATE and SKIP LOCKED correct (there is
//     never another transaction's lock to wait for or to skip). A statement that waits longer than
//     LockWaitTimeout for the lock fails with MySQL error 1205, as InnoDB's lock wait timeout does.
//     The one behaviour this changes: while a connection holds a transaction open, every other
//     connection waits, plain readers included (InnoDB would let them read). Code that, inside a
//     transaction, waits for a query on another connection gets 1205 here.
//     Two more differences from MySQL are corrected here: duplicate-key errors name the key as MariaDB
//     does ("Duplicate entry '…' for key 'uq_…'", 1062), and `datetime ± INTERVAL n unit` keeps the
//     datetime's microseconds (go-mysql-server v0.20 drops them; see interval.go).
//     It is a development server: every statement that touches a table copies it, and every write
//     re-sorts its secondary indexes, so statements slow down as tables grow (about 100 withdrawals
//     created per second with a thousand rows, half that with two thousand).
//   - StartRedis runs miniredis, with key TTLs following the wall clock.
package embedded
