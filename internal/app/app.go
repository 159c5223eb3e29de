// Package app owns wiring: it opens the configured backends (database, Redis, queue, nodes, keys) and
// builds each service's workers from them, so that `sluice <service>`, `sluice all`, `sluice dev` and
// the end-to-end tests run the very same code.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-custody/sluice/api"
	"github.com/sluice-custody/sluice/broadcaster"
	"github.com/sluice-custody/sluice/internal/alert"
	"github.com/sluice-custody/sluice/internal/chain"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/keys"
	"github.com/sluice-custody/sluice/internal/keys/source"
	"github.com/sluice-custody/sluice/internal/nonce"
	"github.com/sluice-custody/sluice/internal/policy"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/queue/mysqlq"
	"github.com/sluice-custody/sluice/internal/queue/outbox"
	"github.com/sluice-custody/sluice/internal/queue/sqsq"
	"github.com/sluice-custody/sluice/internal/service"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/telemetry"
	"github.com/sluice-custody/sluice/internal/webhook"
	"github.com/sluice-custody/sluice/monitor"
	"github.com/sluice-custody/sluice/signer"
)

// App holds the opened backends and the process's metrics registry.
type App struct {
	Cfg    *config.Config
	Log    *slog.Logger
	Store  *store.Store
	Queue  queue.Queue
	Sender queue.TxSender
	relay  *outbox.Relay // nil when the queue is the database itself
	Redis  *redis.Client
	Nonces *nonce.Allocator
	Keys   keys.Provider
	keySet *source.Set // the key sources OpenKeys opened, wiped on Close
	Chains map[string]*chain.Client

	// Registry is the process's one metrics registry: every service run by this App registers on it,
	// and /metrics (the service's health port, or the API's) serves it. Each service's metrics carry
	// its name (sluice_<service>_…), so `sluice all` shows them side by side without collisions.
	Registry     *prometheus.Registry
	queueMetrics queue.Metrics // shared by the process's consumers: the queue is a label
	metricsMu    sync.Mutex
	metrics      map[string]any // service name → its Metrics, registered once per process
	hub          *alert.Hub     // the process's alert notifier, made by Alerts on first use
	hubState

	// AdminJWTKey, when set, signs the admin API's tokens instead of the variable api.admin_jwt_key_env
	// names (`sluice dev` generates one).
	AdminJWTKey []byte

	// TracerProvider makes the process's spans; nil when tracing is off (tracing.endpoint empty).
	TracerProvider trace.TracerProvider
	closeTracing   func(context.Context) error // flushes the provider Open made; nil otherwise

	noPolicy bool // WithoutPolicy: the API admits every valid request (tools/bench's baseline)
}

// Option changes how Open builds an App.
type Option func(*App)

// WithTracerProvider makes the App trace with tp instead of the provider tracing.endpoint configures
// (tests hand in one with an in-memory exporter). The caller shuts tp down.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(a *App) { a.TracerProvider = tp }
}

// WithoutPolicy runs the API with no policy engine: no limits, lists, approvals or recipient checks.
// Only tools/bench uses it, to measure what the policy costs the intake against the same stack without it.
func WithoutPolicy() Option {
	return func(a *App) { a.noPolicy = true }
}

