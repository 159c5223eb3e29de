// Code generated via abigen V2 - DO NOT EDIT.
// This file is a generated binding and any manual changes will be lost.

package bindings

import (
	"bytes"
	"errors"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Reference imports to suppress errors if they are not otherwise used.
var (
	_ = bytes.Equal
	_ = errors.New
	_ = big.NewInt
	_ = common.Big1
	_ = types.BloomLookup
	_ = abi.ConvertType
)

// RejectingReceiverMetaData contains all meta data concerning the RejectingReceiver contract.
var RejectingReceiverMetaData = bind.MetaData{
	ABI: "[{\"inputs\":[],\"name\":\"Rejected\",\"type\":\"error\"},{\"stateMutability\":\"payable\",\"type\":\"fallback\"},{\"stateMutability\":\"payable\",\"type\":\"receive\"}]",
	ID:  "RejectingReceiver",
	Bin: "0x6080604052348015600f57600080fd5b50604780601d6000396000f3fe60806040523660215760405163efde6dcf60e01b815260040160405180910390fd5b60405163efde6dcf60e01b815260040160405180910390fdfea164736f6c634300081e000a",
}

// RejectingReceiver is an auto generated Go binding around an Ethereum contract.
type RejectingReceiver struct {
	abi abi.ABI
}

// GetABI returns the ABI associated with this contract binding.
func (c *RejectingReceiver) GetABI() abi.ABI {
	return c.abi
}

// NewRejectingReceiver creates a new instance of RejectingReceiver.
func NewRejectingReceiver() *RejectingReceiver {
	parsed, err := RejectingReceiverMetaData.ParseABI()
	if err != nil {
		panic(errors.New("invalid ABI: " + err.Error()))
	}
	return &RejectingReceiver{abi: *parsed}
}

// Instance creates a wrapper for a deployed contract instance at the given address.
// Use this to create the instance object passed to abigen v2 library functions Call, Transact, etc.
func (c *RejectingReceiver) Instance(backend bind.ContractBackend, addr common.Address) *bind.BoundContract {
	return bind.NewBoundContract(addr, c.abi, backend, backend, backend)
}

// UnpackError attempts to decode the provided error data using user-defined
// error definitions.
func (rejectingReceiver *RejectingReceiver) UnpackError(raw []byte) (any, error) {
	if bytes.Equal(raw[:4], rejectingReceiver.abi.Errors["Rejected"].ID.Bytes()[:4]) {
		return rejectingReceiver.UnpackRejectedError(raw[4:])
	}
	return nil, errors.New("Unknown error")
}

// RejectingReceiverRejected represents a Rejected error raised by the RejectingReceiver contract.
type RejectingReceiverRejected struct {
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error Rejected()
func RejectingReceiverRejectedErrorID() common.Hash {
	return common.HexToHash("0xefde6dcf3c2196c5705e848c09f0659d33de3ca0248be3ab40852d1bafc0f1e3")
}

// UnpackRejectedError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error Rejected()
func (rejectingReceiver *RejectingReceiver) UnpackRejectedError(raw []byte) (*RejectingReceiverRejected, error) {
	out := new(RejectingReceiverRejected)
	if err := rejectingReceiver.abi.UnpackIntoInterface(out, "Rejected", raw); err != nil {
		return nil, err
	}
	return out, nil
}
