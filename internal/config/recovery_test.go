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

// reorg_watch_blocks defaults to twice the confirmations and finality to depth; a window shorter than
// the confirmations, or an unknown finality, is refused naming its key.
func TestReorgWatchAndFinality(t *testing.T) {
	c, err := Load("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pg, _ := c.Chain("polygon")
	amoy, _ := c.Chain("amoy")
	if pg.Recovery.ReorgWatchBlocks != 24 || amoy.Recovery.ReorgWatchBlocks != 2*amoy.Confirmations {
		t.Fatalf("reorg_watch_blocks polygon %d, amoy %d (confirmations %d)", pg.Recovery.ReorgWatchBlocks, amoy.Recovery.ReorgWatchBlocks, amoy.Confirmations)
	}
	if pg.Finality != FinalityDepth || amoy.Finality != FinalityDepth || amoy.WaitsForFinalized() {
		t.Fatalf("finality polygon %q, amoy %q: want depth", pg.Finality, amoy.Finality)
	}
	load := func(extra string) (*Config, error) {
		p := filepath.Join(t.TempDir(), "c.yaml")
		body := "chains:\n  - name: x\n    chain_id: 5\n    confirmations: 4\n    rpc: [\"http://127.0.0.1:1\"]\n" + extra
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(p)
	}
	c, err = load("    finality: finalized\n    recovery:\n      reorg_watch_blocks: 50\n")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Chains[0].WaitsForFinalized() || c.Chains[0].Recovery.ReorgWatchBlocks != 50 {
		t.Fatalf("read %+v", c.Chains[0])
	}
	if c, err = load(""); err != nil || c.Chains[0].Recovery.ReorgWatchBlocks != 8 {
		t.Fatalf("default with 4 confirmations: %v %v", c, err)
	}
	for extra, key := range map[string]string{
		"    recovery:\n      reorg_watch_blocks: 3\n":      "chains[0].recovery.reorg_watch_blocks",
		"    recovery:\n      reorg_watch_blocks: 100001\n": "chains[0].recovery.reorg_watch_blocks",
		"    finality: safe\n":                              "chains[0].finality",
	} {
		if _, err := load(extra); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: %v, want %s named", extra, err, key)
		}
	}
}
