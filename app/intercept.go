package app

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/aupguard/aupguard/config"
	"github.com/aupguard/aupguard/intercept"
	"github.com/aupguard/aupguard/proxy"
)

// interception loads the interception CA once, at start. Without the CA
// files the proxy tunnels what the policy asks to intercept untouched, and
// says so once here rather than on every connection; a CA that exists but
// cannot be used is an error, not a silent downgrade.
func interception(cfg *config.Config, log *slog.Logger) (proxy.LeafSource, proxy.RefusalMemory, error) {
	ic := cfg.Intercept
	_, certErr := os.Stat(ic.CACert)
	_, keyErr := os.Stat(ic.CAKey)
	if errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist) {
		log.Info("TLS interception off: no CA (run `aupguard ca init`); intercept decisions are tunnelled untouched",
			"ca_cert", ic.CACert)
		return nil, nil, nil
	}
	ca, err := intercept.LoadCA(ic.CACert, ic.CAKey)
	if err != nil {
		return nil, nil, fmt.Errorf("intercept: %w", err)
	}
	m, err := intercept.NewMinter(ca, intercept.MinterOptions{CacheSize: ic.LeafCacheSize, Validity: ic.LeafValidity})
	if err != nil {
		return nil, nil, fmt.Errorf("intercept: %w", err)
	}
	log.Info("TLS interception on", "ca", ca.Leaf.Subject.CommonName, "ca_cert", ic.CACert)
	return m, intercept.NewRefusals(10_000, ic.RefusalTTL), nil
}
