// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title BatchTransfer
/// @notice Pays many ERC-20 transfers from the caller in one transaction, each one on its own: a
///         transfer that fails (reverts, or returns false) is reported and skipped, never reverting
///         the rest of the batch.
/// @dev Holds no funds, has no owner, no admin and no upgrade path. The only tokens it ever moves are
///      the caller's own, with token.transferFrom(msg.sender, to[i], amounts[i]), so an allowance
///      given to it can only be spent by the owner of that allowance. Tokens that return nothing from
///      transferFrom (USDT on Ethereum) are supported: no return data counts as success, as in
///      OpenZeppelin's SafeERC20.
contract BatchTransfer {
    /// @notice One per item of a batch, in order.
    event TransferResult(
        address indexed token, address indexed from, address indexed to, uint256 index, uint256 amount, bool success
    );

    /// @notice `to` and `amounts` differ in length.
    error LengthMismatch(uint256 toLength, uint256 amountsLength);
    /// @notice `token` has no code: a call to it would "succeed" without moving anything.
    error NotAContract(address token);

    /// @notice For each i, moves amounts[i] of token from the caller to to[i].
    /// @return ok ok[i] is whether item i was paid.
    function batchTransfer(address token, address[] calldata to, uint256[] calldata amounts)
        external
        returns (bool[] memory ok)
    {
        uint256 n = to.length;
        if (n != amounts.length) revert LengthMismatch(n, amounts.length);
        if (token.code.length == 0) revert NotAContract(token);
        ok = new bool[](n);
        for (uint256 i; i < n; ++i) {
            address recipient = to[i];
            uint256 amount = amounts[i];
            bool success = _transferFrom(token, msg.sender, recipient, amount);
            ok[i] = success;
            emit TransferResult(token, msg.sender, recipient, i, amount, success);
        }
    }

    /// @dev transferFrom through a low-level call. Success means the call did not revert and returned
    ///      either nothing or a 32-byte word equal to 1 (true). At most one word of return data is
    ///      copied, so a token returning a huge blob cannot make the batch pay for copying it.
    function _transferFrom(address token, address from, address to, uint256 amount) private returns (bool success) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, shl(224, 0x23b872dd)) // transferFrom(address,address,uint256)
            mstore(add(p, 0x04), from)
            mstore(add(p, 0x24), to)
            mstore(add(p, 0x44), amount)
            mstore(0x00, 0)
            success := call(gas(), token, 0, p, 0x64, 0x00, 0x20)
            if and(success, gt(returndatasize(), 0)) {
                success := and(gt(returndatasize(), 0x1f), eq(mload(0x00), 1))
            }
        }
    }
}
