package signer

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
)

// erc20ABI is the part of the ERC-20 standard the signer calls, on any token.
var erc20ABI = func() abi.ABI {
	a, err := abi.JSON(strings.NewReader(`[
	{"type":"function","name":"transfer","stateMutability":"nonpayable","inputs":[{"name":"to","type":"address"},{"name":"value","type":"uint256"}],"outputs":[{"name":"","type":"bool"}]},
	{"type":"function","name":"approve","stateMutability":"nonpayable","inputs":[{"name":"spender","type":"address"},{"name":"value","type":"uint256"}],"outputs":[{"name":"","type":"bool"}]},
	{"type":"function","name":"allowance","stateMutability":"view","inputs":[{"name":"owner","type":"address"},{"name":"spender","type":"address"}],"outputs":[{"name":"","type":"uint256"}]}
	]`))
	if err != nil {
		panic(err) // a constant that does not parse is a build error
	}
	return a
}()

func mustPack(method string, args ...any) []byte {
	data, err := erc20ABI.Pack(method, args...)
	if err != nil {
		panic(fmt.Sprintf("erc20 %s: %v", method, err)) // only typed addresses and amounts reach here
	}
	return data
}

// erc20Transfer encodes transfer(to, amount).
func erc20Transfer(to common.Address, amount *big.Int) []byte {
	return mustPack("transfer", to, amount)
}

// erc20Approve encodes approve(spender, amount).
func erc20Approve(spender common.Address, amount *big.Int) []byte {
	return mustPack("approve", spender, amount)
}

// erc20Allowance encodes allowance(owner, spender).
func erc20Allowance(owner, spender common.Address) []byte {
	return mustPack("allowance", owner, spender)
}

// decodeAllowance reads allowance's answer.
func decodeAllowance(out []byte) (*big.Int, error) {
	vs, err := erc20ABI.Unpack("allowance", out)
	if err != nil {
		return nil, fmt.Errorf("decode allowance: %w", err)
	}
	v, ok := vs[0].(*big.Int)
	if !ok || len(vs) != 1 {
		return nil, fmt.Errorf("decode allowance: unexpected %v", vs)
	}
	return v, nil
}
