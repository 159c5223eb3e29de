// Package multicall owns the calldata of Sluice's batched withdrawals and the decoding of their
// per-item results:
//
//   - native coin: one aggregate3Value call to the canonical Multicall3, one Call3Value per
//     recipient with empty calldata (NativeBatch, NativeBatchAtomic, DecodeResults);
//   - ERC-20: one batchTransfer call to Sluice's own BatchTransfer contract (ERC20Batch,
//     ParseTransferResults).
//
// Multicall3 is never used for ERC-20 transfers and must never be given an allowance: it is a
// public contract that performs any call for anyone, so an allowance granted to Multicall3 can be
// spent by whoever calls it next with token.transferFrom(hotWallet, themselves, amount). That is why
// ERC-20 batches go through BatchTransfer, which only ever moves msg.sender's own tokens.
//
// # Native batches and failed calls
//
// When a call of aggregate3Value with allowFailure=true fails (the recipient is a contract that
// rejects coin, or runs out of gas), Multicall3 does not revert and does not refund: the value of
// that call stays in the Multicall3 contract. The transaction succeeds and the other recipients are
// paid. The stranded coin is not Sluice's any more: anyone can take it from Multicall3 with an
// aggregate3Value whose call values wrap around 2^256 (its sum check is unchecked arithmetic), so
// msg.value can be 0 while one call sends the whole balance out. TestNativeBatchRejectingRecipient
// shows both on a real chain.
//
// So a signer has two safe ways to batch native coin:
//
//  1. NativeBatchAtomic (allowFailure=false): one failing recipient reverts the whole batch; nobody
//     is paid, no coin is lost (only the gas). Retry without the failing recipient.
//  2. Simulate first: eth_call the NativeBatch calldata, DecodeResults, drop every failed item,
//     then send the survivors with NativeBatchAtomic. A recipient can still change between the
//     simulation and the block, which atomic mode turns into a reverted batch, never lost coin.
//
// Sending NativeBatch (allowFailure=true) on-chain is only right if the caller accepts losing the
// value of every failed item; FailedValue says how much a mined batch left behind.
package multicall

import (
	"errors"
	"fmt"
	"math/big"
	"sort"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/contracts/bindings"
)

// Transfer is one payment of a batch: Amount in the smallest unit (wei, or the token's base unit).
type Transfer struct {
	To     common.Address
	Amount *big.Int
}

// Result is the outcome of one call of a Multicall3 batch, in the batch's order.
type Result struct {
	Success    bool
	ReturnData []byte // the callee's return data, or its revert data when !Success
}

// ItemResult is the outcome of one item of a BatchTransfer batch, from its TransferResult event.
type ItemResult struct {
	Index   int
	Token   common.Address
	From    common.Address
	To      common.Address
	Amount  *big.Int
	Success bool
}

var (
	multicall3    = bindings.NewMulticall3()
	batchTransfer = bindings.NewBatchTransfer()

	transferResultID = batchTransfer.GetABI().Events[bindings.BatchTransferTransferResultEventName].ID

	maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
)

// ErrEmptyBatch is returned for a batch without transfers.
var ErrEmptyBatch = errors.New("multicall: empty batch")

func validate(transfers []Transfer) error {
	if len(transfers) == 0 {
		return ErrEmptyBatch
	}
	for i, t := range transfers {
		switch {
		case t.To == (common.Address{}):
			return fmt.Errorf("multicall: transfer %d: zero recipient address", i)
		case t.Amount == nil || t.Amount.Sign() <= 0:
			return fmt.Errorf("multicall: transfer %d: amount %v is not positive", i, t.Amount)
		case t.Amount.Cmp(maxUint256) > 0:
			return fmt.Errorf("multicall: transfer %d: amount %v exceeds uint256", i, t.Amount)
		}
	}
	return nil
}

// NativeBatch encodes Multicall3.aggregate3Value paying each transfer's Amount to its To with empty
// calldata and allowFailure=true, and returns the calldata and the msg.value the transaction must
// carry (the sum of the amounts; Multicall3 reverts on any other value).
//
// WARNING: with allowFailure=true a failed call does not revert the batch and its value stays in
// Multicall3, where anyone can take it (see the package doc). Use it to simulate (eth_call, then
// DecodeResults); send NativeBatchAtomic.
func NativeBatch(transfers []Transfer) (calldata []byte, totalValue *big.Int, err error) {
	return nativeBatch(transfers, true)
}

// NativeBatchAtomic is NativeBatch with allowFailure=false: if any recipient fails, the whole
// transaction reverts with "Multicall3: call failed" and no one is paid.
func NativeBatchAtomic(transfers []Transfer) (calldata []byte, totalValue *big.Int, err error) {
	return nativeBatch(transfers, false)
}

