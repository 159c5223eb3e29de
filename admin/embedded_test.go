package admin

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-custody/sluice/internal/embedded"
	"github.com/sluice-custody/sluice/internal/store"
)

// TestOnDevModeServers runs the framework on the embedded MySQL-protocol server and Redis `sluice dev`
// uses (go-mysql-server, miniredis): login, a two-person action approved by another approver, and the
// audit chain verified.
func TestOnDevModeServers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	my, err := embedded.StartMySQL(ctx, embedded.MySQLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { my.Close() })
	rs, err := embedded.StartRedis(embedded.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	st, err := store.Open(ctx, my.DSN(), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	e := newEnvOn(t, st, rdb)
	opw := e.addOperator("oscar", RoleOperator)
	apw := e.addOperator("amy", RoleApprover)
	oscar := bearer(e.login("oscar", opw).AccessToken)
	amy := bearer(e.login("amy", apw).AccessToken)
	e.want(e.do("POST", "/admin/v1/auth/login", auth{}, LoginRequest{Username: "amy", Password: "wrong-password-1"}), 401, CodeUnauthorized)
	req := ActionRequest{Action: "test.poke", Target: "w", Params: map[string]string{"two": "true"}, RequestID: "dev-1"}
	e.want(e.do("POST", "/admin/v1/actions", oscar, req), 202, "")
	var list []Approval
	e.do("GET", "/admin/v1/approvals", amy, nil).json(t, &list)
	if len(list) != 1 {
		t.Fatalf("approvals %+v", list)
	}
	e.want(e.do("POST", "/admin/v1/approvals/"+list[0].ID+"/approve", oscar, nil), 403, CodeForbidden)
	e.want(e.do("POST", "/admin/v1/approvals/"+list[0].ID+"/approve", amy, nil), 200, "")
	e.want(e.do("POST", "/admin/v1/actions", oscar, req), 200, "")
	if n := e.fake.count("dev-1"); n != 1 {
		t.Errorf("Do called %d times", n)
	}
	var v AuditVerify
	e.do("GET", "/admin/v1/audit/verify", amy, nil).json(t, &v)
	if !v.OK || v.Rows < 6 {
		t.Errorf("verify: %+v", v)
	}
	if _, err := st.DB.Exec(`UPDATE audit_log SET operator = 'mallory' WHERE id = 3`); err != nil {
		t.Fatal(err)
	}
	if v, err := VerifyAudit(ctx, st); err != nil || v.OK || v.FirstBrokenID != 3 {
		t.Errorf("verify after an edit: %+v %v", v, err)
	}
}
