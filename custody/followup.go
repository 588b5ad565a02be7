package custody

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// StepFollowUp records the patient's condition at one of the product's
// follow-up time points after infusion: coded grades and response only.
const StepFollowUp Step = "follow-up"

// defaultFollowUpDays are the follow-up time points, in days after
// infusion, of a product that configures none: the usual post-infusion
// assessments of a CAR-T protocol.
var defaultFollowUpDays = [...]int{7, 14, 28, 90}

// DefaultFollowUpGraceDays is how many days after its due date a follow-up
// may still be recorded before it is listed overdue, for a product that
// configures no grace window.
const DefaultFollowUpGraceDays = 3

// maxFollowUpDay bounds a follow-up time point: five years after infusion.
const maxFollowUpDay = 5 * 366

// MayRecordFollowUp reports whether role r records follow-ups: the
// treating site's physicians, nurses and coordinators, the roles the
// journey lets sign a follow-up.
func MayRecordFollowUp(r Role) bool {
	return r == RolePhysician || r == RoleNurse || r == RoleCoordinator
}

// Responses lists the coded responses a follow-up may record: complete
// response, partial response, stable disease, progressive disease, not
// evaluable.
var Responses = []string{"CR", "PR", "SD", "PD", "NE"}

// FollowUpData is the data of a follow-up record. It holds coded values
// only: the time point (days after infusion), the cytokine release
// syndrome grade (ASTCT 0-4), the immune effector cell-associated
// neurotoxicity syndrome grade (ICANS 0-4), the response and the date of
// the assessment.
type FollowUpData struct {
	Day          int    `json:"day"`
	CRSGrade     *int   `json:"crs_grade"`
	ICANSGrade   *int   `json:"icans_grade"`
	Response     string `json:"response"`
	AssessedDate string `json:"assessed_date"`
}

// Step names the step whose data this is.
func (FollowUpData) Step() Step { return StepFollowUp }

// FollowUpTimePoints returns the product's follow-up time points, in days after
// infusion: those it configures, or the default set (7, 14, 28, 90).
func (p Product) FollowUpTimePoints() []int {
	if len(p.FollowUpDays) > 0 {
		return p.FollowUpDays
	}
	return defaultFollowUpDays[:]
}

// FollowUpGrace returns the product's grace window for follow-ups: the
// one it configures or DefaultFollowUpGraceDays.
func (p Product) FollowUpGrace() int {
	if p.FollowUpGraceDays > 0 {
		return p.FollowUpGraceDays
	}
	return DefaultFollowUpGraceDays
}

// validateFollowUp checks the product's follow-up configuration.
func (p Product) validateFollowUp() error {
	for i, d := range p.FollowUpDays {
		if d < 1 || d > maxFollowUpDay || (i > 0 && d <= p.FollowUpDays[i-1]) {
			return fieldErr("follow_up_days", fmt.Errorf("product %s: follow_up_days must be increasing days 1-%d, got %v: %w",
				p.Code, maxFollowUpDay, p.FollowUpDays, ErrInvalid))
		}
	}
	if p.FollowUpGraceDays < 0 || p.FollowUpGraceDays > maxFollowUpDay {
		return fieldErr("follow_up_grace_days", fmt.Errorf("product %s: follow_up_grace_days %d must be 0-%d (0: the default %d): %w",
			p.Code, p.FollowUpGraceDays, maxFollowUpDay, DefaultFollowUpGraceDays, ErrInvalid))
	}
	return nil
}

