// Deploys what Sluice needs on a Hardhat node and sets up its hot wallet:
//   Multicall3, BatchTransfer and TestToken (USDT, 6 decimals), from the node's first account;
//   USDT minted to the hot wallet, and native coin (POL) sent to it;
//   the hot wallet's key written as a go-ethereum keystore file (when the key is known), for `sluice all`;
//   deployments/<network>.json with every address; a ready `chains:` block for a Sluice config printed.
//
//   npx hardhat run scripts/deploy.js --network localhost
//
// On a fresh node the deployer (Hardhat account #0) sends with nonces 0..4, so the addresses are always
// the same ones, those in ../sluice.hardhat.yaml (the script warns when they differ).
//
// Environment (all optional):
//   HARDHAT_RPC_URL           node of the localhost network (default http://127.0.0.1:8545)
//   SLUICE_HOT_WALLET_KEY     hex private key of the hot wallet (default: Hardhat account #1's, public)
//   SLUICE_HOT_WALLET         hot wallet address, when its key is not to be written (no keystore file)
//   SLUICE_USDT_MINT          whole USDT minted to the hot wallet (default 1000000)
//   SLUICE_NATIVE_FUND        whole POL sent to the hot wallet (default 1000)
//   SLUICE_KEYSTORE_DIR       where the keystore file goes (default hardhat/keystore)
//   SLUICE_KEYSTORE_PASSWORD  its password (default "hardhat")
//   SLUICE_DEPLOYMENTS_FILE   the deployments file (default hardhat/deployments/<network>.json)
"use strict";

const fs = require("fs");
const path = require("path");
const hre = require("hardhat");

const { ethers } = hre;

const ROOT = path.join(__dirname, "..");

// Hardhat's account #1: test coin only, its key is public. The default hot wallet.
const HARDHAT_ACCOUNT_1_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

// What a fresh node gives: the first three contracts created by account #0 (nonces 0, 1, 2).
const FRESH_NODE_ADDRESSES = {
  Multicall3: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
  BatchTransfer: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
  USDT: "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
};

function env(name, def) {
  const v = process.env[name];
  return v === undefined || v === "" ? def : v;
}

function hotWallet() {
  const addr = env("SLUICE_HOT_WALLET", "");
  const key = env("SLUICE_HOT_WALLET_KEY", addr ? "" : HARDHAT_ACCOUNT_1_KEY);
  if (key) {
    const wallet = new ethers.Wallet(key.startsWith("0x") ? key : "0x" + key);
    if (addr && ethers.getAddress(addr) !== wallet.address) {
      throw new Error(`SLUICE_HOT_WALLET ${addr} is not the address of SLUICE_HOT_WALLET_KEY (${wallet.address})`);
    }
    return { address: wallet.address, wallet };
  }
  return { address: ethers.getAddress(addr), wallet: null };
}

// writeKeystore stores the key as go-ethereum does (V3 JSON, scrypt): light scrypt parameters, since
// this is a throwaway test key and `sluice all` decrypts it at every start.
function writeKeystore(wallet) {
  const dir = path.resolve(env("SLUICE_KEYSTORE_DIR", path.join(ROOT, "keystore")));
  const password = env("SLUICE_KEYSTORE_PASSWORD", "hardhat");
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const json = ethers.encryptKeystoreJsonSync({ address: wallet.address, privateKey: wallet.privateKey }, password, {
    scrypt: { N: 1 << 12, r: 8, p: 6 }, // go-ethereum's LightScryptN / LightScryptP
  });
  // One file per address, overwritten on every run: two files for one address would be ambiguous.
  const file = path.join(dir, `UTC--hardhat--${wallet.address.slice(2).toLowerCase()}`);
  fs.writeFileSync(file, json + "\n", { mode: 0o600 });
  return file;
}

