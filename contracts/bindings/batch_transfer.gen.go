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

// BatchTransferMetaData contains all meta data concerning the BatchTransfer contract.
var BatchTransferMetaData = bind.MetaData{
	ABI: "[{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"toLength\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"amountsLength\",\"type\":\"uint256\"}],\"name\":\"LengthMismatch\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"token\",\"type\":\"address\"}],\"name\":\"NotAContract\",\"type\":\"error\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"address\",\"name\":\"token\",\"type\":\"address\"},{\"indexed\":true,\"internalType\":\"address\",\"name\":\"from\",\"type\":\"address\"},{\"indexed\":true,\"internalType\":\"address\",\"name\":\"to\",\"type\":\"address\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"index\",\"type\":\"uint256\"},{\"indexed\":false,\"internalType\":\"uint256\",\"name\":\"amount\",\"type\":\"uint256\"},{\"indexed\":false,\"internalType\":\"bool\",\"name\":\"success\",\"type\":\"bool\"}],\"name\":\"TransferResult\",\"type\":\"event\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"token\",\"type\":\"address\"},{\"internalType\":\"address[]\",\"name\":\"to\",\"type\":\"address[]\"},{\"internalType\":\"uint256[]\",\"name\":\"amounts\",\"type\":\"uint256[]\"}],\"name\":\"batchTransfer\",\"outputs\":[{\"internalType\":\"bool[]\",\"name\":\"ok\",\"type\":\"bool[]\"}],\"stateMutability\":\"nonpayable\",\"type\":\"function\"}]",
	ID:  "BatchTransfer",
	Bin: "0x6080604052348015600f57600080fd5b506103d98061001f6000396000f3fe608060405234801561001057600080fd5b506004361061002b5760003560e01c80631239ec8c14610030575b600080fd5b61004361003e3660046102b3565b610059565b6040516100509190610339565b60405180910390f35b60608382811461008b576040516355c5b3e360e11b815260048101829052602481018490526044015b60405180910390fd5b866001600160a01b03163b6000036100c1576040516322a2d07b60e21b81526001600160a01b0388166004820152602401610082565b8067ffffffffffffffff8111156100da576100da61037e565b604051908082528060200260200182016040528015610103578160200160208202803683370190505b50915060005b818110156101eb57600087878381811061012557610125610394565b905060200201602081019061013a91906103aa565b9050600086868481811061015057610150610394565b90506020020135905060006101678b3385856101f6565b90508086858151811061017c5761017c610394565b91151560209283029190910182015260408051868152918201849052821515908201526001600160a01b038085169133918e16907fe23a42f22aeabba9567aa6f561985af3efc66988a86b1d5ae4b4e7be311557559060600160405180910390a4505050806001019050610109565b505095945050505050565b60006040516323b872dd60e01b8152846004820152836024820152826044820152600080526020600060648360008a5af191505060003d1181161561024357600160005114601f3d111690505b949350505050565b80356001600160a01b038116811461026257600080fd5b919050565b60008083601f84011261027957600080fd5b50813567ffffffffffffffff81111561029157600080fd5b6020830191508360208260051b85010111156102ac57600080fd5b9250929050565b6000806000806000606086880312156102cb57600080fd5b6102d48661024b565b9450602086013567ffffffffffffffff8111156102f057600080fd5b6102fc88828901610267565b909550935050604086013567ffffffffffffffff81111561031c57600080fd5b61032888828901610267565b969995985093965092949392505050565b602080825282518282018190526000918401906040840190835b818110156103735783511515835260209384019390920191600101610353565b509095945050505050565b634e487b7160e01b600052604160045260246000fd5b634e487b7160e01b600052603260045260246000fd5b6000602082840312156103bc57600080fd5b6103c58261024b565b939250505056fea164736f6c634300081e000a",
}

// BatchTransfer is an auto generated Go binding around an Ethereum contract.
type BatchTransfer struct {
	abi abi.ABI
}

// GetABI returns the ABI associated with this contract binding.
func (c *BatchTransfer) GetABI() abi.ABI {
	return c.abi
}

// NewBatchTransfer creates a new instance of BatchTransfer.
func NewBatchTransfer() *BatchTransfer {
	parsed, err := BatchTransferMetaData.ParseABI()
	if err != nil {
		panic(errors.New("invalid ABI: " + err.Error()))
	}
	return &BatchTransfer{abi: *parsed}
}

// Instance creates a wrapper for a deployed contract instance at the given address.
// Use this to create the instance object passed to abigen v2 library functions Call, Transact, etc.
func (c *BatchTransfer) Instance(backend bind.ContractBackend, addr common.Address) *bind.BoundContract {
	return bind.NewBoundContract(addr, c.abi, backend, backend, backend)
}