// check checks the follow-up's own values: grades 0-4, a coded response
// and an assessed date that is a date no later than now.
func (x FollowUpData) check(now time.Time) error {
	grade := func(g *int) bool { return g != nil && *g >= 0 && *g <= 4 }
	if err := need(StepFollowUp, "day", x.Day >= 1 && x.Day <= maxFollowUpDay, fmt.Sprintf("must be a time point in days after infusion, 1-%d", maxFollowUpDay)); err != nil {
		return err
	}
	if err := need(StepFollowUp, "crs_grade", grade(x.CRSGrade), "must be an ASTCT cytokine release syndrome grade 0-4"); err != nil {
		return err
	}
	if err := need(StepFollowUp, "icans_grade", grade(x.ICANSGrade), "must be an ICANS neurotoxicity grade 0-4"); err != nil {
		return err
	}
	if err := need(StepFollowUp, "response", slices.Contains(Responses, x.Response), fmt.Sprintf("must be one of %v", Responses)); err != nil {
		return err
	}
	d, err := time.Parse(time.DateOnly, x.AssessedDate)
	if err := need(StepFollowUp, "assessed_date", err == nil, "must be a date YYYY-MM-DD"); err != nil {
		return err
	}
	return need(StepFollowUp, "assessed_date", !d.After(now), "is in the future")
}

// infusedAt returns when the chain's infuse record was written; false when
// the chain has none.
func (c *Chain) infusedAt() (time.Time, bool) {
	for _, r := range c.Records {
		if r.Step == StepInfuse {
			return r.Time, true
		}
	}
	return time.Time{}, false
}

// followUpsDone returns the time points the chain's follow-up records name.
func (c *Chain) followUpsDone() map[int]uint64 {
	done := map[int]uint64{}
	for _, r := range c.Records {
		if r.Step != StepFollowUp {
			continue
		}
		if x, err := r.Parsed(); err == nil {
			if f, ok := x.(FollowUpData); ok {
				done[f.Day] = r.Seq
			}
		}
	}
	return done
}

// chainProduct returns the registered product of chain c; false for a
// chain enrolled with a free-text product.
func (s *Service) chainProduct(ctx context.Context, c *Chain) (Product, bool, error) {
	p, err := readEntry[Product](ctx, s, KindProduct, c.Product)
	switch {
	case err == nil:
		return p, true, nil
	case errors.Is(err, ErrNotFound):
		return Product{}, false, nil
	}
	return Product{}, false, err
}

// checkFollowUp checks a follow-up against its chain: the time point is
// one of the product's, not yet recorded, and assessed no earlier than
// the infusion day.
func (s *Service) checkFollowUp(ctx context.Context, c *Chain, d *stepData, now time.Time) error {
	x, _ := d.parsed.(FollowUpData)
	if err := x.check(now); err != nil {
		return err
	}
	p, _, err := s.chainProduct(ctx, c)
	if err != nil {
		return err
	}
	if !slices.Contains(p.FollowUpTimePoints(), x.Day) {
		return fmt.Errorf("follow-up: data.day %d is not a follow-up time point of product %s (one of %v): %w",
			x.Day, c.Product, p.FollowUpTimePoints(), ErrInvalid)
	}
	if seq, ok := c.followUpsDone()[x.Day]; ok {
		return fmt.Errorf("follow-up: day %d is already recorded (record %d); amend it with a correction naming that record: %w",
			x.Day, seq, ErrConflict)
	}
	infused, ok := c.infusedAt()
	if !ok {
		return fmt.Errorf("follow-up: the chain has no infusion: %w", ErrConflict)
	}
	assessed, _ := time.Parse(time.DateOnly, x.AssessedDate)
	if assessed.Before(infused.UTC().Truncate(24 * time.Hour)) {
		return fmt.Errorf("follow-up: data.assessed_date %s is before the infusion (%s): %w", x.AssessedDate, infused.UTC().Format(time.DateOnly), ErrInvalid)
	}
	return nil
}

