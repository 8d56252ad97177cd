package admin

import (
	"testing"
	"time"
)

// TestUsageWindowRoundsOut: from and to are rounded out to whole hours,
// so a window within an hour covers that hour rather than nothing; the
// bounds are checked on the window used.
func TestUsageWindowRoundsOut(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		from, to         string
		wantFrom, wantTo string
	}{
		{"2026-12-01T10:30:00Z", "2026-12-01T10:45:00Z", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z"},
		{"2026-12-01T10:00:00Z", "2026-12-01T12:00:00Z", "2026-12-01T10:00:00Z", "2026-12-01T12:00:00Z"},
		{"2026-12-01T10:59:59.5+01:00", "2026-12-01T12:00:00.001+01:00", "2026-12-01T09:00:00Z", "2026-12-01T12:00:00Z"},
	} {
		from, to, err := usageWindow(map[string]string{"from": c.from, "to": c.to})
		if err != nil || !from.Equal(at(c.wantFrom)) || !to.Equal(at(c.wantTo)) {
			t.Errorf("%s..%s: %s..%s %v, want %s..%s", c.from, c.to, from, to, err, c.wantFrom, c.wantTo)
		}
	}
	for _, q := range []map[string]string{
		{"from": "2026-12-01T11:00:00Z", "to": "2026-12-01T11:00:00Z"},
		{"from": "2026-11-01T00:00:00Z", "to": "2026-12-02T00:00:01Z"}, // 31 days and an hour once rounded
	} {
		if _, _, err := usageWindow(q); err == nil {
			t.Errorf("%v accepted", q)
		}
	}
}
