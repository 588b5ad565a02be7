// Package sensors owns coid's cold-chain telemetry plumbing: decoding the
// payloads that shippers publish (the project's JSON and SenML JSON, RFC
// 8428) into custody.Reading values, the embedded MQTT broker (its accounts
// and connection limits) and the paho subscriber that take them in, the
// ingest Pipeline that decodes them and commits them to the store before
// the message is acknowledged, and the Monitor that attributes stored
// readings to legs and records the excursions found. The rules themselves, judging a leg's readings against
// its custody.Profile (temperature, tilt, lid or light, and silence) into
// custody.Excursion values, live in package custody/coldchain; the Monitor
// calls them.
//
// Decoding is a pure function of its input: it does no I/O, reads no clock
// (the receive time is an argument) and keeps no state, so a redelivered
// payload gives the same readings, which the store then keeps once.
//
// # Topics
//
// A shipper publishes to "{prefix}/{shipper_id}/telemetry" (prefix
// "shippers" by default) at QoS 1. The topic names the shipper; every
// reading in the payload must name the same one. The embedded broker
// refuses QoS 2 telemetry (it closes the connection): it could confirm it
// only before storing it.
//
// # Project JSON
//
// One object, or an array of objects (an offline logger flushing its
// buffer):
//
//	{"shipper":"SHP-0042","seq":1187,"time":"2026-11-22T13:00:00Z","temp_c":-182.4,
//	 "tilt_deg":3.5,"lid_open":false,"light":false,"battery_pct":88,"ln2_pct":71,
//	 "lat":40.71,"lon":-74.01}
//
// "shipper" and "time" (RFC 3339) are required, the rest optional; "seq" is
// an integer from 0 to custody.MaxSeq. A member that is not listed here is
// an error, so that a misspelt "temp" can never silently yield readings
// without a temperature. A JSON null is the same as an absent member.
//
// # SenML JSON
//
// A SenML pack (RFC 8428 section 5: a JSON array of records) is mapped as
// follows. The record's full name is the base name bn (which applies to the
// record that carries it and all following ones until the next bn)
// concatenated with n, and must have one of the two forms
//
//	{shipper}/{quantity}                  e.g. bn "SHP-0042/", n "temp"
//	urn:dev:shipper:{shipper}:{quantity}  e.g. bn "urn:dev:shipper:SHP-0042:", n "temp"
//
// with these quantities, units (u, or the base unit bu for numeric
// records) and value fields:
//
//	quantity  unit                    value  Reading field
//	temp      Cel, or K (converted)   v      TempC
//	tilt      deg, or rad (converted) v      TiltDeg (degrees from upright)
//	lid       (none)                  vb     LidOpen (true = open)
//	light     (none)                  vb     Light (true = light inside)
//	battery   %EL, or / or % (ratio)  v      BatteryPct
//	ln2       / or % (ratio)          v      LN2Pct
//	lat       lat                     v      Lat
//	lon       lon                     v      Lon
//	seq       count or (none)         v      Seq (an integer 0..custody.MaxSeq)
//
// As RFC 8428 section 12.1 (note 2) defines them, "/" and "%" are ratios
// from 0 to 1, not percentages: 0.71 is stored as 71 %; "%EL" is the
// battery's percentage. EncodeSenML writes "%EL" and "/".
//
// The pack is read as RFC 8428 says, record by record. Base fields (bn,
// bt, bu, bv, bver) apply to the record that carries them and to the
// following ones until replaced; a record's full name is bn + n, its time
// bt + t, its numeric value bv + v, its unit u or else bu. A label coid
// does not know is ignored (section 4.4), including a case variant of a
// known one ("V" is not "v"), unless its name ends in "_" (an extension
// the receiver must understand): then the pack is refused. A record coid
// does not use is skipped and the readings beside it kept: a name that is
// not {shipper}/{quantity} or not one of the quantities above, a string or
// data value (vs, vd), a value of the other kind (v for lid, vb for temp),
// a sum without a value (a sum beside a value is ignored), a unit coid
// cannot convert, or a ratio outside 0..1. DecodeDetail returns the skipped
// records with their reasons; a pack of which no record is used is
// refused, with the reasons.
//
// The time of a used record must be an absolute Unix time, 2^28 or more:
// RFC 8428 section 4.5.3 makes smaller values relative to the receive
// time, which would give a redelivered or late pack other times (stored
// twice, or a breach squeezed into the catch-up moment), so a record whose
// time is relative or missing refuses the pack; a relative t on an
// absolute bt is fine. Times are kept to the microsecond, which is what a
// double carries for current Unix times. Records that resolve to the same
// time form one reading; a record repeated with the same name, time and
// value is one value, two different values of one quantity at one time
// refuse the pack. A known label of the wrong JSON type or repeated in one
// record, a record with two value fields or with a name, unit or time but
// no value or sum, bver above 10 or changing within the pack, and a name
// of another shipper than the topic's also refuse the pack.
//
// In the project's JSON, member names are case-sensitive and may appear
// only once per object: {"temp_c":-20,"TEMP_C":-180} is an error, not -180.
//
// # Rejection
//
// Apart from the SenML records skipped as described above, a payload is
// all or nothing: if any element is malformed or any reading
// fails custody.Reading.Validate (judged against the receive time), Decode
// returns no readings and an error wrapping custody.ErrInvalid that names
// the element and the reason. Payloads over MaxPayloadBytes, empty arrays
// and batches of more than MaxBatchReadings readings are rejected too.
package sensors
