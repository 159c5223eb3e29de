// Package devchain runs an embedded EVM chain: go-ethereum's own node (real txpool, real receipts,
// real JSON-RPC over HTTP) sealing a block at a fixed interval. Tests and `sluice dev` use it.
package devchain

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
)

// Options configure a chain. Zero values take the defaults in parentheses.
type Options struct {
	ChainID       uint64             // (31337)
	Addr          string             // host:port for HTTP JSON-RPC (127.0.0.1 and a free port)
	BlockInterval time.Duration      // (2s); a block is sealed at this interval even when empty
	GasLimit      uint64             // block gas limit (30M, Polygon-like)
	Alloc         types.GenesisAlloc // funded accounts
}

// Chain is a running chain.
type Chain struct {
	URL     string
	ChainID *big.Int
	backend *simulated.Backend
	stop    chan struct{}
	done    chan struct{}
	every   chan time.Duration
	mu      sync.Mutex
	closed  bool
}

// Start boots the chain and starts sealing blocks.
func Start(opts Options) (*Chain, error) {
	if opts.ChainID == 0 {
		opts.ChainID = 31337
	}
	if opts.BlockInterval == 0 {
		opts.BlockInterval = 2 * time.Second
	}
	if opts.GasLimit == 0 {
		opts.GasLimit = 30_000_000
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	host, portStr, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("devchain addr %q: %w", opts.Addr, err)
	}
	port, _ := strconv.Atoi(portStr)
	if port == 0 {
		if port, err = freePort(host); err != nil {
			return nil, err
		}
	} else if err := portFree(host, port); err != nil {
		return nil, fmt.Errorf("devchain: %s:%d is taken: %w", host, port, err)
	}
	// Every fork up to Osaka, as on Ethereum and Polygon today; go-ethereum's dev config also turns on
	// forks still in design (Bogota's state-growth gas), which would make every gas figure unreal.
	chainCfg := *params.AllDevChainProtocolChanges
	chainCfg.ChainID = new(big.Int).SetUint64(opts.ChainID)
	chainCfg.AmsterdamTime, chainCfg.BogotaTime, chainCfg.UBTTime = nil, nil, nil
	var (
		b        *simulated.Backend
		panicked any
	)
	func() {
		// simulated.NewBackend panics when the node cannot start (a port taken meanwhile, say).
		defer func() { panicked = recover() }()
		b = simulated.NewBackend(opts.Alloc, func(nc *node.Config, ec *ethconfig.Config) {
			nc.HTTPHost = host
			nc.HTTPPort = port
			// miner: SetMinTip (the miner namespace only sets extra data, gas price floor and gas limit).
			nc.HTTPModules = []string{"eth", "net", "web3", "txpool", "miner"}
			nc.HTTPVirtualHosts = []string{"*"}
			nc.HTTPCors = []string{"*"}
			ec.Genesis.Config = &chainCfg
			ec.Genesis.GasLimit = opts.GasLimit
			ec.Miner.GasCeil = opts.GasLimit
			ec.NetworkId = opts.ChainID
			// Let a busy test or dev session queue plenty of txs per sender.
			ec.TxPool.AccountSlots = 4096
			ec.TxPool.GlobalSlots = 65536
			ec.TxPool.AccountQueue = 4096
			ec.TxPool.GlobalQueue = 65536
		})
	}()
	if panicked != nil {
		return nil, fmt.Errorf("devchain start: %v", panicked)
	}
	c := &Chain{
		URL:     fmt.Sprintf("http://%s", net.JoinHostPort(host, strconv.Itoa(port))),
		ChainID: chainCfg.ChainID,
		backend: b,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		every:   make(chan time.Duration),
	}
	go c.seal(opts.BlockInterval)
	return c, nil
}

func (c *Chain) seal(every time.Duration) {
	defer close(c.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case d := <-c.every:
			t.Reset(d)
		case <-t.C:
			c.Commit()
		}
	}
}

// SealEvery changes the block interval from now on (a dev engine seals fast while it deploys its
// contracts, then settles into the configured block time).
func (c *Chain) SealEvery(d time.Duration) {
	select {
	case c.every <- d:
	case <-c.done:
	}
}

// Commit seals a block now.
func (c *Chain) Commit() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.backend.Commit()
	}
}

// Fork makes the block parent the head (go-ethereum's simulated Backend.Fork): every block above it
// leaves the canonical chain at once, the node puts their transactions back in its pool, and the next
// blocks are sealed on parent. It fails while transactions are pending. Tests of reorgs pause sealing
// (SealEvery a long interval) and Commit by hand, so that they choose what the new branch holds.
func (c *Chain) Fork(parent common.Hash) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("devchain: closed")
	}
	if err := c.backend.Fork(parent); err != nil {
		return fmt.Errorf("devchain: fork at %s: %w", parent, err)
	}
	return nil
}

// SetMinTip makes the node refuse, from now on, transactions whose tip is below tip (geth's
// miner_setGasPrice: the txpool's floor), as Polygon's validators refuse tips under 25 gwei. Its refusal
// reads "transaction gas price below minimum: gas tip cap X, minimum needed Y".
func (c *Chain) SetMinTip(ctx context.Context, tip *big.Int) error {
	rc, err := rpc.DialContext(ctx, c.URL)
	if err != nil {
		return fmt.Errorf("devchain: %w", err)
	}
	defer rc.Close()
	var done bool
	if err := rc.CallContext(ctx, &done, "miner_setGasPrice", (*hexutil.Big)(tip)); err != nil {
		return fmt.Errorf("devchain: set minimum tip: %w", err)
	}
	if !done {
		return errors.New("devchain: miner_setGasPrice refused")
	}
	return nil
}

// Client returns a client on the HTTP endpoint, as any outside program would connect.
func (c *Chain) Client(ctx context.Context) (*ethclient.Client, error) {
	return ethclient.DialContext(ctx, c.URL)
}

// Close stops sealing and shuts the node down.
func (c *Chain) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	close(c.stop)
	c.mu.Unlock()
	<-c.done
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.backend.Close()
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(host string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}
