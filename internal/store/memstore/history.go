package memstore

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
	"github.com/gatehouse-proxy/gatehouse/internal/session"
	"github.com/gatehouse-proxy/gatehouse/internal/store/cursor"
)

// historyTag names login history cursors.
const historyTag = "h"

// loginHistory is the login history (activity.HistoryStore): rows in
// login order, oldest first, and by session id. Append keeps it; the
// store's lock guards it.
type loginHistory struct {
	rows []*activity.Login
	byID map[string]*activity.Login
}

func loginKey(l *activity.Login) (int64, string) { return l.LoginTime.UnixMilli(), l.SessionID }

func compareLogins(a, b *activity.Login) int {
	as, am := loginKey(a)
	bs, bm := loginKey(b)
	return cmp.Or(cmp.Compare(as, bs), cmp.Compare(am, bm))
}

// historyMax is the cap on history rows for an event cap of eventMax:
// each session makes at least two events (its sign-in and its end), so
// rows beyond half the events' cap would outlive their events anyway.
func historyMax(eventMax int) int { return max(eventMax/2, 1) }

// recordLocked updates the history with the event e just appended, and
// keeps it within max rows.
func (h *loginHistory) recordLocked(e *activity.Event, max int) {
	if e.SessionID == "" {
		return
	}
	switch {
	case e.Type == activity.LoginSucceeded:
		if h.byID == nil {
			h.byID = make(map[string]*activity.Login)
		}
		if _, dup := h.byID[e.SessionID]; dup {
			return
		}
		l := activity.LoginFrom(e)
		h.byID[l.SessionID] = &l
		// Logins mostly come in time order, but instances' clocks
		// differ: insert in order.
		i, _ := slices.BinarySearchFunc(h.rows, &l, compareLogins)
		h.rows = slices.Insert(h.rows, i, &l)
		if over := len(h.rows) - max; over > 0 {
			h.dropLocked(over)
		}
	case activity.EndsSession(e.Type):
		if l := h.byID[e.SessionID]; l != nil && l.Status == activity.StatusActive {
			l.EndWith(e)
		}
	}
}

// dropLocked drops the n oldest rows.
func (h *loginHistory) dropLocked(n int) {
	for _, l := range h.rows[:n] {
		delete(h.byID, l.SessionID)
	}
	h.rows = slices.Delete(h.rows, 0, n)
}

// History implements activity.HistoryStore.
func (m *Store) History(_ context.Context, f activity.HistoryFilter) (activity.HistoryPage, error) {
	var after *cursor.Cursor
	if f.Cursor != "" {
		c, err := cursor.Decode(f.Cursor, historyTag)
		if err != nil {
			return activity.HistoryPage{}, err
		}
		after = &c
	}
	limit := f.Limit
	if limit <= 0 {
		limit = activity.DefaultLimit
	}
	limit = min(limit, activity.MaxLimit)
	if f.Sites != nil && len(f.Sites) == 0 {
		return activity.HistoryPage{}, nil
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var page activity.HistoryPage
	for i := len(m.hist.rows) - 1; i >= 0; i-- {
		l := m.hist.rows[i]
		if after != nil {
			if score, member := loginKey(l); !after.After(score, member) {
				continue
			}
		}
		if !f.Match(l) {
			continue
		}
		if len(page.Items) == limit {
			last := &page.Items[limit-1]
			score, member := loginKey(last)
			page.Next = cursor.Cursor{Score: score, Member: member}.Encode(historyTag)
			break
		}
		row := *l
		if row.Status == activity.StatusActive {
			liveTimes(&row, m.liveLocked(row.SessionID, now), now)
		}
		page.Items = append(page.Items, row)
	}
	return page, nil
}

// liveTimes fills the times of an active row from its session s, or
// marks it ended when the session is gone without an end event.
func liveTimes(l *activity.Login, s *session.Session, now time.Time) {
	if s == nil {
		l.Status = activity.StatusEnded
		return
	}
	n := now.UnixMilli()
	l.Duration = max(n-l.LoginTime.UnixMilli(), 0) / 1000
	if !s.LastAccess.IsZero() {
		l.Inactivity = max(n-s.LastAccess.UnixMilli(), 0) / 1000
	}
}

var _ activity.HistoryStore = (*Store)(nil)
