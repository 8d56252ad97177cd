package store

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// PruneAudit deletes, in every organization, the audit events older than
// before, guarded by the leadership of the webhook deliverer (one gateway
// of the cluster prunes, as it delivers). Audit keys sort newest first, so
// an organization's events older than a moment are one key range: one
// delete per organization, however many events go. It returns how many
// events were deleted.
func (s *Store) PruneAudit(ctx context.Context, lead Leadership, before time.Time) (int64, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	orgs, err := s.get(ctx, opRead, s.prefix+"/orgs/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return 0, unavailable(err)
	}
	from := fmt.Sprintf("%019d", math.MaxInt64-before.UnixNano())
	var deleted int64
	for _, kv := range orgs.Kvs {
		org := strings.TrimPrefix(string(kv.Key), s.prefix+"/orgs/")
		if !ValidOrgID(org) {
			continue
		}
		prefix := s.auditPrefix(org)
		resp, err := s.commit(opTxn, s.client.Txn(ctx).If(lead.cmp()).
			Then(clientv3.OpDelete(prefix+from, clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix)))))
		if err != nil {
			return deleted, unavailable(err)
		}
		if !resp.Succeeded {
			return deleted, ErrNotLeader
		}
		deleted += resp.Responses[0].GetResponseDeleteRange().Deleted
	}
	return deleted, nil
}
