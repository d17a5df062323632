package verdict

import (
	"context"
	"log/slog"
	"time"
)

// DecisionLogKeys are the keys of the canonical decision line, always
// present and in this order, whichever enforcement point writes it; a DNS
// decision adds qname and qtype, a response status, a failed evaluation
// error.
var DecisionLogKeys = []string{
	"source", "client_ip", "user", "groups", "method", "host", "phase",
	"action", "category", "rule", "severity", "cached", "duration", "event_id",
}

// LogDecision writes the canonical "decision" line: one per decision,
// with the same keys on every enforcement point, so a grep or a log query
// can follow any request, and the reference on a block page or in a DNS
// event (event_id) finds its line. Blocks and alerts are logged at Info;
// allows at Debug unless allowsAtInfo, and are not even built when that
// level is off. took is how long the decision took, 0 where the
// enforcement point does not time it (the DNS filter: its decisions are
// timed in aupguard_decision_duration_seconds).
func LogDecision(ctx context.Context, log *slog.Logger, in *Input, d *Decision, took time.Duration, eventID string, allowsAtInfo bool) {
	level := slog.LevelDebug
	if d.Blocked() || d.Alert || allowsAtInfo {
		level = slog.LevelInfo
	}
	if log == nil || !log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 18)
	attrs = append(attrs,
		slog.String("source", string(in.Source)),
		slog.String("client_ip", in.Client.IP),
		slog.String("user", in.Client.User),
		slog.Any("groups", in.Client.Groups),
		slog.String("method", in.Request.Method),
		slog.String("host", in.Request.Host),
		slog.String("phase", string(in.Phase)),
		slog.String("action", string(d.Action)),
		slog.String("category", d.Category),
		slog.String("rule", d.Rule),
		slog.String("severity", string(d.Severity)),
		slog.String("cached", d.Cached),
		slog.Duration("duration", took),
		slog.String("event_id", eventID),
	)
	if in.DNS != nil {
		attrs = append(attrs, slog.String("qname", in.DNS.QName), slog.String("qtype", in.DNS.QType))
	}
	if in.Response != nil {
		attrs = append(attrs, slog.Int("status", in.Response.Status))
	}
	if d.Error != "" {
		attrs = append(attrs, slog.String("error", d.Error))
	}
	log.LogAttrs(ctx, level, "decision", attrs...)
}
