//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package dnsfilter

import (
	"syscall"

	"golang.org/x/sys/unix"
)

const reusePortSupported = true

// reusePortControl sets SO_REUSEPORT so several UDP sockets can share one
// address and the kernel balances packets between them.
func reusePortControl(_, _ string, c syscall.RawConn) error {
	var opErr error
	if err := c.Control(func(fd uintptr) {
		opErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return opErr
}
