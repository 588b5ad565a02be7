// Package ical writes a site's calendar feed as an RFC 5545 iCalendar
// document: all-day events, CRLF line ends, lines folded at 75 octets and
// text values escaped.
package ical

import (
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
)

// Encode returns the VCALENDAR of events for site, stamped (DTSTAMP) with
// each event's booking time, or now when it has none.
func Encode(site string, events []custody.FeedEvent, now time.Time) []byte {
	var b strings.Builder
	line := func(s string) { fold(&b, s) }
	line("BEGIN:VCALENDAR")
	line("VERSION:2.0")
	line("PRODID:-//coid//calendar feed//EN")
	line("CALSCALE:GREGORIAN")
	line("X-WR-CALNAME:" + text("coid "+site))
	for _, e := range events {
		stamp := e.Stamp
		if stamp.IsZero() {
			stamp = now
		}
		from, _ := time.Parse(custody.DateLayout, e.From)
		to, _ := time.Parse(custody.DateLayout, e.To)
		line("BEGIN:VEVENT")
		line("UID:" + text(e.UID+"@coid"))
		line("DTSTAMP:" + stamp.UTC().Format("20060102T150405Z"))
		line("DTSTART;VALUE=DATE:" + from.Format("20060102"))
		line("DTEND;VALUE=DATE:" + to.AddDate(0, 0, 1).Format("20060102"))
		line("SUMMARY:" + text(title(e.Kind)+" "+string(e.COI)+" ("+e.Product+")"))
		line("DESCRIPTION:" + text("Chain "+string(e.COI)+", product "+e.Product+": "+title(e.Kind)+" at "+site))
		line("TRANSP:TRANSPARENT")
		line("END:VEVENT")
	}
	line("END:VCALENDAR")
	return []byte(b.String())
}

func title(kind string) string {
	switch kind {
	case "apheresis":
		return "Apheresis"
	case "manufacturing-start":
		return "Manufacturing start"
	case "infusion-window":
		return "Infusion window"
	}
	return kind
}

// text escapes a TEXT value: backslash, semicolon, comma and newlines.
func text(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `;`, `\;`, `,`, `\,`, "\r\n", `\n`, "\n", `\n`, "\r", `\n`)
	return r.Replace(s)
}

// fold writes one content line, folded so no physical line exceeds 75
// octets (CRLF excluded), never inside a UTF-8 sequence.
func fold(b *strings.Builder, s string) {
	limit := 75
	for len(s) > limit {
		i := limit
		for i > 0 && s[i]&0xC0 == 0x80 {
			i--
		}
		b.WriteString(s[:i])
		b.WriteString("\r\n ")
		s = s[i:]
		limit = 74 // the leading space counts
	}
	b.WriteString(s)
	b.WriteString("\r\n")
}