// Open connects to everything cfg names. Keys are opened only for services that sign.
func Open(ctx context.Context, cfg *config.Config, log *slog.Logger, opts ...Option) (*App, error) {
	a := &App{Cfg: cfg, Log: log, Chains: map[string]*chain.Client{}, Registry: NewRegistry(), metrics: map[string]any{}}
	for _, o := range opts {
		o(a)
	}
	a.queueMetrics = queue.NewMetrics(a.Registry)
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	if a.TracerProvider == nil {
		tp, err := telemetry.OpenTracing(ctx, cfg.Tracing)
		if err != nil {
			return nil, err
		}
		if tp != nil {
			a.TracerProvider, a.closeTracing = tp, tp.Shutdown
		}
	}
	var err error
	if a.Store, err = store.Open(ctx, cfg.Database.DSN, cfg.Database.MaxOpenConns,
		store.WithObserver(telemetry.NewTransitions(a.Registry)),
		store.WithTracer(telemetry.Tracer(a.TracerProvider, telemetry.ScopeStore))); err != nil {
		return nil, err
	}
	switch cfg.Queue.Backend {
	case "mysql":
		q := mysqlq.New(a.Store.DB, mysqlq.Options{})
		a.Queue, a.Sender = q, q
	case "sqs":
		sc := sqsq.Config{Region: cfg.Queue.SQS.Region, Endpoint: cfg.Queue.SQS.Endpoint, Prefix: cfg.Queue.SQS.Prefix,
			VisibilityTimeout: cfg.Queue.VisibilityTimeout.Duration}
		if sc.Endpoint != "" && os.Getenv("AWS_ACCESS_KEY_ID") == "" {
			// A local emulator wants signed requests but checks no credentials.
			sc.AccessKeyID, sc.SecretAccessKey = "local", "local"
		}
		q, err := sqsq.New(ctx, sc)
		if err != nil {
			return nil, err
		}
		a.Queue, a.Sender = q, outbox.Sender{}
		if a.relay, err = outbox.NewRelay(outbox.RelayDeps{DB: a.Store.DB, Queue: q}, log, outbox.NewMetrics(a.Registry)); err != nil {
			return nil, err
		}
	}
	a.Redis = redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr, Password: cfg.Redis.Password, DB: cfg.Redis.DB,
		DialTimeout: 3 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second})
	a.Nonces = nonce.New(a.Redis)
	rpcMetrics := chain.NewMetrics(a.Registry) // one for every chain: the chain is a label
	for _, ch := range cfg.Chains {
		c, err := chain.Dial(ctx, ch.Name, ch.ChainID, ch.RPC, ch.RPCTimeout.Duration, chain.WithLogger(log),
			chain.WithMetrics(rpcMetrics), chain.WithTracer(telemetry.Tracer(a.TracerProvider, telemetry.ScopeChain)))
		if err != nil {
			return nil, err
		}
		a.Chains[ch.Name] = c
	}
	ok = true
	return a, nil
}

// OpenKeys opens the configured key sources (keystore, Secrets Manager, KMS: keys.wallets) and hardens
// the process that will hold key material: no core dumps, not dumpable, keys locked in memory where
// permitted. Only processes that sign call it; the API, broadcaster and monitor never hold a key.
func (a *App) OpenKeys(ctx context.Context) error {
	set, err := source.Open(ctx, a.Cfg, a.Log, metricsOf(a, "keys", keys.NewMetrics), source.Options{})
	if err != nil {
		return fmt.Errorf("open key sources: %w", err)
	}
	a.Keys, a.keySet = set, set
	if h, err := keys.HardenProcess(); err != nil {
		a.Log.Warn("process hardening incomplete", "hardening", h, "err", err)
	}
	return nil
}

// Close releases every connection.
func (a *App) Close() {
	if a.keySet != nil {
		_ = a.keySet.Close() // wipes every cached key
	}
	for _, c := range a.Chains {
		c.Close()
	}
	if a.Redis != nil {
		a.Redis.Close()
	}
	if a.Store != nil {
		a.Store.Close()
	}
	if a.closeTracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.closeTracing(ctx); err != nil {
			a.Log.Warn("flush traces", "err", err)
		}
	}
}

// Services lists the services `all` runs.
var Services = []string{"api", "signer", "broadcaster", "monitor", "recovery", "accountmgr"}

// Run runs the named services in this process until ctx is canceled. With one service its health
// endpoint is served on its configured port; with several (or with the API, which serves its own),
// health is the API's.
func (a *App) Run(ctx context.Context, names ...string) error {
	var (
		workers []service.Worker
		checks  = a.checks()
	)
	signs := false
	for _, n := range names {
		// Recovery signs gap fills and fee bumps itself, through the same sign-and-record path.
		signs = signs || n == "signer" || n == "recovery"
	}
	if signs && a.Keys == nil {
		if err := a.OpenKeys(ctx); err != nil {
			return err
		}
	}
	if a.relay != nil {
		workers = append(workers, a.relay.Run)
	}
	for _, n := range names {
		ws, err := a.workers(n)
		if err != nil {
			return err
		}
		workers = append(workers, ws...)
	}
	if a.hub != nil {
		workers = append(workers, a.hub.Run)
	}
	listen := ""
	if len(names) == 1 && names[0] != "api" {
		listen = a.Cfg.Services[names[0]].Listen
	}
	return service.Run(ctx, joinNames(names), listen, a.Registry, checks, workers...)
}

func joinNames(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return "all"
}

