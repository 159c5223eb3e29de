package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-custody/sluice/internal/config"
)

// Instrumentation scope names of Sluice's tracers, one per package that makes spans.
const (
	ScopeAPI    = "github.com/sluice-custody/sluice/api"
	ScopeQueue  = "github.com/sluice-custody/sluice/internal/queue"
	ScopeChain  = "github.com/sluice-custody/sluice/internal/chain"
	ScopeStore  = "github.com/sluice-custody/sluice/internal/store"
	ScopeSigner = "github.com/sluice-custody/sluice/signer"
)

// OpenTracing builds the process's tracer provider from c: nil (tracing off) when c.Endpoint is
// empty, else an SDK provider batching spans to the OTLP/HTTP collector at c.Endpoint. Shut it down
// when the process ends, to flush what is batched.
func OpenTracing(ctx context.Context, c config.Tracing) (*sdktrace.TracerProvider, error) {
	if c.Endpoint == "" {
		return nil, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(c.Endpoint))
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter for %s: %w", c.Endpoint, err)
	}
	return NewTracerProvider(c, sdktrace.WithBatcher(exp)), nil
}

// NewTracerProvider is a provider with Sluice's resource and sampler (c.SampleRatio of new traces, a
// continued trace as its parent decided) and the given span processors (tests: an in-memory exporter).
func NewTracerProvider(c config.Tracing, opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	ratio, name := c.SampleRatio, c.ServiceName
	if ratio <= 0 {
		ratio = 1
	}
	if name == "" {
		name = "sluice"
	}
	res := resource.NewSchemaless(attribute.String("service.name", name))
	return sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	}, opts...)...)
}

// Tracer is tp's tracer for scope, or nil when tp is nil (tracing off: callers skip span work).
func Tracer(tp trace.TracerProvider, scope string) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(scope)
}
