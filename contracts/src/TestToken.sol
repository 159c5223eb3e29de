// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title TestToken
/// @notice A 6-decimal "USDT" for development chains and tests. The owner mints, and can block an
///         address: any transfer to or from a blocked address reverts, which lets tests make one item
///         of a batch fail. Never deploy it anywhere that matters.
contract TestToken is ERC20, Ownable {
    /// @notice Whether transfers to or from an address revert.
    mapping(address => bool) public blocked;

    event BlockedSet(address indexed account, bool blocked);

    error AddressBlocked(address account);

    constructor() ERC20("Tether USD (test)", "USDT") Ownable(msg.sender) {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    function setBlocked(address account, bool isBlocked) external onlyOwner {
        blocked[account] = isBlocked;
        emit BlockedSet(account, isBlocked);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (blocked[from]) revert AddressBlocked(from);
        if (blocked[to]) revert AddressBlocked(to);
        super._update(from, to, value);
    }
}