// checkFollowUpCorrection checks a correction of a follow-up record
// against the follow-up rules, as the record itself was checked: the
// corrected values over the record's own must be a valid follow-up
// (grades 0-4, a coded response, an assessed date no later than now and
// not before the infusion day). The time point is not corrected: the
// record is the chain's follow-up of that day (the overdue list and the
// export know it by it); a wrong day is recorded again under the right
// one. A correction of another step is left to its own checks.
func checkFollowUpCorrection(c *Chain, d *stepData, now time.Time) error {
	x, _ := d.parsed.(CorrectionData)
	var orig *Record
	for i := range c.Records {
		if c.Records[i].Seq == x.Corrects && c.Records[i].Step == StepFollowUp {
			orig = &c.Records[i]
		}
	}
	if orig == nil {
		return nil
	}
	members, err := orig.Members()
	if err != nil {
		return err
	}
	merged := maps.Clone(members)
	for k, v := range d.raw {
		if k != "corrects" && k != "reason" {
			merged[k] = v
		}
	}
	if day, ok := d.raw["day"]; ok && string(day) != string(members["day"]) {
		return fmt.Errorf("correction: data.day: the time point of follow-up record %d is not corrected; record the right day's follow-up instead: %w",
			orig.Seq, ErrInvalid)
	}
	b, err := json.Marshal(merged)
	if err != nil {
		return err
	}
	var f FollowUpData
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("correction: the corrected follow-up does not read: %v: %w", err, ErrInvalid)
	}
	if err := f.check(now); err != nil {
		return err
	}
	if infused, ok := c.infusedAt(); ok {
		assessed, _ := time.Parse(time.DateOnly, f.AssessedDate)
		if assessed.Before(infused.UTC().Truncate(24 * time.Hour)) {
			return fmt.Errorf("correction: data.assessed_date %s is before the infusion (%s): %w", f.AssessedDate, infused.UTC().Format(time.DateOnly), ErrInvalid)
		}
	}
	return nil
}

// OverdueFollowUp is one follow-up time point of an infused chain that is
// past its due date and its grace window and not recorded.
type OverdueFollowUp struct {
	COI     COI       `json:"coi"`
	Product string    `json:"product"`
	Site    string    `json:"treatment_site"`
	Day     int       `json:"day"`
	Due     time.Time `json:"due"`
	// DaysLate counts the days past the due date.
	DaysLate int `json:"days_late"`
}

// overdueFollowUps returns chain c's overdue follow-ups at now, for
// product p.
func overdueFollowUps(c *Chain, p Product, now time.Time) []OverdueFollowUp {
	infused, ok := c.infusedAt()
	if !ok || c.State != StateInfused {
		return nil
	}
	done := c.followUpsDone()
	var out []OverdueFollowUp
	for _, day := range p.FollowUpTimePoints() {
		due := infused.UTC().AddDate(0, 0, day)
		if _, ok := done[day]; ok || !now.After(due.AddDate(0, 0, p.FollowUpGrace())) {
			continue
		}
		out = append(out, OverdueFollowUp{COI: c.COI, Product: c.Product, Site: c.Sites.name(SiteTreatment), Day: day, Due: due,
			DaysLate: int(now.Sub(due) / (24 * time.Hour))})
	}
	return out
}

// OverdueFollowUps lists, at the service's clock, the overdue follow-ups
// of the infused chains the user may read: one page of at most limit
// chains (1-MaxChainPage) after the chain after, in COI order. next is the
// cursor of the following page, empty on the last. From a store that
// keeps the follow-up index (FollowUpIndex) the page holds only chains
// with an overdue follow-up and no chain is folded; otherwise it holds
// the page's infused chains, each folded.
func (s *Service) OverdueFollowUps(ctx context.Context, u User, after COI, limit int) (out []OverdueFollowUp, next COI, err error) {
	if idx, ok := s.store.(FollowUpIndex); ok {
		out, next, err := s.overdueFromIndex(ctx, idx, u, after, limit)
		if !errors.Is(err, errors.ErrUnsupported) {
			return out, next, err
		}
	}
	page, err := s.ChainsFor(ctx, u, StateInfused, after, limit)
	if err != nil {
		return nil, "", fmt.Errorf("overdue follow-ups: %w", err)
	}
	now := s.Now()
	out = []OverdueFollowUp{}
	for _, ci := range page.Chains {
		c, err := s.Chain(ctx, ci.COI)
		if err != nil {
			return nil, "", err
		}
		p, _, err := s.chainProduct(ctx, c)
		if err != nil {
			return nil, "", err
		}
		out = append(out, overdueFollowUps(c, p, now)...)
	}
	return out, page.Next, nil
}

