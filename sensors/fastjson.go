package sensors

import "strconv"

// fastProject decodes the project's JSON (one object or an array of
// objects) without reflection, for the shapes shippers actually send. It
// reports ok = false whenever the payload uses anything it does not handle
// (string escapes or non-ASCII bytes, null, a member that is unknown,
// repeated or cased differently, a number it cannot convert, a syntax
// error, more than MaxBatchReadings elements); Decode then uses
// encoding/json, which accepts or rejects the payload with a precise
// message (a repeated or differently cased member is refused there, by
// checkMembers). When ok is true the result is what encoding/json would
// give; FuzzFastProject checks this.
func fastProject(body []byte, topicShipper string) (ws []wireReading, isArray, ok bool) {
	s := fastScanner{b: body}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '[' {
		isArray = true
		s.i++
		s.ws()
		for {
			if len(ws) == MaxBatchReadings {
				return nil, false, false
			}
			ws = append(ws, wireReading{})
			if !s.object(&ws[len(ws)-1], topicShipper) {
				return nil, false, false
			}
			s.ws()
			if s.eat(',') {
				s.ws()
				continue
			}
			if !s.eat(']') {
				return nil, false, false
			}
			break
		}
	} else {
		ws = make([]wireReading, 1)
		if !s.object(&ws[0], topicShipper) {
			return nil, false, false
		}
	}
	s.ws()
	if s.i != len(s.b) {
		return nil, false, false
	}
	return ws, isArray, true
}

type fastScanner struct {
	b []byte
	i int
}

// fastValues holds one reading's values so that its pointers cost one
// allocation.
type fastValues struct {
	seq  uint64
	f    [8]float64
	bl   [2]bool
	time string
}

func (s *fastScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *fastScanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str scans a string without escapes, control or non-ASCII bytes.
func (s *fastScanner) str() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// number scans a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
// and reports whether it is a plain unsigned integer.
func (s *fastScanner) number() (lit []byte, integer, ok bool) {
	start := s.i
	integer = true
	if s.eat('-') {
		integer = false
	}
	switch {
	case s.eat('0'):
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return nil, false, false
	}
	if s.eat('.') {
		integer = false
		if !s.digits() {
			return nil, false, false
		}
	}
	if s.eat('e') || s.eat('E') {
		integer = false
		if !s.eat('+') {
			s.eat('-')
		}
		if !s.digits() {
			return nil, false, false
		}
	}
	return s.b[start:s.i], integer, true
}

func (s *fastScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

func (s *fastScanner) boolean() (v, ok bool) {
	switch {
	case len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "true":
		s.i += 4
		return true, true
	case len(s.b)-s.i >= 5 && string(s.b[s.i:s.i+5]) == "false":
		s.i += 5
		return false, true
	}
	return false, false
}

// object scans one reading object into w.
func (s *fastScanner) object(w *wireReading, topicShipper string) bool {
	s.ws()
	if !s.eat('{') {
		return false
	}
	v := new(fastValues)
	s.ws()
	if s.eat('}') {
		return true
	}
	var seen uint16
	for {
		s.ws()
		key, ok := s.str()
		if !ok {
			return false
		}
		s.ws()
		if !s.eat(':') {
			return false
		}
		s.ws()
		var bit uint16
		switch string(key) {
		case "shipper":
			bit = 1 << 0
			val, ok := s.str()
			if !ok {
				return false
			}
			if string(val) == topicShipper {
				w.Shipper = &topicShipper
			} else {
				id := string(val)
				w.Shipper = &id
			}
		case "time":
			bit = 1 << 1
			val, ok := s.str()
			if !ok {
				return false
			}
			v.time = string(val)
			w.Time = &v.time
		case "seq":
			bit = 1 << 2
			lit, integer, ok := s.number()
			if !ok || !integer {
				return false
			}
			n, err := strconv.ParseUint(string(lit), 10, 64)
			if err != nil {
				return false
			}
			v.seq = n
			w.Seq = &v.seq
		case "lid_open", "light":
			i, p := 0, &w.LidOpen
			bit = 1 << 3
			if string(key) == "light" {
				i, p, bit = 1, &w.Light, 1<<4
			}
			b, ok := s.boolean()
			if !ok {
				return false
			}
			v.bl[i] = b
			*p = &v.bl[i]
		default:
			i, p := fastFloatField(string(key), w)
			if p == nil {
				return false
			}
			bit = 1 << (5 + i)
			lit, _, ok := s.number()
			if !ok {
				return false
			}
			f, err := strconv.ParseFloat(string(lit), 64)
			if err != nil {
				return false
			}
			v.f[i] = f
			*p = &v.f[i]
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		s.ws()
		if s.eat(',') {
			continue
		}
		return s.eat('}')
	}
}

// fastFloatField returns the index and the field of a numeric member, or a
// nil field for an unknown member.
func fastFloatField(key string, w *wireReading) (int, **float64) {
	switch key {
	case "temp_c":
		return 0, &w.TempC
	case "tilt_deg":
		return 1, &w.TiltDeg
	case "battery_pct":
		return 2, &w.BatteryPct
	case "ln2_pct":
		return 3, &w.LN2Pct
	case "lat":
		return 4, &w.Lat
	case "lon":
		return 5, &w.Lon
	}
	return 0, nil
}
