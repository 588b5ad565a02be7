package custody

import (
	"errors"
	"strconv"
	"time"
)

// errNotPlain declines a member parseReceiveSeal leaves to encoding/json.
var errNotPlain = errors.New("not in the plain canonical form")

// parseReceiveSeal reads a receive record's telemetry member (canonical
// JSON) into a ReceiveSeal as json.Unmarshal would, for the plain form
// the service writes: each member spelt exactly once, strings of printable
// ASCII without escapes, integers and numbers in JSON's grammar, times
// as RFC 3339 in UTC ("Z"), null only where a pointer is. ok is false for
// anything else, which the caller leaves to json.Unmarshal.
func parseReceiveSeal(b []byte) (rs ReceiveSeal, ok bool) {
	// One object, its braces matched (scanTopLevel trusts the last one to
	// close it): the members' values are checked one by one below.
	if end, err := skipValue(b, 0); err != nil || end != len(b) || !noTrailingComma(b) {
		return ReceiveSeal{}, false
	}
	var seen uint32
	once := func(bit uint32) error {
		if seen&bit != 0 {
			return errNotPlain
		}
		seen |= bit
		return nil
	}
	err := scanTopLevel(b, func(key, val []byte) error {
		var err error
		switch string(key) {
		case "version":
			err = once(1 << 0)
			rs.Version, err = plainString(val, err)
		case "leg":
			err = once(1 << 1)
			var n int64
			n, err = plainInt(val, err)
			rs.Leg = int(n)
		case "shipper":
			err = once(1 << 2)
			rs.Shipper, err = plainString(val, err)
		case "from":
			err = once(1 << 3)
			rs.From, err = plainTime(val, err)
		case "to":
			err = once(1 << 4)
			rs.To, err = plainTime(val, err)
		case "watermark":
			err = once(1 << 5)
			if err == nil && (len(val) == 0 || val[0] == '-') {
				err = errNotPlain
			}
			var n int64
			n, err = plainInt(val, err)
			rs.Watermark = uint64(n)
		case "seal":
			if err = once(1 << 6); err == nil {
				err = parseLegSeal(val, &rs.Seal)
			}
		default:
			err = errNotPlain
		}
		return err
	})
	return rs, err == nil
}

// parseLegSeal reads a LegSeal's plain form (see parseReceiveSeal).
func parseLegSeal(b []byte, s *LegSeal) error {
	if !noTrailingComma(b) {
		return errNotPlain
	}
	var seen uint32
	return scanTopLevel(b, func(key, val []byte) error {
		bit, err := uint32(0), error(nil)
		switch string(key) {
		case "encoding":
			bit = 1 << 0
			s.Encoding, err = plainString(val, nil)
		case "profile":
			bit = 1 << 1
			s.Profile, err = plainString(val, nil)
		case "limit_min_c":
			bit = 1 << 2
			s.LimitMinC, err = plainFloat(val)
		case "limit_max_c":
			bit = 1 << 3
			s.LimitMaxC, err = plainFloat(val)
		case "count":
			bit = 1 << 4
			var n int64
			n, err = plainInt(val, nil)
			s.Count = int(n)
		case "first_device_time":
			bit = 1 << 5
			s.FirstDeviceTime, err = plainTime(val, nil)
		case "last_device_time":
			bit = 1 << 6
			s.LastDeviceTime, err = plainTime(val, nil)
		case "min_c":
			bit = 1 << 7
			s.MinC, err = plainFloat(val)
		case "max_c":
			bit = 1 << 8
			s.MaxC, err = plainFloat(val)
		case "time_out_of_range_ns":
			bit = 1 << 9
			var n int64
			n, err = plainInt(val, nil)
			s.TimeOutOfRange = time.Duration(n)
		case "mkt_c":
			bit = 1 << 10
			s.MKTC, err = plainFloat(val)
		case "mkt_method":
			bit = 1 << 11
			s.MKTMethod, err = plainString(val, nil)
		case "mkt_max_gap_ns":
			bit = 1 << 12
			var n int64
			n, err = plainInt(val, nil)
			s.MKTMaxGap = time.Duration(n)
		case "readings_hash":
			bit = 1 << 13
			s.ReadingsHash, err = plainString(val, nil)
		default:
			return errNotPlain
		}
		if seen&bit != 0 {
			return errNotPlain
		}
		seen |= bit
		return err
	})
}

// plainString returns a JSON string of printable ASCII without escapes.
func plainString(val []byte, err error) (string, error) {
	if err != nil || len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
		return "", errNotPlain
	}
	for _, c := range val[1 : len(val)-1] {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return "", errNotPlain
		}
	}
	return string(val[1 : len(val)-1]), nil
}

// plainInt returns a JSON integer (no fraction, no exponent) that fits
// an int64.
func plainInt(val []byte, err error) (int64, error) {
	if err != nil || jsonNumberLen(val) != len(val) {
		return 0, errNotPlain
	}
	n, perr := strconv.ParseInt(string(val), 10, 64)
	if perr != nil {
		return 0, errNotPlain
	}
	return n, nil
}

// plainFloat returns a JSON number as a new float64, or nil for null.
func plainFloat(val []byte) (*float64, error) {
	if string(val) == "null" {
		return nil, nil
	}
	if !isJSONNumber(val) {
		return nil, errNotPlain
	}
	x, err := strconv.ParseFloat(string(val), 64)
	if err != nil {
		return nil, errNotPlain
	}
	return &x, nil
}

// jsonNumberLen returns len(b) when b is a JSON integer: an optional
// minus, then 0 or digits not starting with 0; 0 otherwise.
func jsonNumberLen(b []byte) int {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i == len(b):
		return 0
	case b[i] == '0':
		i++
	default:
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i != len(b) {
		return 0
	}
	return i
}

// isJSONNumber reports whether b is a number in JSON's grammar.
func isJSONNumber(b []byte) bool {
	digits := func(i int) int {
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j
	}
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i == len(b):
		return false
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i = digits(i)
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(b)
}

// plainTime returns a JSON string "YYYY-MM-DDTHH:MM:SS[.fraction]Z" as
// the time it names, in UTC, when every field is in range.
func plainTime(val []byte, err error) (time.Time, error) {
	s, err := plainString(val, err)
	if err != nil || len(s) < 20 || s[len(s)-1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, errNotPlain
	}
	num := func(s string) int {
		n := 0
		for _, c := range []byte(s) {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	y, mo, d, h, mi, sec := num(s[0:4]), num(s[5:7]), num(s[8:10]), num(s[11:13]), num(s[14:16]), num(s[17:19])
	ns := 0
	if frac := s[19 : len(s)-1]; frac != "" {
		if len(frac) < 2 || len(frac) > 10 || frac[0] != '.' {
			return time.Time{}, errNotPlain
		}
		if ns = num(frac[1:]); ns < 0 {
			return time.Time{}, errNotPlain
		}
		for range 10 - len(frac) {
			ns *= 10
		}
	}
	if y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 {
		return time.Time{}, errNotPlain
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC)
	if t.Day() != d || t.Month() != time.Month(mo) {
		return time.Time{}, errNotPlain // no such day in that month
	}
	return t, nil
}

// noTrailingComma reports whether the object b (whose members
// scanTopLevel reads, and which lets a comma before the closing brace
// pass) does not end with one.
func noTrailingComma(b []byte) bool { return len(b) >= 2 && b[len(b)-2] != ',' }
