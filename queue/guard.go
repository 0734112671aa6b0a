package queue

import (
	"fmt"
	"sort"
)

// Unstick is the runtime guard against a run that waits for nothing. The
// scheduling rule is meant never to stall (see the package comment and
// TestLivenessRandomClusters), but a host the queue believes will take a
// job may not, for reasons outside it. The manager calls Unstick
// periodically once items have been pending with nothing running for a
// while. When that is the case and slots are blocked in Next, Unstick
// returns one line per waiting host saying what it waits for, and breaks
// the tie: the fastest waiting host that has a pending item it may run
// takes, at its next pick, the largest such item, ignoring the other hosts
// (and, for a fallback, its reserve). Otherwise it returns nil and changes
// nothing.
func (q *Queue) Unstick() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.pendingN == 0 || q.runningN > 0 {
		return nil
	}
	now := q.clock()
	q.refreshWindows(now)
	var lines []string
	var best *hostState
	for _, h := range q.hostList {
		if h.waiting == 0 || h.down || h.shut {
			continue
		}
		var mine *Item // the largest pending item h may run
		for _, it := range q.all {
			if it.state == pending && q.canRun(it, h) && q.fits(h, it, now) && !h.capped(q.lane(it, h).Family) && (mine == nil || q.less(it, mine)) {
				mine = it
			}
		}
		if mine == nil {
			continue
		}
		switch {
		case h.leftItem != nil && h.leftItem.state == pending:
			lines = append(lines, fmt.Sprintf("host %s waits: it left item %d to host %s, predicted to finish it in %.0fs", h.name, h.leftItem.ID, h.leftTo.name, max(0, h.leftAt-now)))
		case q.heldBack(mine, h):
			var others []string
			for _, g := range mine.cls.hosts {
				if g != h && !g.fallback && !g.down && !g.held && !g.shut {
					others = append(others, g.name)
				}
			}
			sort.Strings(others)
			lines = append(lines, fmt.Sprintf("host %s waits: it is a fallback and host(s) %v may take the work", h.name, others))
		default:
			lines = append(lines, fmt.Sprintf("host %s waits: item %d is pending for it", h.name, mine.ID))
		}
		// A regular host before a fallback, then the fastest.
		if best == nil || best.fallback && !h.fallback || best.fallback == h.fallback && h.speed > best.speed {
			best = h
		}
	}
	if best == nil {
		return nil
	}
	best.force = true
	lines = append(lines, fmt.Sprintf("breaking the tie: host %s takes the largest job it may run", best.name))
	q.broadcast()
	return lines
}
