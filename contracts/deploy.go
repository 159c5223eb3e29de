package contracts

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluice-custody/sluice/contracts/bindings"
)

// Backend is what deploying and transacting need from a node: *ethclient.Client on any JSON-RPC
// endpoint satisfies it.
type Backend interface {
	bind.ContractBackend
	bind.DeployBackend
}

// DefaultTimeout bounds DeployAll and Transact when ctx has no deadline of its own.
const DefaultTimeout = 2 * time.Minute

// ErrReverted is returned (wrapped) by Transact when the transaction was mined with status 0.
var ErrReverted = errors.New("transaction reverted")

// Addresses are the contracts DeployAll deployed.
type Addresses struct {
	Multicall3    common.Address
	BatchTransfer common.Address
	USDT          common.Address // a TestToken; its owner is the deploying key
}

// DeployAll deploys Multicall3, BatchTransfer and TestToken from key, one transaction each with
// consecutive nonces, and waits until all three are mined with code at their addresses. It gives up
// when ctx ends, or after DefaultTimeout if ctx has no deadline.
func DeployAll(ctx context.Context, client Backend, key *ecdsa.PrivateKey, chainID *big.Int) (Addresses, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce, err := client.PendingNonceAt(ctx, from)
	if err != nil {
		return Addresses{}, fmt.Errorf("deploy: nonce of %s: %w", from, err)
	}
	metas := []*bind.MetaData{&bindings.Multicall3MetaData, &bindings.BatchTransferMetaData, &bindings.TestTokenMetaData}
	txs := make([]*types.Transaction, len(metas))
	for i, m := range metas {
		opts := bind.NewKeyedTransactor(key, chainID)
		opts.Context = ctx
		opts.Nonce = new(big.Int).SetUint64(nonce + uint64(i))
		_, tx, err := bind.DeployContract(opts, common.FromHex(m.Bin), client, nil)
		if err != nil {
			return Addresses{}, fmt.Errorf("deploy %s: %w", m.ID, err)
		}
		txs[i] = tx
	}
	addrs := make([]common.Address, len(txs))
	for i, tx := range txs {
		a, err := waitDeployed(ctx, client, tx.Hash())
		if err != nil {
			return Addresses{}, fmt.Errorf("deploy %s: %w", metas[i].ID, err)
		}
		addrs[i] = a
	}
	return Addresses{Multicall3: addrs[0], BatchTransfer: addrs[1], USDT: addrs[2]}, nil
}

// Deploy deploys one contract (constructor without arguments) and waits for it.
func Deploy(ctx context.Context, client Backend, key *ecdsa.PrivateKey, chainID *big.Int, meta *bind.MetaData) (common.Address, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	opts := bind.NewKeyedTransactor(key, chainID)
	opts.Context = ctx
	_, tx, err := bind.DeployContract(opts, common.FromHex(meta.Bin), client, nil)
	if err != nil {
		return common.Address{}, fmt.Errorf("deploy %s: %w", meta.ID, err)
	}
	a, err := waitDeployed(ctx, client, tx.Hash())
	if err != nil {
		return common.Address{}, fmt.Errorf("deploy %s: %w", meta.ID, err)
	}
	return a, nil
}

// Transact sends data with value (nil for none) from key to `to`, waits for the receipt and returns
// it. gasLimit 0 means estimate, which fails, without sending, for a call that would revert; pass a
// limit to send it anyway. A mined revert returns the receipt and an error wrapping ErrReverted.
func Transact(ctx context.Context, client Backend, key *ecdsa.PrivateKey, chainID *big.Int,
	to common.Address, value *big.Int, data []byte, gasLimit uint64) (*types.Receipt, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	opts := bind.NewKeyedTransactor(key, chainID)
	opts.Context = ctx
	opts.Value = value
	opts.GasLimit = gasLimit
	tx, err := bind.NewBoundContract(to, abi.ABI{}, client, client, client).RawTransact(opts, data)
	if err != nil {
		return nil, err
	}
	rcpt, err := WaitMined(ctx, client, tx.Hash())
	if err != nil {
		return nil, err
	}
	if rcpt.Status != types.ReceiptStatusSuccessful {
		return rcpt, fmt.Errorf("%s: %w", tx.Hash(), ErrReverted)
	}
	return rcpt, nil
}

// Mint mints amount (in the token's smallest unit) of a TestToken to `to`; key must be its owner.
func Mint(ctx context.Context, client Backend, key *ecdsa.PrivateKey, chainID *big.Int,
	token, to common.Address, amount *big.Int) error {
	data, err := bindings.NewTestToken().TryPackMint(to, amount)
	if err != nil {
		return err
	}
	_, err = Transact(ctx, client, key, chainID, token, nil, data, 0)
	return err
}

// WaitMined polls for the receipt of hash every ReceiptPoll until it exists or ctx ends.
// (bind.WaitMined polls once a second, which would dominate tests on a chain sealing every 100ms.)
func WaitMined(ctx context.Context, client bind.DeployBackend, hash common.Hash) (*types.Receipt, error) {
	t := time.NewTicker(ReceiptPoll)
	defer t.Stop()
	for {
		rcpt, err := client.TransactionReceipt(ctx, hash)
		if err == nil {
			return rcpt, nil
		}
		// ethereum.NotFound (not mined yet) or a transient RPC failure: poll again until ctx ends.
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for receipt of %s: %w (last: %v)", hash, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// ReceiptPoll is how often WaitMined asks for a receipt.
const ReceiptPoll = 200 * time.Millisecond

func waitDeployed(ctx context.Context, client bind.DeployBackend, hash common.Hash) (common.Address, error) {
	rcpt, err := WaitMined(ctx, client, hash)
	if err != nil {
		return common.Address{}, err
	}
	if rcpt.Status != types.ReceiptStatusSuccessful {
		return common.Address{}, fmt.Errorf("creation tx %s: %w", hash, ErrReverted)
	}
	code, err := client.CodeAt(ctx, rcpt.ContractAddress, nil)
	if err != nil {
		return common.Address{}, fmt.Errorf("code at %s: %w", rcpt.ContractAddress, err)
	}
	if len(code) == 0 {
		return common.Address{}, fmt.Errorf("no code at %s after tx %s", rcpt.ContractAddress, hash)
	}
	return rcpt.ContractAddress, nil
}

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

// TokenBalance reads an ERC-20 balance: what holder owns of token, in base units.
func TokenBalance(ctx context.Context, c ethereum.ContractCaller, token, holder common.Address) (*big.Int, error) {
	t := bindings.NewTestToken()
	out, err := c.CallContract(ctx, ethereum.CallMsg{To: &token, Data: t.PackBalanceOf(holder)}, nil)
	if err != nil {
		return nil, fmt.Errorf("balanceOf(%s) on %s: %w", holder, token, err)
	}
	return t.UnpackBalanceOf(out)
}
