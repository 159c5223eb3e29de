package chaos

import "syscall"

// procAttr makes a service die with the harness, whatever way the harness ends.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
