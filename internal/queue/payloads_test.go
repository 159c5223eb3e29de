package queue

import (
	"context"
	"testing"

	"github.com/sluice-custody/sluice/internal/txerr"
)

func TestDecode(t *testing.T) {
	good, _ := NewEnvelope(context.Background(), TypeTxSigned, "m1", "c1", TxSigned{SentTxID: 7, Chain: "local"})
	env, p, err := Decode[TxSigned](good, TypeTxSigned)
	if err != nil || p.SentTxID != 7 || env.CorrelationID != "c1" {
		t.Fatalf("decode: %+v %+v %v", env, p, err)
	}
	noRef, _ := NewEnvelope(context.Background(), TypeTxSigned, "m2", "c2", TxSigned{Chain: "local"})
	other, _ := NewEnvelope(context.Background(), TypeTxBroadcasted, "m3", "c3", TxBroadcasted{SentTxID: 1})
	for name, body := range map[string][]byte{
		"not json":     []byte("{"),
		"no reference": noRef,
		"wrong type":   other,
		"version 2":    []byte(`{"v":2,"type":"tx.signed","payload":{"sent_tx_id":1}}`),
		"bad payload":  []byte(`{"v":1,"type":"tx.signed","payload":"x"}`),
	} {
		if _, _, err := Decode[TxSigned](body, TypeTxSigned); err == nil || txerr.IsRetryable(err) || txerr.CodeOf(err) != "bad_message" {
			t.Errorf("%s: err %v, want a permanent bad_message", name, err)
		}
	}
}