func nativeBatch(transfers []Transfer, allowFailure bool) ([]byte, *big.Int, error) {
	if err := validate(transfers); err != nil {
		return nil, nil, err
	}
	calls := make([]bindings.Multicall3Call3Value, len(transfers))
	total := new(big.Int)
	for i, t := range transfers {
		calls[i] = bindings.Multicall3Call3Value{
			Target:       t.To,
			AllowFailure: allowFailure,
			Value:        t.Amount,
			CallData:     []byte{},
		}
		total.Add(total, t.Amount)
	}
	if total.Cmp(maxUint256) > 0 {
		return nil, nil, fmt.Errorf("multicall: total value %v exceeds uint256", total)
	}
	data, err := multicall3.TryPackAggregate3Value(calls)
	if err != nil {
		return nil, nil, fmt.Errorf("multicall: encode aggregate3Value: %w", err)
	}
	return data, total, nil
}

// DecodeResults decodes the output of aggregate3Value (what eth_call returns for NativeBatch
// calldata) into one Result per call, in order.
func DecodeResults(returnData []byte) ([]Result, error) {
	out, err := multicall3.UnpackAggregate3Value(returnData)
	if err != nil {
		return nil, fmt.Errorf("multicall: decode aggregate3Value output: %w", err)
	}
	res := make([]Result, len(out))
	for i, r := range out {
		res[i] = Result{Success: r.Success, ReturnData: r.ReturnData}
	}
	return res, nil
}

// FailedValue is the coin a NativeBatch with these results left in Multicall3: the sum of the amounts
// of the failed calls.
func FailedValue(transfers []Transfer, results []Result) (*big.Int, error) {
	if len(transfers) != len(results) {
		return nil, fmt.Errorf("multicall: %d transfers but %d results", len(transfers), len(results))
	}
	sum := new(big.Int)
	for i, r := range results {
		if !r.Success {
			sum.Add(sum, transfers[i].Amount)
		}
	}
	return sum, nil
}

// ERC20Batch encodes BatchTransfer.batchTransfer(token, to[], amounts[]). The sender must first
// approve the BatchTransfer contract for at least the sum of the amounts. On-chain, each item is
// paid or not on its own; ParseTransferResults reads which from the receipt.
func ERC20Batch(token common.Address, transfers []Transfer) ([]byte, error) {
	if token == (common.Address{}) {
		return nil, errors.New("multicall: zero token address")
	}
	if err := validate(transfers); err != nil {
		return nil, err
	}
	to := make([]common.Address, len(transfers))
	amounts := make([]*big.Int, len(transfers))
	for i, t := range transfers {
		to[i], amounts[i] = t.To, t.Amount
	}
	data, err := batchTransfer.TryPackBatchTransfer(token, to, amounts)
	if err != nil {
		return nil, fmt.Errorf("multicall: encode batchTransfer: %w", err)
	}
	return data, nil
}

// ParseTransferResults reads the TransferResult events of one batchTransfer transaction from its
// receipt's logs, ordered by item index. Only logs emitted by batchContract count: any contract (a
// token, say) could emit a look-alike event. It fails unless the indexes are exactly 0..n-1; the
// caller should also check n against the batch it sent.
func ParseTransferResults(batchContract common.Address, logs []*types.Log) ([]ItemResult, error) {
	var out []ItemResult
	seen := map[int]bool{}
	for _, l := range logs {
		if l == nil || l.Address != batchContract || len(l.Topics) == 0 || l.Topics[0] != transferResultID {
			continue
		}
		ev, err := batchTransfer.UnpackTransferResultEvent(l)
		if err != nil {
			return nil, fmt.Errorf("multicall: decode TransferResult (log %d): %w", l.Index, err)
		}
		if !ev.Index.IsInt64() || ev.Index.Int64() >= int64(len(logs)) {
			return nil, fmt.Errorf("multicall: TransferResult index %v out of range", ev.Index)
		}
		idx := int(ev.Index.Int64())
		if seen[idx] {
			return nil, fmt.Errorf("multicall: TransferResult index %d appears twice", idx)
		}
		seen[idx] = true
		out = append(out, ItemResult{
			Index: idx, Token: ev.Token, From: ev.From, To: ev.To, Amount: ev.Amount, Success: ev.Success,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	for i, r := range out {
		if r.Index != i {
			return nil, fmt.Errorf("multicall: TransferResult for item %d is missing", i)
		}
	}
	return out, nil
}