// PackBatchTransfer is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x1239ec8c.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function batchTransfer(address token, address[] to, uint256[] amounts) returns(bool[] ok)
func (batchTransfer *BatchTransfer) PackBatchTransfer(token common.Address, to []common.Address, amounts []*big.Int) []byte {
	enc, err := batchTransfer.abi.Pack("batchTransfer", token, to, amounts)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackBatchTransfer is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x1239ec8c.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function batchTransfer(address token, address[] to, uint256[] amounts) returns(bool[] ok)
func (batchTransfer *BatchTransfer) TryPackBatchTransfer(token common.Address, to []common.Address, amounts []*big.Int) ([]byte, error) {
	return batchTransfer.abi.Pack("batchTransfer", token, to, amounts)
}

// UnpackBatchTransfer is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x1239ec8c.
//
// Solidity: function batchTransfer(address token, address[] to, uint256[] amounts) returns(bool[] ok)
func (batchTransfer *BatchTransfer) UnpackBatchTransfer(data []byte) ([]bool, error) {
	out, err := batchTransfer.abi.Unpack("batchTransfer", data)
	if err != nil {
		return *new([]bool), err
	}
	out0 := *abi.ConvertType(out[0], new([]bool)).(*[]bool)
	return out0, nil
}

// BatchTransferTransferResult represents a TransferResult event raised by the BatchTransfer contract.
type BatchTransferTransferResult struct {
	Token   common.Address
	From    common.Address
	To      common.Address
	Index   *big.Int
	Amount  *big.Int
	Success bool
	Raw     *types.Log // Blockchain specific contextual infos
}

const BatchTransferTransferResultEventName = "TransferResult"

// ContractEventName returns the user-defined event name.
func (BatchTransferTransferResult) ContractEventName() string {
	return BatchTransferTransferResultEventName
}

// UnpackTransferResultEvent is the Go binding that unpacks the event data emitted
// by contract.
//
// Solidity: event TransferResult(address indexed token, address indexed from, address indexed to, uint256 index, uint256 amount, bool success)
func (batchTransfer *BatchTransfer) UnpackTransferResultEvent(log *types.Log) (*BatchTransferTransferResult, error) {
	event := "TransferResult"
	if len(log.Topics) == 0 {
		return nil, bind.ErrNoEventSignature
	}
	if log.Topics[0] != batchTransfer.abi.Events[event].ID {
		return nil, bind.ErrEventSignatureMismatch
	}
	out := new(BatchTransferTransferResult)
	if len(log.Data) > 0 {
		if err := batchTransfer.abi.UnpackIntoInterface(out, event, log.Data); err != nil {
			return nil, err
		}
	}
	var indexed abi.Arguments
	for _, arg := range batchTransfer.abi.Events[event].Inputs {
		if arg.Indexed {
			indexed = append(indexed, arg)
		}
	}
	if err := abi.ParseTopics(out, indexed, log.Topics[1:]); err != nil {
		return nil, err
	}
	out.Raw = log
	return out, nil
}

// UnpackError attempts to decode the provided error data using user-defined
// error definitions.
func (batchTransfer *BatchTransfer) UnpackError(raw []byte) (any, error) {
	if bytes.Equal(raw[:4], batchTransfer.abi.Errors["LengthMismatch"].ID.Bytes()[:4]) {
		return batchTransfer.UnpackLengthMismatchError(raw[4:])
	}
	if bytes.Equal(raw[:4], batchTransfer.abi.Errors["NotAContract"].ID.Bytes()[:4]) {
		return batchTransfer.UnpackNotAContractError(raw[4:])
	}
	return nil, errors.New("Unknown error")
}

// BatchTransferLengthMismatch represents a LengthMismatch error raised by the BatchTransfer contract.
type BatchTransferLengthMismatch struct {
	ToLength      *big.Int
	AmountsLength *big.Int
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error LengthMismatch(uint256 toLength, uint256 amountsLength)
func BatchTransferLengthMismatchErrorID() common.Hash {
	return common.HexToHash("0xab8b67c6893c59617ef3ba4b4b942e9791f2572db2fdb32028356532f3b7396a")
}

// UnpackLengthMismatchError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error LengthMismatch(uint256 toLength, uint256 amountsLength)
func (batchTransfer *BatchTransfer) UnpackLengthMismatchError(raw []byte) (*BatchTransferLengthMismatch, error) {
	out := new(BatchTransferLengthMismatch)
	if err := batchTransfer.abi.UnpackIntoInterface(out, "LengthMismatch", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// BatchTransferNotAContract represents a NotAContract error raised by the BatchTransfer contract.
type BatchTransferNotAContract struct {
	Token common.Address
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error NotAContract(address token)
func BatchTransferNotAContractErrorID() common.Hash {
	return common.HexToHash("0x8a8b41ec6b8382733436ac0321a506b0d1e41dc29c8650d1fd1ff17e726ab809")
}

// UnpackNotAContractError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error NotAContract(address token)
func (batchTransfer *BatchTransfer) UnpackNotAContractError(raw []byte) (*BatchTransferNotAContract, error) {
	out := new(BatchTransferNotAContract)
	if err := batchTransfer.abi.UnpackIntoInterface(out, "NotAContract", raw); err != nil {
		return nil, err
	}
	return out, nil
}
