package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// freeze_on_conflict defaults to true, reads true and false, and a non-boolean names its key.
func TestRecoveryFreezeOnConflict(t *testing.T) {
	c, err := Load("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pg, _ := c.Chain("polygon")
	amoy, _ := c.Chain("amoy")
	if pg.Recovery.FreezeOnConflict == nil || !pg.Recovery.FreezesOnConflict() || !amoy.Recovery.FreezesOnConflict() {
		t.Fatalf("polygon %+v, amoy %+v: want set true, and true by default", pg.Recovery, amoy.Recovery)
	}
	write := func(v string) string {
		p := filepath.Join(t.TempDir(), "c.yaml")
		body := "chains:\n  - name: x\n    chain_id: 5\n    rpc: [\"http://127.0.0.1:1\"]\n    recovery:\n      freeze_on_conflict: " + v + "\n"
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err = Load(write("false"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Chains[0].Recovery.FreezesOnConflict() {
		t.Fatal("freeze_on_conflict: false read as true")
	}
	if _, err := Load(write("sometimes")); err == nil || !strings.Contains(err.Error(), "chains[0].recovery.freeze_on_conflict") {
		t.Fatalf("bad value: %v, want the key named", err)
	}
}
