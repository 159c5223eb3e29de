// Hardhat 2 project for running Sluice against a local `npx hardhat node` (see README.md).
//
// Everything works offline: the contracts in ../contracts/src (reached through the `contracts`
// symlink, so there is one source of truth) are compiled by solc-js from npm (the `solc` package
// and its alias `solc-0.8.12`), never by a downloaded compiler. The settings are those of
// ../contracts/build.js, so the artifacts are byte-identical to contracts/build/*.bin.
//
// Environment:
//   HARDHAT_BLOCK_TIME  block interval of `npx hardhat node` in milliseconds (default 2000, like
//                       Polygon PoS); 0 means automine: one block per transaction, none otherwise
//                       (unsuited to Sluice: see README.md).
//   HARDHAT_RPC_URL     the node the `localhost` network talks to (default http://127.0.0.1:8545).
"use strict";

require("@nomicfoundation/hardhat-ethers");
const { subtask } = require("hardhat/config");
const { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } = require("hardhat/builtin-tasks/task-names");

// The npm package providing each compiler version the config below uses.
const SOLC_PACKAGES = { "0.8.30": "solc", "0.8.12": "solc-0.8.12" };

// Hardhat 2 would download a native solc build; hand it the solc-js (wasm) build from npm instead.
subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async ({ solcVersion }) => {
  const pkg = SOLC_PACKAGES[solcVersion];
  if (!pkg) {
    throw new Error(`solc ${solcVersion} is not provided by an npm package: add it to SOLC_PACKAGES and package.json`);
  }
  const longVersion = require(pkg).version();
  if (!longVersion.startsWith(solcVersion + "+")) {
    throw new Error(`npm package ${pkg} is solc ${longVersion}, want ${solcVersion} (run npm ci)`);
  }
  return {
    compilerPath: require.resolve(`${pkg}/soljson.js`),
    isSolcJs: true,
    version: solcVersion,
    longVersion: longVersion.replace(/\.Emscripten.*$/, ""),
  };
});

// Same as contracts/build.js: optimizer 200 runs, no metadata hash (reproducible bytecode).
function settings(evmVersion) {
  return { optimizer: { enabled: true, runs: 200 }, evmVersion, metadata: { bytecodeHash: "none" } };
}

function mining() {
  const raw = process.env.HARDHAT_BLOCK_TIME;
  const ms = raw === undefined || raw === "" ? 2000 : Number(raw);
  if (!Number.isInteger(ms) || ms < 0) {
    throw new Error(`HARDHAT_BLOCK_TIME=${raw}: want a block interval in milliseconds (0 for automine)`);
  }
  return ms === 0 ? { auto: true, interval: 0 } : { auto: false, interval: ms };
}

/** @type import('hardhat/config').HardhatUserConfig */
module.exports = {
  solidity: {
    // paris: no PUSH0/MCOPY/transient storage, runs on any post-merge EVM chain.
    compilers: [{ version: "0.8.30", settings: settings("paris") }],
    overrides: {
      // The canonical Multicall3 keeps its exact `pragma solidity 0.8.12`; 0.8.12 predates paris.
      "contracts/Multicall3.sol": { version: "0.8.12", settings: settings("london") },
    },
  },
  paths: { sources: "./contracts" }, // symlink to ../contracts/src
  networks: {
    hardhat: {
      chainId: 31337,
      mining: mining(),
      // Hardhat's usual 20 accounts (mnemonic "test test ... junk"), with 10,000,000 coins each rather
      // than 10,000: `sluice dev --rpc` funds its hot wallet with 1,000,000 from account #0.
      accounts: { accountsBalance: "10000000000000000000000000" },
    },
    localhost: {
      url: process.env.HARDHAT_RPC_URL || "http://127.0.0.1:8545",
      chainId: 31337,
    },
  },
};
