package web

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// A user's own calendar feed tokens: issue one (the token and the feed
// addresses it opens are shown once, on the answer to the issue, never
// again), list them by ID and issue time, and revoke one at once. The
// service keeps only each token's hash and audits issue and revocation.

// feedsView is what feeds.html shows.
type feedsView struct {
	Tokens []custody.FeedTokenInfo
	// New is the token just issued, and URLs the feeds it opens (one per
	// site the user works at; a pattern when none).
	New  *custody.NewFeedToken
	URLs []string
}

func (w *ui) registerFeeds(g *echo.Group) {
	g.GET("/calendar-feeds", w.feedsPage)
	g.POST("/calendar-feeds", w.feedIssue)
	g.POST("/calendar-feeds/:token/revoke", w.feedRevoke)
}

func (w *ui) feedsPage(c echo.Context) error { return w.renderFeeds(c, http.StatusOK, nil, nil) }

// renderFeeds renders the screen, with the token just issued (nil: none)
// or a refusal.
func (w *ui) renderFeeds(c echo.Context, code int, issued *custody.NewFeedToken, msg *uiMessage) error {
	me := sessionUser(c)
	toks, err := w.svc.FeedTokens(c.Request().Context(), me, me.ID)
	if err != nil {
		return w.fail(c, err)
	}
	v := feedsView{Tokens: toks, New: issued}
	if issued != nil {
		base := c.Scheme() + "://" + c.Request().Host + "/cal/"
		q := "?token=" + url.QueryEscape(issued.Token)
		for _, s := range me.Sites {
			v.URLs = append(v.URLs, base+url.PathEscape(s)+".ics"+q)
		}
		if len(v.URLs) == 0 {
			v.URLs = []string{base + "{SITE}.ics" + q}
		}
	}
	return w.render(c, code, "feeds", page{Title: "Calendar feeds", Msg: msg, V: v})
}

func (w *ui) feedIssue(c echo.Context) error {
	t, err := w.svc.CreateFeedToken(c.Request().Context(), sessionUser(c))
	if err != nil {
		if !waitRefusal(err) {
			return w.fail(c, err)
		}
		m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
		return w.renderFeeds(c, w.statusOf(c, err), nil, &m)
	}
	return w.renderFeeds(c, http.StatusOK, &t, nil)
}

func (w *ui) feedRevoke(c echo.Context) error {
	me := sessionUser(c)
	id := c.Param("token")
	if err := w.svc.RevokeFeedToken(c.Request().Context(), me, me.ID, id, ""); err != nil {
		if !waitRefusal(err) {
			return w.fail(c, err)
		}
		m := plainError(err, c.Response().Header().Get(echo.HeaderXRequestID))
		return w.renderFeeds(c, w.statusOf(c, err), nil, &m)
	}
	w.flash(c, fmt.Sprintf("Feed token %s revoked: calendars using it stop updating.", id))
	return c.Redirect(http.StatusSeeOther, "/calendar-feeds")
}
