// Package alert is the one way Sluice tells a person that something needs them: a stuck transaction at
// its fee cap, a hot key used outside Sluice, a reorg beyond the confirmation depth, a parked DLQ
// message, a key that cannot be loaded. Every alert is a structured log line, a metric and, when
// configured, a webhook; an alert fires once per condition until it is resolved.
package alert

import "context"

// Severity orders alerts for the person reading them.
type Severity string

const (
	// Warning needs attention during working hours.
	Warning Severity = "warning"
	// Critical needs someone now: money may be at risk or a wallet has stopped.
	Critical Severity = "critical"
)

// Alert is one condition. Key identifies the condition for de-duplication (e.g.
// "stuck_at_cap:polygon:0xabc…:17"): firing the same Key again while it is open does nothing new, and
// Resolve(Key) closes it. Kind is a bounded name used as a metric label (stuck_at_cap, nonce_conflict,
// deep_reorg, dlq_parked, key_unavailable, insufficient_funds…); Labels hold only bounded values
// (chain, configured wallet address, queue) and Details anything useful to the reader (hashes,
// nonces, fees); no secret ever goes in either.
type Alert struct {
	Key      string
	Kind     string
	Severity Severity
	Summary  string
	Labels   map[string]string
	Details  map[string]any
}

// Notifier raises and clears alerts. Implementations must be safe for concurrent use and must not
// block the caller on a slow webhook.
type Notifier interface {
	Fire(ctx context.Context, a Alert)
	Resolve(ctx context.Context, key string)
}

// Nop drops every alert; for tests that do not look at alerts.
type Nop struct{}

// Fire does nothing.
func (Nop) Fire(context.Context, Alert) {}

// Resolve does nothing.
func (Nop) Resolve(context.Context, string) {}
