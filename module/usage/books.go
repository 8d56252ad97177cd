package usage

import (
	"encoding/json"
	"sort"
	"time"
)

// DayLayout writes a UTC day as it appears in rollup keys; such keys sort
// by day.
const DayLayout = "2006-01-02"

// Row is one line of a day rollup: the counts of one account, method,
// route, statement and outcome, by hour of the day.
type Row struct {
	Account   string `json:"a,omitempty"`
	Method    string `json:"m"`
	Route     string `json:"r"`
	Statement string `json:"s,omitempty"`
	Outcome   string `json:"o"`
	// Hours are [hour of the day, count] pairs, hours ascending, zeros
	// left out.
	Hours [][2]int64 `json:"h"`
}

// Day is one user's rollup of one UTC day, as one gateway kept it.
type Day struct {
	Rows []Row `json:"rows"`
}

// Rollup is one gateway's day rollup of one user: whose, which day, and
// its encoding, as the gateway writes it and the store gives it back.
type Rollup struct {
	Day, Org, User string
	Value          []byte
}

// Books are a gateway's day rollups: the counts it harvested, summed per
// user and day, until they are written and the day is over.
type Books struct {
	days map[bookKey]*book
}

type bookKey struct{ day, org, user string }

type rowKey struct{ account, method, route, statement, outcome string }

type book struct {
	rows  map[rowKey]*[24]int64
	dirty bool
}

// NewBooks returns empty books.
func NewBooks() *Books { return &Books{days: make(map[bookKey]*book)} }

// Add enters harvested counts.
func (b *Books) Add(counted []Counted) {
	for _, c := range counted {
		for cell, n := range c.Cells {
			at := time.Unix(cell.Hour*3600, 0).UTC()
			key := bookKey{at.Format(DayLayout), c.Org, c.User}
			bk := b.days[key]
			if bk == nil {
				bk = &book{rows: make(map[rowKey]*[24]int64)}
				b.days[key] = bk
			}
			rk := rowKey{cell.Account, cell.Method, cell.Route, cell.Statement, cell.Outcome}
			hours := bk.rows[rk]
			if hours == nil && len(bk.rows) >= MaxCellsPerUser {
				// A day holds as many rows as a harvest may: past
				// them, new routes count as one.
				rk.route, rk.statement = OtherRoute, ""
				hours = bk.rows[rk]
			}
			if hours == nil {
				hours = new([24]int64)
				bk.rows[rk] = hours
			}
			hours[at.Hour()] += n
			bk.dirty = true
		}
	}
}

// Changed returns the rollups changed since they were last marked
// written, encoded, in a stable order.
func (b *Books) Changed() []Rollup {
	var out []Rollup
	for key, bk := range b.days {
		if !bk.dirty {
			continue
		}
		value, _ := json.Marshal(bk.day()) // plain strings and numbers: cannot fail
		out = append(out, Rollup{Day: key.day, Org: key.org, User: key.user, Value: value})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Day != out[j].Day {
			return out[i].Day < out[j].Day
		}
		if out[i].Org != out[j].Org {
			return out[i].Org < out[j].Org
		}
		return out[i].User < out[j].User
	})
	return out
}

// Written marks rollups as written, then forgets the books of days before
// now's day that hold nothing unwritten: nothing more can be counted in
// them.
func (b *Books) Written(written []Rollup, now time.Time) {
	for _, r := range written {
		if bk := b.days[bookKey{r.Day, r.Org, r.User}]; bk != nil {
			bk.dirty = false
		}
	}
	today := now.UTC().Format(DayLayout)
	for key, bk := range b.days {
		if key.day < today && !bk.dirty {
			delete(b.days, key)
		}
	}
}

// Len is the number of user-days held.
func (b *Books) Len() int { return len(b.days) }

func (bk *book) day() Day {
	d := Day{Rows: make([]Row, 0, len(bk.rows))}
	for k, hours := range bk.rows {
		row := Row{Account: k.account, Method: k.method, Route: k.route, Statement: k.statement, Outcome: k.outcome}
		for h, n := range hours {
			if n > 0 {
				row.Hours = append(row.Hours, [2]int64{int64(h), n})
			}
		}
		d.Rows = append(d.Rows, row)
	}
	sort.Slice(d.Rows, func(i, j int) bool { return d.Rows[i].less(&d.Rows[j]) })
	return d
}

func (r *Row) less(o *Row) bool {
	a := [5]string{r.Account, r.Method, r.Route, r.Statement, r.Outcome}
	b := [5]string{o.Account, o.Method, o.Route, o.Statement, o.Outcome}
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
