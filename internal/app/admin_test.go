package app

import (
	"strings"
	"testing"

	"github.com/sluice-custody/sluice/internal/config"
)

// TestAdminNeedsItsKey: with the admin listener on, the API does not start without a JWT key of at
// least 32 bytes, and the error names the variable to set; off, no key is needed.
func TestAdminNeedsItsKey(t *testing.T) {
	cfg := &config.Config{}
	if err := cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	cfg.API.AdminJWTKeyEnv = "SLUICE_TEST_ADMIN_KEY_UNSET"
	a := &App{Cfg: cfg}
	for _, key := range []string{"", "too-short-key"} {
		t.Setenv("SLUICE_TEST_ADMIN_KEY_UNSET", key)
		_, err := a.adminWorker(nil)
		if err == nil || !strings.Contains(err.Error(), "SLUICE_TEST_ADMIN_KEY_UNSET") || !strings.Contains(err.Error(), "32 bytes") {
			t.Errorf("key %q: %v, want an error naming the variable", key, err)
		}
	}
	cfg.API.AdminListen = config.AdminOff
	if w, err := a.adminWorker(nil); w != nil || err != nil {
		t.Errorf("admin_listen off: %v %v", w != nil, err)
	}
}
