package chaos

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

func TestKeyScanFindsEveryFormAndNeverPrintsTheKey(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(0xa0 + i)
	}
	h := hex.EncodeToString(key)
	forms := map[string]string{
		"hex":              "msg=signing key=" + h,
		"0x hex":           `{"k":"0x` + h + `"}`,
		"upper hex":        "KEY " + strings.ToUpper(h),
		"0X upper hex":     "0X" + strings.ToUpper(h),
		"base64":           "k=" + base64.StdEncoding.EncodeToString(key),
		"base64 url raw":   "k=" + base64.RawURLEncoding.EncodeToString(key),
		"raw bytes in row": "\x00\x01" + string(key) + "\x02",
	}
	for name, data := range forms {
		var ks KeyScan
		s := keyScanner{forms: keyForms([]secretKey{{"hot wallet", key}}), out: &ks}
		s.scan("logs/signer-1.log", []byte("first line\n"+data+"\n"))
		if len(ks.Hits) == 0 {
			t.Errorf("%s: not found", name)
			continue
		}
		for _, hit := range ks.Hits {
			if !strings.Contains(hit, "hot wallet") || !strings.Contains(hit, "logs/signer-1.log line 2") {
				t.Errorf("%s: hit %q does not say which key and where", name, hit)
			}
			low := strings.ToLower(hit)
			if strings.Contains(low, h[:16]) || strings.Contains(hit, base64.RawStdEncoding.EncodeToString(key)[:16]) {
				t.Errorf("%s: hit %q prints the key", name, hit)
			}
		}
	}
	// Another key, the address, or half the key are not hits.
	var ks KeyScan
	s := keyScanner{forms: keyForms([]secretKey{{"funder", key}}), out: &ks}
	s.scan("table sent_transactions, row 1, column raw_tx", []byte(h[:40]+" "+base64.StdEncoding.EncodeToString(key[:16])))
	if len(ks.Hits) != 0 {
		t.Errorf("partial key material counted as hits: %v", ks.Hits)
	}
}
