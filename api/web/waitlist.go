package web

import (
	"net/http"
	"strconv"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// The waiting list screen: the chains waiting for a manufacturing slot, in
// the order the fairness rule offers slots (urgency, then time waiting),
// with their open offers, a page at a time. Each user sees the chains they
// may read; changes go through the API.

// waitlistPage is how many entries one screen shows.
const waitlistPage = 50

// waitlistView is the screen's content.
type waitlistView struct {
	Plant   string
	Entries []waitRow
	// First is the position of the first entry shown, from 1.
	First int
	Total int
	// Prev and Next are the offsets of the pages around; -1: none.
	Prev, Next int
}

// waitRow is one entry and its position in the list, from 1.
type waitRow struct {
	custody.WaitEntry
	Pos int
}

// registerWaitlist adds the screen to g (behind the session).
func (w *ui) registerWaitlist(g *echo.Group) { g.GET("/waitlist", w.waitlistScreen) }

func (w *ui) waitlistScreen(c echo.Context) error {
	me := sessionUser(c)
	if !custody.MayReadRegistries(me.Role) {
		return w.refuse(c, http.StatusForbidden, "The waiting list is for the people who book and make the products.", "")
	}
	off := 0
	if v := c.QueryParam("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return w.refuse(c, http.StatusBadRequest, "The page asked for does not exist.", "")
		}
		off = n
	}
	plant := c.QueryParam("plant")
	if plant != "" && custody.ValidateRegistryCode(plant) != nil {
		return w.refuse(c, http.StatusBadRequest, "The plant asked for is not a site code.", "")
	}
	entries, total, err := w.svc.Waitlist(c.Request().Context(), me, plant, off, waitlistPage)
	if err != nil {
		return w.fail(c, err)
	}
	v := waitlistView{Plant: plant, First: off + 1, Total: total, Prev: -1, Next: -1}
	for i, e := range entries {
		v.Entries = append(v.Entries, waitRow{WaitEntry: e, Pos: off + i + 1})
	}
	if off > 0 {
		v.Prev = max(off-waitlistPage, 0)
	}
	if off+len(entries) < total {
		v.Next = off + len(entries)
	}
	return w.render(c, http.StatusOK, "waitlist", page{Title: "Waiting list", Nav: "waitlist", V: v})
}
