package tokengate

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/metrics"
	"github.com/tokengate/tokengate/module/report"
	"github.com/tokengate/tokengate/module/store"
)

// reportLimit is the configured report_limit, or the default.
func (a *App) reportLimit() (report.Limit, error) {
	if a.ReportLimit == "" {
		return report.DefaultLimit, nil
	}
	l, err := report.ParseLimit(a.ReportLimit)
	if err != nil {
		return report.Limit{}, fmt.Errorf("report_limit: %v", err)
	}
	return l, nil
}

// revokeReported is the work on one report of leaked credentials: revoke
// the live tokens among its digests, count and log them. It runs on the
// Revoker's worker, after the reporter has had its answer. Only token ids
// are logged, never a secret (the worker never sees one).
func (a *App) revokeReported(s *store.Store) report.RevokeFunc {
	return func(ctx context.Context, rep report.Report) {
		revoked, err := s.RevokeReported(ctx, rep.Digests, rep.Reporter)
		metrics.ReportRevocations.Add(float64(len(revoked)))
		for _, t := range revoked {
			a.logger.Warn("token revoked: reported as leaked", zap.String("token_id", t.ID),
				zap.String("org", t.Org), zap.String("user_id", t.User), zap.String("reporter", rep.Reporter))
		}
		if err != nil {
			a.logger.Error("revoking reported tokens", zap.String("reporter", rep.Reporter),
				zap.Int("credentials", len(rep.Digests)), zap.Error(err))
		}
	}
}
