// Package report renders the QA custody report of a chain as a PDF: the
// document QA files in the batch record.
//
// Build gathers what a report shows from a Source (a custody.Service through
// ServiceSource): the chain, the patient's initials and year of birth, every
// leg's readings, and a fresh verification of the chain and the whole
// ledger. Only QA and administrators may build a report. Write reads the
// chain through custody.ChainView, as every export does (typed step data,
// corrections, dispositions, seals and excursions by leg), and draws it:
//
//   - a header on every page: the COI with its boxed check character K, the
//     chain's QR code (the label payload of the chain, labels.WritePNG), the
//     product and sites, and "Page N of M";
//   - the chain's identity, the patient shown as initials and year of birth
//     only;
//   - the vein-to-vein durations: collection to receipt at manufacturing,
//     manufacturing (receipt to QA release), release to infusion, and the
//     total;
//   - every record in chain order with its step, local time with zone and
//     UTC, site, each signature (printed name, role, meaning, time: 21 CFR
//     11.50) and short hash, and a summary of its data; a corrected record is
//     flagged beside itself and stays as signed;
//   - per leg: shipper, profile and limits, the seal figures (count, first
//     and last reading, min, max, time out of range, MKT where it applies
//     (time-weighted: each reading weighted by half the interval to each
//     neighbour, intervals capped at the profile's silence time),
//     readings hash), and a vector chart of temperature against device time
//     with the allowed band, the limits, each excursion shaded and tilt, lid
//     and silence marked in strips beneath;
//   - for a product QA recorded out of specification, its oos records and
//     failed attributes, the physician's request, the consent and the
//     exceptional release with QA's and the medical director's signatures;
//   - for a chain enrolled from an expanded-access request (Input.Access,
//     which Build fills from an AccessSource), the request, its state and
//     deadlines and every record of its history with its signatures;
//   - the excursions and broken seals with their QA dispositions;
//   - the verification block: records verified, chain head, ledger head,
//     when and by whom the report was generated.
//
// # Determinism
//
// The PDF's creation and modification dates are the report's generation
// time, resources are written in sorted order, and nothing is drawn from a
// map without sorting it, so the same Input gives the same bytes.
//
// # Charts
//
// A chart plots at most four points per half millimetre of its width (the
// lowest and highest temperature of that time bucket and the readings on
// either side of a limit crossing), plus the first, last and most extreme
// reading of every excursion, whatever the number of readings: a leg of
// 20,000 readings is drawn from about 1,400 points at most.
//
// # Text
//
// The PDF uses the core fonts Helvetica and Courier with cp1252 encoding,
// so nothing is embedded; characters outside cp1252 in free text (names,
// notes) print as a substitute.
package report
