package dnsfilter

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/aupguard/aupguard/config/field"
)

func TestDefaultConfigIsValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestValidateNamesEveryBadKey(t *testing.T) {
	c := DefaultConfig()
	c.Listen = "localhost"
	c.UDPSockets = -1
	c.Upstreams = []string{"system", "dns.google", "udp://1.1.1.1:0", "quic://9.9.9.9"}
	c.Timeout = 0
	c.UpstreamTimeout = -time.Second
	c.EDNSMaxSize = 100
	c.LocalTTL = -time.Second
	c.MaxInflight = 0
	c.Cache = CacheConfig{Size: -1, MinTTL: time.Hour, MaxTTL: time.Minute, NegativeTTL: -1}
	c.Block = BlockConfig{Answer: "sinkhole", TTL: time.Minute, Addresses: []string{"10.0.0.1", "not-an-ip"}}
	c.RateLimit = RateLimitConfig{QPS: 10, Burst: 0, Clients: 0}
	err := c.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	var paths []string
	for _, e := range field.Flatten(err) {
		var fe *field.Error
		if !errors.As(e, &fe) {
			t.Errorf("error without a key path: %v", e)
			continue
		}
		paths = append(paths, fe.Path)
	}
	for _, want := range []string{"listen", "udp_sockets", "upstreams[1]", "upstreams[2]", "upstreams[3]", "timeout",
		"upstream_timeout", "edns_max_size", "local_ttl", "max_inflight", "cache.size", "cache.max_ttl",
		"cache.negative_ttl", "block.answer", "block.addresses[1]", "rate_limit.burst", "rate_limit.clients"} {
		if !slices.Contains(paths, want) {
			t.Errorf("no error for %s; got %q", want, paths)
		}
	}
	if slices.Contains(paths, "upstreams[0]") || slices.Contains(paths, "block.addresses[0]") {
		t.Errorf("valid entries flagged: %q", paths)
	}
	if !strings.Contains(err.Error(), "host name would need DNS") {
		t.Errorf("upstream host name error does not say why: %v", err)
	}

	c = DefaultConfig()
	c.Block.Answer = BlockAddress
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "block.addresses") {
		t.Errorf("answer: address without addresses: %v", err)
	}
	c = DefaultConfig()
	c.UpstreamTimeout = 10 * time.Second
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "upstream_timeout") {
		t.Errorf("upstream_timeout > timeout: %v", err)
	}
}

func TestConfigFromYAML(t *testing.T) {
	src := `
listen: "0.0.0.0:53"
upstreams: ["9.9.9.9", "tcp://[2620:fe::fe]:53"]
timeout: 3s
cache:
  size: 500
  max_ttl: 1h
block:
  answer: address
  ttl: 30s
  addresses: ["10.0.0.80", "fd00::80"]
rate_limit:
  qps: 20
`
	c := DefaultConfig()
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 3*time.Second || c.Cache.MaxTTL != time.Hour || c.Cache.Size != 500 || c.Block.TTL != 30*time.Second {
		t.Errorf("durations or sizes not decoded: %+v", c)
	}
	// Keys left out keep their defaults.
	if d := DefaultConfig(); c.UpstreamTimeout != d.UpstreamTimeout || c.RateLimit.Burst != d.RateLimit.Burst || c.Cache.NegativeTTL != d.Cache.NegativeTTL {
		t.Errorf("defaults lost: %+v", c)
	}
	v4, v6 := c.Block.blockAddrs()
	if len(v4) != 1 || len(v6) != 1 {
		t.Errorf("block addresses split %v %v", v4, v6)
	}
}

func TestParseUpstream(t *testing.T) {
	for _, tc := range []struct {
		in, net, addr string
		system        bool
		bad           bool
	}{
		{in: "system", system: true},
		{in: "9.9.9.9", net: "udp", addr: "9.9.9.9:53"},
		{in: "9.9.9.9:5353", net: "udp", addr: "9.9.9.9:5353"},
		{in: "2620:fe::fe", net: "udp", addr: "[2620:fe::fe]:53"},
		{in: "[2620:fe::fe]", net: "udp", addr: "[2620:fe::fe]:53"},
		{in: "[2620:fe::fe]:853", net: "udp", addr: "[2620:fe::fe]:853"},
		{in: "tcp://1.1.1.1", net: "tcp", addr: "1.1.1.1:53"},
		{in: "udp://1.1.1.1:53", net: "udp", addr: "1.1.1.1:53"},
		{in: "dns.google", bad: true},
		{in: "dns.google:53", bad: true},
		{in: "1.1.1.1:99999", bad: true},
		{in: "https://1.1.1.1", bad: true},
		{in: "", bad: true},
	} {
		got, err := parseUpstream(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q accepted as %+v", tc.in, got)
			}
			continue
		}
		if err != nil || got.system != tc.system || got.net != tc.net || got.addr != tc.addr {
			t.Errorf("%q = %+v, %v", tc.in, got, err)
		}
	}
}
