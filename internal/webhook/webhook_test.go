package webhook

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestInternalAddresses(t *testing.T) {
	for _, c := range []struct {
		ip   string
		want bool
	}{
		{"127.0.0.1", true}, {"127.8.9.10", true}, {"::1", true}, {"10.0.0.1", true}, {"172.16.0.1", true},
		{"172.31.255.255", true}, {"192.168.1.1", true}, {"169.254.169.254", true}, {"fe80::1", true},
		{"fd00::1", true}, {"0.0.0.0", true}, {"::", true}, {"100.64.0.1", true}, {"224.0.0.1", true},
		{"::ffff:127.0.0.1", true}, {"::ffff:10.1.1.1", true},
		{"8.8.8.8", false}, {"172.32.0.1", false}, {"2606:4700::1111", false}, {"100.128.0.1", false},
	} {
		if got := internal(netip.MustParseAddr(c.ip)); got != c.want {
			t.Errorf("internal(%s) = %v, want %v", c.ip, got, c.want)
		}
	}
}

func TestSignFormat(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	h := Sign(at, []byte(`{}`), "new", "", "old")
	parts := strings.Split(h, ",")
	if len(parts) != 3 || parts[0] != "t=1800000000" || !strings.HasPrefix(parts[1], "v1=") || len(parts[1]) != 3+64 || parts[1] == parts[2] {
		t.Fatalf("header %s", h)
	}
	if Sign(at, []byte(`{}`), "new") != parts[0]+","+parts[1] {
		t.Fatal("the current secret's signature comes first and does not depend on the others")
	}
}
