package policy

import (
	"time"

	"github.com/sluice-custody/sluice/internal/config"
)

// ActionsFromConfig is recipient_checks.actions (validated at load) as Recipients.Actions: only the
// rules listed there, so that the others keep DefaultActions.
func ActionsFromConfig(c config.RecipientChecks) map[Rule]Action {
	out := make(map[Rule]Action, len(c.Actions))
	for r, a := range c.Actions {
		out[Rule(r)] = Action(a)
	}
	return out
}

// ContractTTLFromConfig is recipient_checks.contract_ttl as Recipients.ContractTTL, whose "never
// remember" is a negative duration ("off" in the file).
func ContractTTLFromConfig(c config.RecipientChecks) time.Duration {
	if c.ContractTTL.Off {
		return -1
	}
	return c.ContractTTL.Duration.Duration
}
