package dnsfilter

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strconv"
)

// listen binds n UDP sockets (SO_REUSEPORT when n > 1, so the kernel
// spreads queries over cores; 0 means one per CPU) and one TCP listener on
// the same address. With port 0 the TCP listener takes the port the first
// UDP socket got, so clients need one port for both; should another process
// hold that TCP port, it tries another.
func listen(ctx context.Context, addr string, n int) ([]net.PacketConn, []net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	if !reusePortSupported {
		n = 1
	}
	lc := net.ListenConfig{}
	if n > 1 {
		lc.Control = reusePortControl
	}
	// A busy host can have most TCP ports of the ephemeral range taken by
	// connections (TIME_WAIT among them) while their UDP twins are free.
	const attempts = 64
	var lastErr error
	for range attempts {
		pcs, err := bindUDP(ctx, lc, addr, host, n)
		if err != nil {
			return nil, nil, err
		}
		udpPort := pcs[0].LocalAddr().(*net.UDPAddr).Port
		var tlc net.ListenConfig
		l, err := tlc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(udpPort)))
		if err == nil {
			return pcs, []net.Listener{l}, nil
		}
		for _, pc := range pcs {
			_ = pc.Close()
		}
		if port != "0" {
			return nil, nil, err
		}
		lastErr = err
	}
	return nil, nil, errors.Join(errors.New("no port free for both UDP and TCP"), lastErr)
}

func bindUDP(ctx context.Context, lc net.ListenConfig, addr, host string, n int) ([]net.PacketConn, error) {
	first, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	pcs := []net.PacketConn{first}
	bound := net.JoinHostPort(host, strconv.Itoa(first.LocalAddr().(*net.UDPAddr).Port))
	for i := 1; i < n; i++ {
		pc, err := lc.ListenPacket(ctx, "udp", bound)
		if err != nil {
			for _, p := range pcs {
				_ = p.Close()
			}
			return nil, err
		}
		pcs = append(pcs, pc)
	}
	return pcs, nil
}
