package queue

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// TestEnvelopeCarriesTrace checks that an envelope sent under a span names it in traceparent, that the
// receiving side continues that trace, and that messages from before the field (or sent with tracing
// off) still decode, without one.
func TestEnvelopeCarriesTrace(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)

	body, err := NewEnvelope(ctx, TypeTxSigned, "m1", "c1", TxSigned{SentTxID: 7})
	if err != nil {
		t.Fatal(err)
	}
	env, _, err := Decode[TxSigned](body, TypeTxSigned)
	if err != nil || env.Traceparent != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("traceparent %q, %v", env.Traceparent, err)
	}
	got := trace.SpanContextFromContext(ExtractTrace(context.Background(), env.Traceparent))
	if got.TraceID() != tid || got.SpanID() != sid || !got.IsRemote() || !got.IsSampled() {
		t.Fatalf("extracted %+v", got)
	}

	untraced, _ := NewEnvelope(context.Background(), TypeTxSigned, "m2", "c2", TxSigned{SentTxID: 8})
	old := []byte(`{"v":1,"type":"tx.signed","id":"m3","correlation_id":"c3","created_at":"2026-01-01T00:00:00Z","payload":{"sent_tx_id":9}}`)
	for _, b := range [][]byte{untraced, old} {
		env, p, err := Decode[TxSigned](b, TypeTxSigned)
		if err != nil || env.Traceparent != "" || p.SentTxID == 0 {
			t.Fatalf("%s: %+v %+v %v", b, env, p, err)
		}
		if sc := trace.SpanContextFromContext(ExtractTrace(context.Background(), env.Traceparent)); sc.IsValid() {
			t.Fatalf("a message without traceparent gave a parent %v", sc)
		}
	}
	if sc := trace.SpanContextFromContext(ExtractTrace(context.Background(), "00-garbage")); sc.IsValid() {
		t.Fatalf("a malformed traceparent gave a parent %v", sc)
	}
}
