package recovery

// Operators' wallet actions (admin API, wallet.fill-gap): the admin API holds no key, so it records the
// gap fill an operator and an approver agreed on in wallet_actions, and recovery performs it here, at
// the start of each stuck sweep of the chain, next to the clients' actions. A planned nonce is filled
// with the same zero-value self-transfer as the gap sweep's (fill), only while it is still a gap: not
// mined yet and nothing recorded at it (the unique nonce key decides against a late signer), so an
// action performed twice, or after the sweep filled the gap, signs nothing more.

import (
	"context"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluice-custody/sluice/internal/store"
)

// PerformWalletActions performs the pending operators' wallet actions of one chain and returns how many
// nonces it filled.
func (s *Service) PerformWalletActions(ctx context.Context, name string) (int, error) {
	cd, ok := s.chains[name]
	if !ok {
		return 0, fmt.Errorf("chain %q is not configured", name)
	}
	as, err := s.store.PendingWalletActions(ctx, name)
	if err != nil {
		return 0, err
	}
	filled := 0
	for _, a := range as {
		if a.Kind != store.WalletActionFillGap {
			if _, err := s.store.FinishWalletAction(ctx, a.ID, "unknown action "+a.Kind); err != nil {
				return filled, err
			}
			continue
		}
		from := common.HexToAddress(a.Address)
		mined, err := cd.Client.NonceAt(ctx, from)
		if err != nil {
			return filled, fmt.Errorf("mined nonce of %s on %s: %w", a.Address, name, err)
		}
		var did, skipped []string
		for _, n := range a.Nonces {
			recorded, err := s.store.NonceRecorded(ctx, cd.Config.ChainID, from.Hex(), n)
			if err != nil {
				return filled, err
			}
			if n < mined || recorded {
				skipped = append(skipped, fmt.Sprint(n))
				continue
			}
			ok, err := s.fill(ctx, cd, from, n)
			if err != nil {
				return filled, err
			}
			if ok {
				filled++
				did = append(did, fmt.Sprint(n))
			} else {
				skipped = append(skipped, fmt.Sprint(n))
			}
		}
		result := "filled [" + strings.Join(did, ",") + "]"
		if len(skipped) > 0 {
			result += "; no longer gaps [" + strings.Join(skipped, ",") + "]"
		}
		if _, err := s.store.FinishWalletAction(ctx, a.ID, result); err != nil {
			return filled, err
		}
		s.log.Warn("operator's gap fill performed", "chain", name, "from", from.Hex(), "request_id", a.RequestID,
			"requested_by", a.RequestedBy, "result", result)
	}
	return filled, nil
}
