// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title RejectingReceiver
/// @notice Test helper: refuses every call and every coin sent to it.
contract RejectingReceiver {
    error Rejected();

    receive() external payable {
        revert Rejected();
    }

    fallback() external payable {
        revert Rejected();
    }
}