func (a *App) checks() []service.Check {
	cs := []service.Check{
		func(ctx context.Context) error { return wrap("database", a.Store.Ping(ctx)) },
		func(ctx context.Context) error { return wrap("redis", a.Redis.Ping(ctx).Err()) },
	}
	for name, c := range a.Chains {
		cs = append(cs, func(ctx context.Context) error { return wrap("chain "+name, c.Ready(ctx)) })
	}
	return cs
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (a *App) consumer(name, queueName string, h queue.Handler) (service.Worker, error) {
	c, err := queue.NewConsumer(queue.ConsumerDeps{
		Queue: a.Queue, Name: queueName, Handler: h,
		Concurrency: a.Cfg.Services[name].Concurrency,
		Visibility:  a.Cfg.Queue.VisibilityTimeout.Duration,
		Wait:        a.Cfg.Queue.WaitTime.Duration,
		Tracer:      telemetry.Tracer(a.TracerProvider, telemetry.ScopeQueue),
	}, a.Log.With("service", name), a.queueMetrics)
	if err != nil {
		return nil, err
	}
	return c.Run, nil
}

// NewRegistry is a process's metrics registry: empty but for the Go runtime and process collectors.
// Never the global default, so what /metrics shows is exactly what this process's services registered.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// metricsOf returns service name's metrics in this process, made by newMetrics on the process's
// registry the first time: a service built twice by one App (run again by a test or a tool) counts on
// in the same collectors instead of registering them twice.
func metricsOf[M any](a *App, name string, newMetrics func(prometheus.Registerer) M) M {
	a.metricsMu.Lock()
	defer a.metricsMu.Unlock()
	if m, ok := a.metrics[name].(M); ok {
		return m
	}
	m := newMetrics(a.Registry)
	a.metrics[name] = m
	return m
}

// workers builds what service name runs; service.Run stops them all when one fails.
func (a *App) workers(name string) ([]service.Worker, error) {
	log := a.Log.With("service", name)
	switch name {
	case "api":
		nodes := make(map[string]policy.Node, len(a.Chains))
		for name, c := range a.Chains {
			nodes[name] = chain.NewCoalescer(c) // every create asks the node: concurrent ones share a request
		}
		polMetrics := metricsOf(a, "policy", policy.NewMetrics)
		dests := policy.NewDestinations(a.Store.DB, a.Cfg.RecipientChecks.PoisoningWindow.Duration, 0, log.With("component", "destinations"), polMetrics)
		pol, err := policy.New(policy.Deps{Store: a.Store, CacheTTL: api.DefaultAuthTTL, Recipients: &policy.Recipients{
			Actions: policy.ActionsFromConfig(a.Cfg.RecipientChecks), PoisoningWindow: a.Cfg.RecipientChecks.PoisoningWindow.Duration,
			Timeout: a.Cfg.RecipientChecks.NodeTimeout.Duration, ContractTTL: policy.ContractTTLFromConfig(a.Cfg.RecipientChecks),
			Chains: policy.ChainsFromConfig(a.Cfg.Chains, nil, nodes), Destinations: dests}}, log, polMetrics)
		if err != nil {
			return nil, err
		}
		if a.noPolicy {
			pol = nil
		}
		hooks, err := webhook.New(webhook.Deps{Store: a.Store, AllowPrivate: a.Cfg.Webhooks.AllowPrivate}, log.With("component", "webhooks"),
			metricsOf(a, "webhook", webhook.NewMetrics))
		if err != nil {
			return nil, err
		}
		rate := a.Cfg.API.RateLimit.PerSecond
		if a.Cfg.API.RateLimit.Off {
			rate = -1
		}
		srv, err := api.New(api.Deps{Store: a.Store, Queue: a.Sender, Chains: a.Cfg.Chains, Gatherer: a.Registry, Policy: pol,
			RateLimit: rate, RateBurst: a.Cfg.API.RateBurst,
			WebhooksAllowPrivate: a.Cfg.Webhooks.AllowPrivate,
			Ready:                func(ctx context.Context) error { return service.Ready(ctx, a.checks()) },
			Tracer:               telemetry.Tracer(a.TracerProvider, telemetry.ScopeAPI)},
			log, metricsOf(a, name, api.NewMetrics))
		if err != nil {
			return nil, err
		}
		if err := a.bootstrapAPIKey(); err != nil {
			return nil, err
		}
		ws := []service.Worker{func(ctx context.Context) error { return srv.Run(ctx, a.Cfg.API.Listen) }, hooks.Run}
		if pol != nil {
			ws = append(ws, dests.Run)
		}
		adm, err := a.adminWorker(log)
		if err != nil {
			return nil, err
		}
		if adm != nil {
			ws = append(ws, adm)
		}
		return ws, nil
	case "signer":
		m := metricsOf(a, name, signer.NewMetrics)
		d := signer.Deps{Store: a.Store, Queue: a.Sender, Keys: a.Keys, Nonces: a.Nonces, Chains: map[string]signer.ChainDeps{},
			Tracer: telemetry.Tracer(a.TracerProvider, telemetry.ScopeSigner)}
		for _, ch := range a.Cfg.Chains {
			cd, err := chain.WithFees(chain.Deps[signer.Chain]{Config: ch, Client: a.Chains[ch.Name]})
			if err != nil {
				return nil, err
			}
			d.Chains[ch.Name] = cd
		}
		s, err := signer.New(d, log, m)
		if err != nil {
			return nil, err
		}
		c, err := a.consumer(name, queue.TxRequest, s.Handle)
		if err != nil {
			return nil, err
		}
		topUps, err := a.consumer(name, queue.BalanceTransfer, s.HandleBalanceTransfer)
		if err != nil {
			return nil, err
		}
		// While the batcher runs, the consumer leaves PENDING withdrawals of batching chains to it.
		return []service.Worker{c, s.RunBatcher, topUps}, nil
	case "accountmgr":
		return a.accountmgrWorkers(log)
	case "recovery":
		return a.recoveryWorkers(log)
	case "broadcaster":
		chains := map[string]broadcaster.Chain{}
		for n, c := range a.Chains {
			chains[n] = c
		}
		b, err := broadcaster.New(broadcaster.Deps{Store: a.Store, Queue: a.Sender, Chains: chains}, log,
			metricsOf(a, name, broadcaster.NewMetrics))
		if err != nil {
			return nil, err
		}
		c, err := a.consumer(name, queue.SignedTx, b.Handle)
		if err != nil {
			return nil, err
		}
		return []service.Worker{c}, nil
	case "monitor":
		chains := map[string]monitor.ChainDeps{}
		for _, ch := range a.Cfg.Chains {
			chains[ch.Name] = monitor.ChainDeps{Config: ch, Client: a.Chains[ch.Name]}
		}
		m, err := monitor.New(monitor.Deps{Store: a.Store, Queue: a.Queue, Chains: chains}, log, metricsOf(a, name, monitor.NewMetrics))
		if err != nil {
			return nil, err
		}
		c, err := a.consumer(name, queue.TxMonitor, m.Handle)
		if err != nil {
			return nil, err
		}
		g, err := a.gauges(log)
		if err != nil {
			return nil, err
		}
		return []service.Worker{c, g.Run}, nil
	}
	return nil, fmt.Errorf("unknown service %q", name)
}

// gauges builds the worker that reads queue depths, wallet balances and nonce lags into their gauges.
// The monitor runs it: it needs no key, and one process type exporting them keeps each series single.
func (a *App) gauges(log *slog.Logger) (*telemetry.Gauges, error) {
	insp, ok := a.Queue.(queue.Inspector)
	if !ok {
		return nil, fmt.Errorf("queue backend %s cannot report queue depths", a.Cfg.Queue.Backend)
	}
	d := telemetry.GaugeDeps{Queue: insp, Nonces: a.Nonces, Interval: a.Cfg.Metrics.GaugeInterval.Duration}
	for _, ch := range a.Cfg.Chains {
		d.Chains = append(d.Chains, telemetry.GaugeChain{Config: ch, Node: a.Chains[ch.Name]})
	}
	// Made once per process (a monitor built again reuses it): its gauges are registered once.
	var err error
	g := metricsOf(a, "gauges", func(reg prometheus.Registerer) *telemetry.Gauges {
		g, gerr := telemetry.NewGauges(d, log, reg)
		err = gerr
		return g
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// CheckAPIKey refuses keys short enough to guess (the bootstrap key here and `sluice dev`'s).
func CheckAPIKey(key string) error {
	if len(key) < 16 {
		return errors.New("API key must be at least 16 characters")
	}
	return nil
}

// bootstrapAPIKey registers the key in the configured variable (SLUICE_API_KEY) as the default client's.
func (a *App) bootstrapAPIKey() error {
	key := os.Getenv(a.Cfg.API.BootstrapKeyEnv)
	if key == "" {
		return nil
	}
	if err := CheckAPIKey(key); err != nil {
		return fmt.Errorf("%s: %w", a.Cfg.API.BootstrapKeyEnv, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := a.Store.EnsureAPIClient(ctx, "default", key)
	return err
}