async function main() {
  const [deployer] = await ethers.getSigners();
  const { chainId } = await ethers.provider.getNetwork();
  const hot = hotWallet();
  const mint = ethers.parseUnits(env("SLUICE_USDT_MINT", "1000000"), 6);
  const fund = ethers.parseEther(env("SLUICE_NATIVE_FUND", "1000"));

  // Send everything at once with explicit nonces and gas limits (a mint cannot be estimated before
  // its token exists), then wait: on an interval-mining node that is one or two blocks, not five.
  let nonce = await ethers.provider.getTransactionCount(deployer.address, "pending");
  const firstNonce = nonce;
  const deployed = {};
  const pending = [];
  for (const [label, name] of [["Multicall3", "Multicall3"], ["BatchTransfer", "BatchTransfer"], ["USDT", "TestToken"]]) {
    const factory = await ethers.getContractFactory(name, deployer);
    const contract = await factory.deploy({ nonce: nonce++ });
    deployed[label] = contract;
    pending.push([`deploy ${name}`, contract.deploymentTransaction()]);
  }
  const usdt = deployed.USDT;
  pending.push([`mint USDT`, await usdt.mint(hot.address, mint, { nonce: nonce++, gasLimit: 200_000 })]);
  pending.push([`send POL`, await deployer.sendTransaction({ to: hot.address, value: fund, nonce: nonce++, gasLimit: 21_000 })]);
  let lastBlock = 0;
  for (const [what, tx] of pending) {
    const rcpt = await tx.wait();
    if (!rcpt || rcpt.status !== 1) throw new Error(`${what}: transaction ${tx.hash} failed`);
    lastBlock = Math.max(lastBlock, rcpt.blockNumber);
  }

  const addresses = {};
  for (const [label, c] of Object.entries(deployed)) {
    addresses[label] = await c.getAddress();
    if ((await ethers.provider.getCode(addresses[label])) === "0x") throw new Error(`no code at ${label} ${addresses[label]}`);
  }
  const decimals = await usdt.decimals();
  const balance = await usdt.balanceOf(hot.address);

  const keystoreFile = hot.wallet ? writeKeystore(hot.wallet) : null;
  const rpc = hre.network.config.url || "http://127.0.0.1:8545";
  const out = {
    network: hre.network.name,
    chainId: Number(chainId),
    rpc,
    deployer: deployer.address,
    hotWallet: hot.address,
    keystoreFile,
    contracts: addresses,
    assets: {
      POL: { decimals: 18 },
      USDT: { decimals: Number(decimals), address: addresses.USDT },
    },
    block: lastBlock,
  };
  const file = path.resolve(env("SLUICE_DEPLOYMENTS_FILE", path.join(ROOT, "deployments", `${hre.network.name}.json`)));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(out, null, 2) + "\n");

  console.log(`Deployed on chain ${chainId} (${rpc}) from ${deployer.address}:`);
  for (const [label, a] of Object.entries(addresses)) console.log(`  ${label.padEnd(13)} ${a}`);
  console.log(`Hot wallet ${hot.address}: ${ethers.formatUnits(balance, decimals)} USDT, +${ethers.formatEther(fund)} POL`);
  if (keystoreFile) console.log(`Hot wallet key: ${keystoreFile}`);
  console.log(`Wrote ${file}`);
  const fresh = Object.entries(FRESH_NODE_ADDRESSES).every(([k, a]) => a === addresses[k]);
  if (!fresh) {
    console.log(`\nNote: the deployer started at nonce ${firstNonce}, not on a fresh node, so these addresses differ ` +
      `from those in sluice.hardhat.yaml: use the block below.`);
  }
  console.log(`
Sluice config (chains:)
  - name: local
    chain_id: ${chainId}
    rpc: ["${rpc}"]
    confirmations: 12
    block_time: 2s
    multicall3: "${addresses.Multicall3}"
    batch_contract: "${addresses.BatchTransfer}"
    assets:
      - {symbol: POL, decimals: 18}
      - {symbol: USDT, decimals: ${decimals}, address: "${addresses.USDT}"}
    hot_wallets: ["${hot.address}"]`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
