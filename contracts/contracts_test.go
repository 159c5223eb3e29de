package contracts_test

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/sluice-custody/sluice/contracts"
	"github.com/sluice-custody/sluice/contracts/bindings"
	"github.com/sluice-custody/sluice/internal/testenv"
)

type env struct {
	ctx      context.Context
	cl       *ethclient.Client
	chainID  *big.Int
	deployer testenv.Account
	addrs    contracts.Addresses
}

func setup(t *testing.T, funded ...common.Address) *env {
	t.Helper()
	deployer := testenv.NewAccount(t)
	chain := testenv.Chain(t, 100*time.Millisecond, append(funded, deployer.Address)...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cl, err := chain.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	addrs, err := contracts.DeployAll(ctx, cl, deployer.Key, chain.ChainID)
	if err != nil {
		t.Fatalf("DeployAll: %v", err)
	}
	return &env{ctx: ctx, cl: cl, chainID: chain.ChainID, deployer: deployer, addrs: addrs}
}

var token = bindings.NewTestToken()

func (e *env) call(t *testing.T, to common.Address, data []byte) []byte {
	t.Helper()
	out, err := e.cl.CallContract(e.ctx, ethereum.CallMsg{To: &to, Data: data}, nil)
	if err != nil {
		t.Fatalf("call %s: %v", to, err)
	}
	return out
}

func (e *env) balanceOf(t *testing.T, tok, who common.Address) *big.Int {
	t.Helper()
	b, err := token.UnpackBalanceOf(e.call(t, tok, token.PackBalanceOf(who)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) send(t *testing.T, from testenv.Account, to common.Address, data []byte) []*types.Log {
	t.Helper()
	rcpt, err := contracts.Transact(e.ctx, e.cl, from.Key, e.chainID, to, nil, data, 0)
	if err != nil {
		t.Fatalf("transact to %s: %v", to, err)
	}
	return rcpt.Logs
}

func (e *env) callFrom(t *testing.T, from, to common.Address, data []byte) []byte {
	t.Helper()
	out, err := e.cl.CallContract(e.ctx, ethereum.CallMsg{From: from, To: &to, Data: data}, nil)
	if err != nil {
		t.Fatalf("call %s: %v", to, err)
	}
	return out
}

// revertData is the revert payload of a failed eth_call or eth_estimateGas.
func revertData(t *testing.T, err error) []byte {
	t.Helper()
	var de rpc.DataError
	if !errors.As(err, &de) {
		t.Fatalf("error %v carries no revert data", err)
	}
	s, _ := de.ErrorData().(string)
	return common.FromHex(s)
}

func TestDeployAll(t *testing.T) {
	e := setup(t)
	for name, a := range map[string]common.Address{
		"Multicall3": e.addrs.Multicall3, "BatchTransfer": e.addrs.BatchTransfer, "USDT": e.addrs.USDT,
	} {
		code, err := e.cl.CodeAt(e.ctx, a, nil)
		if err != nil || len(code) == 0 {
			t.Errorf("%s at %s: %d bytes of code, %v", name, a, len(code), err)
		}
	}
	if e.addrs.Multicall3 == e.addrs.BatchTransfer || e.addrs.BatchTransfer == e.addrs.USDT {
		t.Fatalf("addresses not distinct: %+v", e.addrs)
	}

	name, _ := token.UnpackName(e.call(t, e.addrs.USDT, token.PackName()))
	sym, _ := token.UnpackSymbol(e.call(t, e.addrs.USDT, token.PackSymbol()))
	dec, _ := token.UnpackDecimals(e.call(t, e.addrs.USDT, token.PackDecimals()))
	owner, _ := token.UnpackOwner(e.call(t, e.addrs.USDT, token.PackOwner()))
	if name != "Tether USD (test)" || sym != "USDT" || dec != 6 || owner != e.deployer.Address {
		t.Fatalf("token: %q %q %d owner %s; want Tether USD (test), USDT, 6, %s", name, sym, dec, owner, e.deployer.Address)
	}
	mc := bindings.NewMulticall3()
	id, err := mc.UnpackGetChainId(e.call(t, e.addrs.Multicall3, mc.PackGetChainId()))
	if err != nil || id.Cmp(e.chainID) != 0 {
		t.Fatalf("Multicall3.getChainId = %v, %v; want %v", id, err, e.chainID)
	}

	// Only the owner mints.
	stranger := testenv.NewAccount(t)
	if err := contracts.Mint(e.ctx, e.cl, stranger.Key, e.chainID, e.addrs.USDT, stranger.Address, big.NewInt(1)); err == nil {
		t.Fatal("a stranger could mint")
	}
	if err := contracts.Mint(e.ctx, e.cl, e.deployer.Key, e.chainID, e.addrs.USDT, stranger.Address, big.NewInt(7)); err != nil {
		t.Fatal(err)
	}
	if b := e.balanceOf(t, e.addrs.USDT, stranger.Address); b.Int64() != 7 {
		t.Fatalf("minted balance %v, want 7", b)
	}
}
