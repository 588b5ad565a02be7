// Package coldchain owns coid's cold-chain rules: judging a leg's
// telemetry readings (custody.Reading) against its custody.Profile
// (temperature, tilt, lid or light, and silence) into custody.Excursion
// values (Evaluate); the same for one leg, where an excursion going on at
// the leg's receipt ends there (EvaluateLeg); and which excursion kinds a
// profile judges at all (Judged); the same judgement carried forward
// reading by reading (Series, and LegState for a monitor's leg, with its
// hold-time fit), so that a monitor judges only the readings stored since
// its last look and gets what Evaluate gives over all of them.
//
// The telemetry model itself (readings, profiles, seals, excursions and
// their records) stays in package custody; coldchain imports custody, and
// custody does not import coldchain: the service takes the judging as an
// argument (custody.Service.ReviseLegExcursions' judged function), which
// the sensors monitor wires to Judged.
//
// Judging is a pure function of its inputs: it does no I/O, reads no clock
// and keeps no state beyond the Series or LegState its caller holds, so
// judging a leg again (every monitor pass, after a restart, after late
// readings) gives the same excursions from the same
// readings, and the excursion records are written once. The package imports only the
// standard library and custody.
package coldchain
