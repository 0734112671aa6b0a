package queue

import (
	"reflect"
	"sort"
)

// class holds the items of one eligibility set, in serving order, with
// lazy deletion: entries that are no longer pending (holes) are skipped and
// compacted away from time to time.
type class struct {
	set      map[string]bool
	hosts    []*hostState
	items    []*Item
	head     int
	pendingN int // pending, non-special items
	live     int // unfinished items (pending or running, special or not)
}

func hole(it *Item) bool { return it.state != pending || it.special }

// classOf returns the class of it's eligibility set, creating it.
func (q *Queue) classOf(it *Item) *class {
	var p uintptr
	if it.Eligible != nil {
		p = reflect.ValueOf(it.Eligible).Pointer()
		if p == q.lastMap && q.lastCls != nil && len(q.lastCls.set) == len(it.Eligible) {
			return q.lastCls
		}
	}
	var key uint64
	n := 0
	for name, ok := range it.Eligible {
		if ok {
			key += q.host(name).hash
			n++
		}
	}
	key ^= uint64(n) * 0x9e3779b97f4a7c15
	var c *class
	for _, cand := range q.classes[key] {
		if len(cand.set) != n {
			continue
		}
		same := true
		for name, ok := range it.Eligible {
			if ok && !cand.set[name] {
				same = false
				break
			}
		}
		if same {
			c = cand
			break
		}
	}
	if c == nil {
		c = &class{set: make(map[string]bool, n)}
		for name, ok := range it.Eligible {
			if ok {
				c.set[name] = true
				h := q.host(name)
				c.hosts = append(c.hosts, h)
				h.classes = append(h.classes, c)
			}
		}
		sort.Slice(c.hosts, func(i, j int) bool { return c.hosts[i].name < c.hosts[j].name })
		q.classes[key] = append(q.classes[key], c)
	}
	q.lastMap, q.lastCls = p, c
	return c
}

// Push adds items. Under Smart and LPT items are served largest Work first
// (equal work keeps push order); under FIFO in push order.
func (q *Queue) Push(items ...*Item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch := map[*class][]*Item{}
	for _, it := range items {
		it.state, it.host, it.runs = pending, "", nil
		it.seq = q.seq
		q.seq++
		it.cls = q.classOf(it)
		it.special = len(it.FailedOn) > 0
		it.inClass = false
		q.all = append(q.all, it)
		q.pendingN++
		q.pendingWork += it.Work
		it.cls.live++
		if it.special {
			q.special = append(q.special, it)
		} else {
			it.cls.pendingN++
			batch[it.cls] = append(batch[it.cls], it)
		}
	}
	for c, list := range batch {
		q.merge(c, list)
	}
	q.broadcast()
}

// merge adds list to c, keeping serving order and dropping holes.
func (q *Queue) merge(c *class, list []*Item) {
	sort.SliceStable(list, func(i, j int) bool { return q.less(list[i], list[j]) })
	old := c.items[c.head:]
	out := make([]*Item, 0, len(old)+len(list))
	i, j := 0, 0
	for i < len(old) || j < len(list) {
		if i < len(old) && hole(old[i]) {
			old[i].inClass = false
			i++
			continue
		}
		if j >= len(list) || i < len(old) && !q.less(list[j], old[i]) {
			out = append(out, old[i])
			i++
		} else {
			list[j].inClass = true
			out = append(out, list[j])
			j++
		}
	}
	c.items, c.head = out, 0
}

// compact drops the holes of c.
func compact(c *class) {
	out := c.items[:0]
	for _, it := range c.items[c.head:] {
		if hole(it) {
			it.inClass = false
			continue
		}
		out = append(out, it)
	}
	clear(c.items[len(out):])
	c.items, c.head = out, 0
}

// reinsert puts a requeued item back in its class or the special list.
func (q *Queue) reinsert(it *Item) {
	q.pendingN++
	q.pendingWork += it.Work
	if len(it.FailedOn) > 0 {
		it.special = true
	}
	if it.special {
		for _, s := range q.special {
			if s == it {
				return
			}
		}
		q.special = append(q.special, it)
		return
	}
	c := it.cls
	c.pendingN++
	if it.inClass {
		return // its entry is still there
	}
	i := c.head + sort.Search(len(c.items)-c.head, func(k int) bool { return q.less(it, c.items[c.head+k]) })
	c.items = append(c.items, nil)
	copy(c.items[i+1:], c.items[i:])
	c.items[i] = it
	it.inClass = true
}
