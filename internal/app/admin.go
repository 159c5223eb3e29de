package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/sluice-custody/sluice/admin"
	"github.com/sluice-custody/sluice/internal/config"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/service"
)

// adminWorker builds the admin API and ops dashboard (package admin) on their own listener
// (api.admin_listen); nil when it is off. The JWT key is a.AdminJWTKey when set (`sluice dev` makes
// one), else the value of the variable api.admin_jwt_key_env names: without it the API does not start,
// rather than serve operators with a guessable key.
func (a *App) adminWorker(log *slog.Logger) (service.Worker, error) {
	if a.Cfg.API.AdminListen == config.AdminOff {
		return nil, nil
	}
	key := a.AdminJWTKey
	if len(key) == 0 {
		key = []byte(os.Getenv(a.Cfg.API.AdminJWTKeyEnv))
	}
	if len(key) < admin.MinJWTKey {
		return nil, fmt.Errorf("%s must hold the admin API's JWT key, at least %d bytes (it has %d); or set api.admin_listen: off",
			a.Cfg.API.AdminJWTKeyEnv, admin.MinJWTKey, len(key))
	}
	insp, ok := a.Queue.(queue.Inspector)
	if !ok {
		return nil, fmt.Errorf("admin: the %T queue cannot describe its queues", a.Queue)
	}
	ops := admin.OpsDeps{Queue: a.Sender, Queues: insp, Nonces: a.Nonces, Chains: map[string]admin.ChainDeps{}}
	for _, ch := range a.Cfg.Chains {
		ops.Chains[ch.Name] = admin.ChainDeps{Config: ch, Client: a.Chains[ch.Name]}
	}
	srv, err := admin.New(admin.Deps{Store: a.Store, Redis: a.Redis, JWTKey: key, Chains: a.Cfg.Chains,
		ApprovalTTL: a.Cfg.API.AdminApprovalTTL.Duration, Ops: ops}, log.With("component", "admin"), metricsOf(a, "admin", admin.NewMetrics))
	if err != nil {
		return nil, err
	}
	addr := a.Cfg.API.AdminListen
	return func(ctx context.Context) error { return srv.Run(ctx, addr) }, nil
}
