package verify

import "math/bits"

// overlay holds the keys of tokens created since the filter of issued
// tokens was built, each with the revision of its creation: a hash set of
// fixed room, open addressing with linear probing, 16 bytes a slot and at
// most 4 keys in 5 slots, so 20 bytes a key at most, allocated once per
// build. A Go map would take 30 to 40 bytes a key and grow in steps.
//
// Keys are the first 8 bytes of SHA-256 digests: uniform, so their high
// bits place them. Only issued tokens are stored, so runs of full slots are
// as short as chance makes them, and a lookup of any key, even one chosen
// to land on the longest, costs no more than that run.
type overlay struct {
	slots []overlaySlot // rev 0: empty (etcd revisions start at 1)
	n     int
	room  int
}

type overlaySlot struct {
	key uint64
	rev int64
}

// newOverlay returns an overlay with room for room keys.
func newOverlay(room int) overlay {
	return overlay{slots: make([]overlaySlot, room+room/4+1), room: room}
}

// find returns the slot holding key, or the empty slot where it would go.
// There is always an empty slot: room is less than the slots.
func (o *overlay) find(key uint64) (int, bool) {
	hi, _ := bits.Mul64(key, uint64(len(o.slots)))
	for i := int(hi); ; i++ {
		if i == len(o.slots) {
			i = 0
		}
		s := &o.slots[i]
		if s.rev == 0 {
			return i, false
		}
		if s.key == key {
			return i, true
		}
	}
}

func (o *overlay) has(key uint64) bool {
	_, ok := o.find(key)
	return ok
}

// add records key as created at rev; false when there is no room for it.
func (o *overlay) add(key uint64, rev int64) bool {
	i, ok := o.find(key)
	if ok {
		o.slots[i].rev = max(o.slots[i].rev, rev)
		return true
	}
	if o.n >= o.room {
		return false
	}
	o.slots[i] = overlaySlot{key, rev}
	o.n++
	return true
}

// count is how many keys it holds.
func (o *overlay) count() int { return o.n }

// bytes is its memory.
func (o *overlay) bytes() int64 { return int64(len(o.slots)) * 16 }

// after calls fn with each key created after rev and its revision, in slot
// order.
func (o *overlay) after(rev int64, fn func(key uint64, rev int64)) {
	for _, s := range o.slots {
		if s.rev > rev {
			fn(s.key, s.rev)
		}
	}
}
