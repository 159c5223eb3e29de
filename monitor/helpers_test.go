package monitor_test

import gethcommon "github.com/ethereum/go-ethereum/common"

func common(hex string) gethcommon.Address { return gethcommon.HexToAddress(hex) }
