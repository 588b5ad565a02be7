package custody

import (
	"fmt"
	"time"
)

// Access throttling: a manufacturing site's scarce slots are shared among
// the treatment centres (treatment sites) that send it cells by quota. A
// quota gives one centre a number of the plant's manufacturing starts per
// calendar month, the month of the manufacturing start day on the plant's
// own calendar (its time zone): a booking whose slot falls in that month
// counts against it. Every booking counts the quota use of its plant,
// centre and month, whether or not a quota is set, so a quota set in the
// middle of a month counts the bookings made before it. A pair without a
// quota is not throttled.
//
// Who sets quotas: the manufacturer's programme lead, who in coid is QA
// working at the plant (or an administrator): MaySetQuotas.
//
// The store takes a booking's quota use in the same transaction as its
// claims (Draft.Quota), checking it with CheckQuota against the quota it
// reads there, so no two concurrent bookings both take a centre's last
// quota slot of a month.

// KindQuota is the object kind of a quota in the audit trail.
const KindQuota ObjectKind = "quota"

// Audit actions on quotas.
const (
	// AuditQuotaSet defines or replaces a quota.
	AuditQuotaSet AuditAction = "quota.set"
	// AuditQuotaDelete removes a quota: the pair is no longer throttled.
	AuditQuotaDelete AuditAction = "quota.delete"
)

// maxQuota bounds a quota's slots a month.
const maxQuota = 31 * maxPerDay

// Quota is the number of a plant's manufacturing starts a treatment
// centre may hold per calendar month of the plant.
type Quota struct {
	// Plant is the manufacturing site's code.
	Plant string `json:"plant"`
	// Centre is the treatment site's code.
	Centre string `json:"centre"`
	// Slots is the number of manufacturing starts a month (0: none).
	Slots int `json:"slots"`
	// Updated is when the quota was last set (the service clock).
	Updated time.Time `json:"updated"`
}

// Key names the quota: plant/centre.
func (q Quota) Key() string { return QuotaKey(q.Plant, q.Centre) }

// QuotaKey names the quota of a plant and a treatment centre.
func QuotaKey(plant, centre string) string { return plant + "/" + centre }

// Validate checks the quota's own fields.
func (q Quota) Validate() error {
	if err := ValidateRegistryCode(q.Plant); err != nil {
		return fmt.Errorf("quota: plant: %w", err)
	}
	if err := ValidateRegistryCode(q.Centre); err != nil {
		return fmt.Errorf("quota: centre: %w", err)
	}
	if q.Slots < 0 || q.Slots > maxQuota {
		return fmt.Errorf("quota %s: slots %d must be 0-%d: %w", q.Key(), q.Slots, maxQuota, ErrInvalid)
	}
	return nil
}

// QuotaUse is what one booking counts against: the quota Key
// (QuotaKey) in Period, the calendar month (YYYY-MM) of its manufacturing
// start on the plant's calendar.
type QuotaUse struct {
	Key    string `json:"key"`
	Period string `json:"period"`
}

// QuotaPeriod returns the period (YYYY-MM) of a plant's day (YYYY-MM-DD).
func QuotaPeriod(date string) string {
	if len(date) < 7 {
		return date
	}
	return date[:7]
}

// QuotaUseOf returns what a plan of a chain treated at centre counts
// against: its plant's quota for centre in the month of its manufacturing
// start.
func QuotaUseOf(p Plan, centre string) QuotaUse {
	return QuotaUse{Key: QuotaKey(p.ManufacturingStart.Site, centre), Period: QuotaPeriod(p.ManufacturingStart.Date)}
}

// CheckQuota says whether one more booking may count against quota q (nil:
// none set, no limit) in use.Period when used bookings already do: nil,
// or an error wrapping ErrQuotaExhausted naming the quota and period.
// Stores call it inside the transaction that takes the use.
func CheckQuota(q *Quota, use QuotaUse, used int) error {
	if q == nil || used < q.Slots {
		return nil
	}
	return fmt.Errorf("quota %s for %s: all %d slots of the month are booked: %w", use.Key, use.Period, q.Slots, ErrQuotaExhausted)
}
