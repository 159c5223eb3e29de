// Compiles contracts/src/*.sol with solc-js (the npm `solc` package: no compiler binary is ever
// downloaded) and writes build/<Name>.abi and build/<Name>.bin for abigen and for `go build`.
//
// Multicall3 keeps its canonical `pragma solidity 0.8.12` and is compiled by solc 0.8.12 (npm alias
// solc-0.8.12, evmVersion london: 0.8.12 predates "paris", and london bytecode runs on every later fork).
// Everything else is compiled by solc 0.8.30 for evmVersion paris (no PUSH0/MCOPY/transient storage),
// which runs on any post-merge EVM chain. Optimizer on, 200 runs.
'use strict';

const fs = require('fs');
const path = require('path');

const SRC = path.join(__dirname, 'src');
const OUT = path.join(__dirname, 'build');

// Per-source compiler; every other .sol in src/ uses the default.
const DEFAULT = { pkg: 'solc', version: '0.8.30', evmVersion: 'paris' };
const OVERRIDES = {
  'Multicall3.sol': { pkg: 'solc-0.8.12', version: '0.8.12', evmVersion: 'london' },
};

function findImport(importPath) {
  try {
    let file;
    if (importPath.startsWith('@openzeppelin/')) {
      file = require.resolve(importPath, { paths: [__dirname] });
    } else {
      file = path.join(SRC, importPath);
    }
    return { contents: fs.readFileSync(file, 'utf8') };
  } catch (e) {
    return { error: `import ${importPath}: ${e.message}` };
  }
}

function compile(cfg, files) {
  const solc = require(cfg.pkg);
  const got = solc.version();
  if (!got.startsWith(cfg.version + '+')) {
    throw new Error(`${cfg.pkg} is ${got}, want ${cfg.version} (run npm ci)`);
  }
  const sources = {};
  for (const f of files) sources[f] = { content: fs.readFileSync(path.join(SRC, f), 'utf8') };
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: cfg.evmVersion,
      // No metadata hash: the bytecode then depends only on the sources and settings, so
      // regenerating on another machine gives byte-identical build/ files.
      metadata: { bytecodeHash: 'none' },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  let failed = false;
  for (const err of output.errors || []) {
    if (err.severity === 'error') failed = true;
    process.stderr.write(err.formattedMessage || err.message);
  }
  if (failed) throw new Error(`compilation with solc ${got} failed`);
  const contracts = [];
  for (const f of files) {
    for (const [name, c] of Object.entries(output.contracts[f] || {})) {
      contracts.push({ name, abi: c.abi, bin: c.evm.bytecode.object, compiler: got });
    }
  }
  return contracts;
}

function main() {
  const files = fs.readdirSync(SRC).filter((f) => f.endsWith('.sol')).sort();
  const groups = new Map();
  for (const f of files) {
    const cfg = OVERRIDES[f] || DEFAULT;
    const key = JSON.stringify(cfg);
    if (!groups.has(key)) groups.set(key, { cfg, files: [] });
    groups.get(key).files.push(f);
  }
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT, { recursive: true });
  for (const { cfg, files: group } of groups.values()) {
    for (const c of compile(cfg, group)) {
      fs.writeFileSync(path.join(OUT, `${c.name}.abi`), JSON.stringify(c.abi) + '\n');
      fs.writeFileSync(path.join(OUT, `${c.name}.bin`), c.bin + '\n');
      console.log(`${c.name}: ${c.bin.length / 2} bytes (solc ${c.compiler}, ${cfg.evmVersion})`);
    }
  }
}

main();
