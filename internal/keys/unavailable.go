package keys

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluice-custody/sluice/internal/txerr"
)

// ErrKeyUnavailable marks every failure to produce a usable key: secret missing, backend down, wrong
// master key, tampered ciphertext, a key that does not match its wallet.
var ErrKeyUnavailable = errors.New("key unavailable")

// CodeKeyUnavailable is the txerr code of an unavailable key (the label an alert keys on).
const CodeKeyUnavailable = "key_unavailable"

// Unavailable wraps why addr's key could not be used. It fails closed: the error is retryable (the
// withdrawal waits and is retried, never FAILED and never signed with another key) and carries
// ErrKeyUnavailable and code key_unavailable so the failure is counted and alerted on. cause must not
// hold key material; every backend builds it from fixed texts, addresses, ids and API error codes.
func Unavailable(addr common.Address, backend string, cause error) error {
	return txerr.New(txerr.Network, CodeKeyUnavailable,
		fmt.Errorf("keys: %s key of %s: %w: %w", backend, addr.Hex(), ErrKeyUnavailable, cause))
}

// SignTx signs tx for chainID through sign (a 32-byte hash in, a 65-byte [R || S || V] signature out)
// and checks that the signed transaction recovers to want: a key that does not belong to its wallet
// never yields a transaction.
func SignTx(tx *types.Transaction, chainID *big.Int, want common.Address, sign func(hash []byte) ([]byte, error)) (*types.Transaction, error) {
	if tx == nil || chainID == nil || chainID.Sign() <= 0 {
		return nil, fmt.Errorf("keys: sign for %s: transaction and a positive chain id are required", want.Hex())
	}
	signer := types.LatestSignerForChainID(chainID)
	h := signer.Hash(tx)
	sig, err := sign(h[:])
	if err != nil {
		return nil, err
	}
	signed, err := tx.WithSignature(signer, sig)
	if err != nil {
		return nil, fmt.Errorf("keys: sign for %s: %w", want.Hex(), err)
	}
	from, err := types.Sender(signer, signed)
	if err != nil {
		return nil, fmt.Errorf("keys: sign for %s: %w", want.Hex(), err)
	}
	if from != want {
		return nil, Unavailable(want, "signature", fmt.Errorf("signature recovers to %s", from.Hex()))
	}
	return signed, nil
}
