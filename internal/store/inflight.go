package store

import (
	"context"
	"fmt"
	"math/big"
)

// Outflow is what is committed to leave one hot wallet in one asset and is not settled yet: transfers
// signed from the wallet whose transaction is not CONFIRMED (SIGNED or BROADCASTED; the sent transaction
// keeps BROADCASTED until it is deep enough, so a mined one is still counted). The signer's spendable
// balance is the balance on chain minus this: conservative on purpose, a mined transfer counted twice
// for a few blocks only delays a payment, while one not counted could overspend the wallet.
// accountmgr's deficits need the exact figure instead (UnminedOutflows, the same rows cut at the
// wallet's mined nonce): counting mined transfers twice there would top up too much.
type Outflow struct {
	Chain  string
	From   string // checksummed or lower-case as stored
	Asset  string
	Amount *big.Int // base units
	Count  int      // transfers
	// Txs is how many distinct transactions carry them (a wallet's load: a node keeps only so many
	// pending per sender), and MaxGasCost what those transactions may still burn in gas at most
	// (gas limit × max fee each): native coin the wallet must keep for them.
	Txs        int
	MaxGasCost *big.Int
}

// Outflows returns chain's outflows per (wallet, asset): withdrawals whose sent transaction is still
// SIGNED or BROADCASTED.
func (s *Store) Outflows(ctx context.Context, chain string) ([]Outflow, error) {
	rows, err := s.DB.QueryContext(ctx, `
		SELECT w.from_address, w.asset, w.amount, st.id, st.gas_limit, st.max_fee_per_gas
		FROM withdrawals w JOIN sent_transactions st ON st.id = w.sent_tx_id
		WHERE w.chain = ? AND st.status IN (?, ?)`, chain, TxSigned, TxBroadcasted)
	if err != nil {
		return nil, fmt.Errorf("outflows of %s: %w", chain, err)
	}
	defer rows.Close()
	type key struct{ from, asset string }
	type txKey struct {
		key
		id int64
	}
	sums := map[key]*Outflow{}
	seen := map[txKey]bool{}
	var order []key
	for rows.Next() {
		var (
			from, asset, amount, maxFee string
			txID                        int64
			gasLimit                    uint64
		)
		if err := rows.Scan(&from, &asset, &amount, &txID, &gasLimit, &maxFee); err != nil {
			return nil, fmt.Errorf("outflows of %s: %w", chain, err)
		}
		v, ok := new(big.Int).SetString(amount, 10)
		if !ok {
			return nil, fmt.Errorf("outflows of %s: amount %q is not an integer", chain, amount)
		}
		k := key{from, asset}
		o := sums[k]
		if o == nil {
			o = &Outflow{Chain: chain, From: from, Asset: asset, Amount: new(big.Int), MaxGasCost: new(big.Int)}
			sums[k] = o
			order = append(order, k)
		}
		o.Amount.Add(o.Amount, v)
		o.Count++
		if tk := (txKey{k, txID}); !seen[tk] {
			seen[tk] = true
			o.Txs++
			fee, ok := new(big.Int).SetString(maxFee, 10)
			if !ok {
				return nil, fmt.Errorf("outflows of %s: max fee %q of tx %d is not an integer", chain, maxFee, txID)
			}
			o.MaxGasCost.Add(o.MaxGasCost, fee.Mul(fee, new(big.Int).SetUint64(gasLimit)))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outflows of %s: %w", chain, err)
	}
	out := make([]Outflow, 0, len(order))
	for _, k := range order {
		out = append(out, *sums[k])
	}
	return out, nil
}