// FollowUpRow is one follow-up record as the registry-reporting export
// holds it: the chain's COI, coded values and dates, never a patient
// identifier or free text.
type FollowUpRow struct {
	COI           COI       `json:"coi"`
	Product       string    `json:"product"`
	TreatmentSite string    `json:"treatment_site"`
	Day           int       `json:"day"`
	AssessedDate  string    `json:"assessed_date"`
	CRSGrade      int       `json:"crs_grade"`
	ICANSGrade    int       `json:"icans_grade"`
	Response      string    `json:"response"`
	Recorded      time.Time `json:"recorded"`
	Seq           uint64    `json:"seq"`
}

// FollowUpQuery filters the follow-up export: assessed dates from From to
// To (YYYY-MM-DD, both included, at most maxExportDays apart) and,
// optionally, one product.
type FollowUpQuery struct {
	From, To string
	Product  string
}

// maxExportDays bounds the span of one follow-up export.
const maxExportDays = 2 * 366

// FollowUpExport returns the follow-up records of the chains the user may
// read, assessed within the query's dates, in COI then time-point order.
func (s *Service) FollowUpExport(ctx context.Context, u User, q FollowUpQuery) ([]FollowUpRow, error) {
	from, ferr := time.Parse(time.DateOnly, q.From)
	to, terr := time.Parse(time.DateOnly, q.To)
	switch {
	case ferr != nil || terr != nil:
		return nil, fmt.Errorf("follow-up export: from and to must be dates YYYY-MM-DD: %w", ErrInvalid)
	case to.Before(from) || to.Sub(from) > maxExportDays*24*time.Hour:
		return nil, fmt.Errorf("follow-up export: to must be on or after from, at most %d days later: %w", maxExportDays, ErrInvalid)
	}
	if q.Product != "" {
		if err := ValidateRegistryCode(q.Product); err != nil {
			return nil, fmt.Errorf("follow-up export: product: %w", err)
		}
	}
	infos, err := s.VisibleChains(ctx, u, StateInfused)
	if err != nil {
		return nil, fmt.Errorf("follow-up export: %w", err)
	}
	out := []FollowUpRow{}
	for _, ci := range infos {
		if q.Product != "" && ci.Product != "" && ci.Product != q.Product {
			continue
		}
		c, err := s.Chain(ctx, ci.COI)
		if err != nil {
			return nil, err
		}
		if q.Product != "" && c.Product != q.Product {
			continue
		}
		var rows []FollowUpRow
		for _, r := range c.Records {
			if r.Step != StepFollowUp {
				continue
			}
			x, err := r.Parsed()
			f, ok := x.(FollowUpData)
			if err != nil || !ok || f.CRSGrade == nil || f.ICANSGrade == nil {
				return nil, fmt.Errorf("follow-up record %d of %s does not read: %w", r.Seq, c.COI, ErrChainBroken)
			}
			if f.AssessedDate < q.From || f.AssessedDate > q.To {
				continue
			}
			rows = append(rows, FollowUpRow{COI: c.COI, Product: c.Product, TreatmentSite: r.Site, Day: f.Day,
				AssessedDate: f.AssessedDate, CRSGrade: *f.CRSGrade, ICANSGrade: *f.ICANSGrade, Response: f.Response,
				Recorded: r.Time.UTC(), Seq: r.Seq})
		}
		slices.SortStableFunc(rows, func(a, b FollowUpRow) int { return a.Day - b.Day })
		out = append(out, rows...)
	}
	return out, nil
}
