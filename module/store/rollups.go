package store

import (
	"context"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/module/usage"
)

// Request counts (module/usage) live under /_usage/<day>/<org>/<user>/<gw>:
// one key per user, UTC day and gateway, each gateway writing only its own.
// The day comes first, so the days past retention go in one DeleteRange;
// the underscore keeps them outside VerdictRange, out of every watch.
func (s *Store) usageRoot() string { return s.prefix + "/_usage/" }

func (s *Store) usageOrgPrefix(day, org string) string { return s.usageRoot() + day + "/" + org + "/" }

func (s *Store) usageUserPrefix(day, org, user string) string {
	return s.usageOrgPrefix(day, org) + user + "/"
}

// rollupBatch bounds the rollups written per etcd request.
const rollupBatch = 64

// PutUsage writes a gateway's rollups, rollupBatch to an etcd request,
// each request with its own deadline (the store's default when ctx has
// none). It returns how many were written before an error.
func (s *Store) PutUsage(ctx context.Context, gateway string, rollups []usage.Rollup) (int, error) {
	written := 0
	for len(rollups) > 0 {
		n := min(len(rollups), rollupBatch)
		ops := make([]clientv3.Op, 0, n)
		for _, r := range rollups[:n] {
			if ValidOrgID(r.Org) && ValidUserID(r.User) && validDay(r.Day) {
				ops = append(ops, clientv3.OpPut(s.usageUserPrefix(r.Day, r.Org, r.User)+gateway, string(r.Value)))
			}
		}
		bctx, cancel := withTimeout(ctx)
		_, err := s.commit(opUsage, s.client.Txn(bctx).Then(ops...))
		cancel()
		if err != nil {
			return written, unavailable(err)
		}
		written += n
		rollups = rollups[n:]
	}
	return written, nil
}

// MaxUsageDays bounds the days one read of usage may cover.
const MaxUsageDays = 62

// UsageOf reads every gateway's rollups of one user for the given days
// (at most MaxUsageDays), in one etcd request.
func (s *Store) UsageOf(ctx context.Context, org, user string, days []string) ([]usage.Rollup, error) {
	ops := make([]clientv3.Op, 0, len(days))
	for _, d := range days[:min(len(days), MaxUsageDays)] {
		ops = append(ops, clientv3.OpGet(s.usageUserPrefix(d, org, user), clientv3.WithPrefix()))
	}
	return s.readRollups(ctx, ops)
}

// OrgUsage reads every gateway's rollups of every user of an organization
// for the given days (at most MaxUsageDays), in one etcd request.
func (s *Store) OrgUsage(ctx context.Context, org string, days []string) ([]usage.Rollup, error) {
	ops := make([]clientv3.Op, 0, len(days))
	for _, d := range days[:min(len(days), MaxUsageDays)] {
		ops = append(ops, clientv3.OpGet(s.usageOrgPrefix(d, org), clientv3.WithPrefix()))
	}
	return s.readRollups(ctx, ops)
}

func (s *Store) readRollups(ctx context.Context, ops []clientv3.Op) ([]usage.Rollup, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	rctx, cancel := withTimeout(ctx)
	defer cancel()
	resp, err := s.commit(opRead, s.client.Txn(rctx).Then(ops...))
	if err != nil {
		return nil, unavailable(err)
	}
	var out []usage.Rollup
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			// <day>/<org>/<user>/<gateway>
			parts := strings.Split(strings.TrimPrefix(string(kv.Key), s.usageRoot()), "/")
			if len(parts) != 4 {
				continue
			}
			out = append(out, usage.Rollup{Day: parts[0], Org: parts[1], User: parts[2], Value: kv.Value})
		}
	}
	return out, nil
}

// DeleteUsageBefore deletes the rollups of the days before day.
func (s *Store) DeleteUsageBefore(ctx context.Context, day string) (int64, error) {
	if !validDay(day) {
		return 0, nil
	}
	dctx, cancel := withTimeout(ctx)
	defer cancel()
	resp, err := s.client.Delete(dctx, s.usageRoot(), clientv3.WithRange(s.usageRoot()+day))
	if err != nil {
		return 0, unavailable(err)
	}
	return resp.Deleted, nil
}

// validDay reports whether d is a day as rollup keys write it
// (usage.DayLayout).
func validDay(d string) bool {
	_, err := time.Parse(usage.DayLayout, d)
	return err == nil
}
