package signer

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/sluice-custody/sluice/internal/fees"
	"github.com/sluice-custody/sluice/internal/queue"
	"github.com/sluice-custody/sluice/internal/store"
	"github.com/sluice-custody/sluice/internal/txerr"
	"github.com/sluice-custody/sluice/internal/txsend"
)

// handleRefee signs a recorded transaction again at its nonce, with the same call and gas and fees from
// the estimator's replacement (at least the refused attempt's + the price bump, at least the tip the
// node asked for, within the caps), records the attempt next to the earlier ones and queues it to
// signed-tx. A request for an attempt that is no longer the current one (replaced already, by a
// redelivery of this request say) or for a transaction already sent does nothing.
func (s *Signer) handleRefee(ctx context.Context, m queue.Message) error {
	env, p, err := queue.Decode[queue.TxRefeeRequested](m.Body, queue.TypeTxRefeeRequested)
	if err != nil {
		return err
	}
	log := s.log.With("sent_tx_id", p.SentTxID, "refused_hash", p.Hash, "correlation_id", env.CorrelationID, "message_id", env.ID)
	st, err := s.store.GetSentTx(ctx, p.SentTxID)
	if errors.Is(err, store.ErrNotFound) {
		return txerr.New(txerr.InvalidTransaction, "unknown_sent_tx", fmt.Errorf("re-fee of sent tx %d: %w", p.SentTxID, err))
	}
	if err != nil {
		return err
	}
	if st.Status != store.TxSigned || !strings.EqualFold(st.Hash, p.Hash) {
		log.Info("nothing to re-fee: the attempt was replaced or sent meanwhile", "status", st.Status, "current_hash", st.Hash)
		return nil
	}
	cd, ok := s.chains[st.Chain]
	if !ok {
		return txerr.Permanentf(txerr.InvalidTransaction, "chain %q of sent tx %d is not configured", st.Chain, st.ID)
	}
	var minTip *big.Int
	if p.MinTipCap != "" {
		v, ok := new(big.Int).SetString(p.MinTipCap, 10)
		if !ok || v.Sign() < 0 {
			return txerr.New(txerr.InvalidTransaction, "bad_message", fmt.Errorf("re-fee of sent tx %d: min tip %q", st.ID, p.MinTipCap))
		}
		minTip = v
	}
	f, err := cd.Fees.Replacement(ctx, fees.Fees{MaxFeePerGas: st.MaxFeePerGas, MaxPriorityFee: st.MaxPriorityFee}, minTip)
	if errors.Is(err, fees.ErrOverCap) {
		// Only a higher cap gets this nonce (and every later one of the address) out: say so loudly.
		log.Error("re-fee needs fees above the configured cap; raise the chain's fee caps", "err", err, "nonce", st.Nonce, "from", st.From)
	}
	if err != nil {
		return err
	}
	c, err := txsend.ReplacementOf(st, f)
	if err != nil {
		return err
	}
	c.RequestID = env.ID
	next, err := s.send.Send(ctx, c)
	if errors.Is(err, store.ErrConflict) {
		log.Info("attempt replaced or sent by another worker meanwhile; nothing signed here")
		return nil
	}
	if err != nil {
		return err
	}
	s.m.TransactionSigned(st.Chain, "refee")
	log.Warn("signed again with higher fees after a node refused the attempt", "tx_hash", next.Hash, "nonce", next.Nonce,
		"max_fee_per_gas", f.MaxFeePerGas, "max_priority_fee", f.MaxPriorityFee,
		"old_max_fee_per_gas", st.MaxFeePerGas, "old_max_priority_fee", st.MaxPriorityFee)
	return nil
}
