// Package storegen builds benchmark stores that look like years of use: a
// bbolt file holding chains walked from enrollment to infusion through
// the service, as the server writes them (each step checked, signed with
// its signers' passwords, each leg received with the seal of its
// readings), and minute readings for every leg. It is a test helper: the
// benchmarks of boltstore, api and api/web open the same kept store, and
// coid verify accepts it. With Config.Network, the chains belong to a
// registered network of hospitals and plants (network.go), so a user
// bound to one hospital reads only its chains.
//
// A store of Chains chains with PerLeg readings a leg lives in
// Config.Dir(root) and is generated once: Ensure builds it in a
// temporary directory beside it and renames it into place only when it is
// complete, so a later run reuses it and never finds half a store.
//
// Speed comes from the store's own batching: many callers record steps at
// once, so the ledger's group commit puts hundreds of chains' drafts into
// each transaction, and readings go in batches of tens of thousands, a
// few in flight, while the callers' signing and sealing run on every core.
package storegen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/custody/phitext"
)

// T0 is when the generated chains are collected: the service's clock
// stands there while the first legs are recorded.
var T0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

// DefaultPerLeg is the readings of a leg by default: 66, so a chain holds
// about 131 readings and 100,000 chains about 13.1 million, the
// proportion of the store the speed targets were written against.
const DefaultPerLeg = 66

// Users are the accounts of a generated store without a network, by ID,
// with their roles (Config.UserRoles gives any store's). Their passwords
// are Password(id).
var Users = map[string]custody.Role{"coord": custody.RoleCoordinator, "nurse1": custody.RoleNurse, "nurse2": custody.RoleNurse,
	"courier1": custody.RoleCourier, "mfg1": custody.RoleManufacturing, "qa1": custody.RoleQA}

// Password returns the password of the generated store's user id.
func Password(id string) string { return "pw-" + id + "-secret" }

// Patient is every generated chain's patient: a record number and a birth
// date that no generated shipper ID (SHP-A000000 to SHP-B999999) can be
// read as, so the ledger's patient-identifier guard lets them through.
func Patient() custody.PHI {
	return custody.PHI{Name: "Jane Q Doe", BirthDate: "1970-11-23", MRN: "MRN-7Q4K9X2"}
}

// Shipper returns the shipper that carries leg (0 or 1) of the i-th
// generated chain (in enrollment order): SHP-A%06d for the first leg,
// SHP-B%06d for the second.
func Shipper(i, leg int) string {
	return fmt.Sprintf("SHP-%c%06d", 'A'+leg, i)
}

// Config sets the size of a generated store and how it is built.
type Config struct {
	// Chains is how many chains to walk (1 or more).
	Chains int
	// PerLeg is the minute readings stored for each leg before its
	// receipt (0: DefaultPerLeg).
	PerLeg int
	// Callers is how many goroutines record steps at once (0: 512).
	Callers int
	// Cohort is how many chains go through the journey together (0:
	// 4,096).
	Cohort int
	// Network is how many hospitals the store's network has (0: none,
	// the chains name three free-text sites that no registered site
	// answers to, so every user reads every chain). With N hospitals,
	// an administrator registers them before enrollment, with Plants
	// manufacturing plants of one manufacturer and a courier with its
	// fleet of shippers, and binds the users to them (UserRoles);
	// chain i is collected and treated at HospitalSite(i % N) and
	// manufactured at PlantSite(i % Plants) (Sites).
	Network int
	// Logger reports progress (nil: none).
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.PerLeg <= 0 {
		c.PerLeg = DefaultPerLeg
	}
	if c.Callers <= 0 {
		c.Callers = 512
	}
	if c.Cohort <= 0 {
		c.Cohort = 4096
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Readings is how many readings the store of c holds.
func (c Config) Readings() int { return c.Chains * 2 * c.withDefaults().PerLeg }

// End is the service clock's time once the store of c is generated: the
// last cohort's infusions. A service over the store should run its clock
// from there.
func (c Config) End() time.Time {
	c = c.withDefaults()
	cohorts := (c.Chains + c.Cohort - 1) / c.Cohort
	perLeg := time.Duration(c.PerLeg+1) * time.Minute
	return T0.Add(time.Duration(cohorts-1)*(2*perLeg+time.Minute) + 2*perLeg)
}

// The environment of the benchmarks that use kept stores.
const (
	// EnvStore names the directory the kept stores live under; the
	// benchmarks over kept stores are skipped without it.
	EnvStore = "COID_BENCH_STORE"
	// EnvChains lists the stores' sizes in chains, comma-separated
	// (default 1000,10000,100000).
	EnvChains = "COID_BENCH_CHAINS"
	// EnvReadings sets the readings a leg (default DefaultPerLeg).
	EnvReadings = "COID_BENCH_READINGS"
	// EnvNetwork sets the hospitals of the stores' network (Config.Network;
	// default 0: no network).
	EnvNetwork = "COID_BENCH_NETWORK"
)

// FromEnv returns the kept stores' directory (empty: none asked) and the
// Configs of the stores the environment asks for.
func FromEnv() (string, []Config, error) {
	root := os.Getenv(EnvStore)
	if root == "" {
		return "", nil, nil
	}
	perLeg := 0
	if v := os.Getenv(EnvReadings); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return "", nil, fmt.Errorf("storegen: %s=%q: %w", EnvReadings, v, custody.ErrInvalid)
		}
		perLeg = n
	}
	network := 0
	if v := os.Getenv(EnvNetwork); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return "", nil, fmt.Errorf("storegen: %s=%q: %w", EnvNetwork, v, custody.ErrInvalid)
		}
		network = n
	}
	sizes := os.Getenv(EnvChains)
	if sizes == "" {
		sizes = "1000,10000,100000"
	}
	var cfgs []Config
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return "", nil, fmt.Errorf("storegen: %s=%q: %w", EnvChains, sizes, custody.ErrInvalid)
		}
		cfgs = append(cfgs, Config{Chains: n, PerLeg: perLeg, Network: network})
	}
	return root, cfgs, nil
}

// Dir is where a store of chains chains and perLeg readings a leg, with
// no network, is kept under root.
func Dir(root string, chains, perLeg int) string {
	if perLeg <= 0 {
		perLeg = DefaultPerLeg
	}
	return filepath.Join(root, fmt.Sprintf("chains%d-readings%d", chains, perLeg))
}

// Dir is where the store of c is kept under root: Dir(root, c.Chains,
// c.PerLeg) without a network, and beside it with "-network{N}" added for
// a network of N hospitals, so stores with and without one never mix.
func (c Config) Dir(root string) string {
	d := Dir(root, c.Chains, c.PerLeg)
	if c.Network > 0 {
		d += fmt.Sprintf("-network%d", c.Network)
	}
	return d
}

// Stats describes a generated store.
type Stats struct {
	// Chains, Records and Readings are what was stored.
	Chains, Records, Readings int
	// Took is the wall time of the generation, CPU its user and system
	// time (zero where the platform does not report it).
	Took, CPU time.Duration
	// FileBytes is the size of the store's file once closed.
	FileBytes int64
}

// statsFile keeps a generated store's Stats beside its file.
const statsFile = "storegen.json"

// Ensure returns the directory of the kept store for cfg under root,
// generating it first when it is not there. The second result is the
// store's Stats (as recorded when it was generated).
func Ensure(ctx context.Context, root string, cfg Config) (string, Stats, error) {
	cfg = cfg.withDefaults()
	dir := cfg.Dir(root)
	if st, err := readStats(dir); err == nil {
		return dir, st, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", Stats{}, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", Stats{}, fmt.Errorf("storegen: %w", err)
	}
	tmp, err := os.MkdirTemp(root, filepath.Base(dir)+".partial-")
	if err != nil {
		return "", Stats{}, fmt.Errorf("storegen: %w", err)
	}
	defer os.RemoveAll(tmp) // gone once renamed
	cfg.Logger.Info("storegen: generating", "chains", cfg.Chains, "per_leg", cfg.PerLeg, "network", cfg.Network, "dir", dir)
	st, err := Generate(ctx, tmp, cfg)
	if err != nil {
		return "", Stats{}, err
	}
	j, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(tmp, statsFile), j, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		return "", Stats{}, fmt.Errorf("storegen: %w", err)
	}
	return dir, st, nil
}

func readStats(dir string) (Stats, error) {
	var st Stats
	j, err := os.ReadFile(filepath.Join(dir, statsFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(j, &st); err != nil {
		return st, fmt.Errorf("storegen: %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, boltstore.FileName)); err != nil {
		return st, fmt.Errorf("storegen: %s has its figures but no store: %w", dir, err)
	}
	return st, nil
}

// Clock is a service clock the generator moves.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock {
	c := &Clock{}
	c.Set(t)
	return c
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// NewService returns a service over st configured as the server
// configures one for these stores (the built-in profiles, st as the
// reading store), with now as its clock.
func NewService(st *boltstore.Store, now func() time.Time, log *slog.Logger) (*custody.Service, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return custody.NewService(custody.Config{Store: st, Hasher: passwd.Fast(), Logger: log,
		Now: now, FIN: "A9999", Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles())),
		Telemetry: custody.TelemetryConfig{Readings: st}, Folder: phitext.Folder{}})
}

// step is one step of the journey after enrollment.
type step struct {
	actor string
	step  custody.Step
	data  json.RawMessage
	sigs  []custody.SignatureRequest
}

// journey returns a chain's steps after enrollment, in order: nine
// records from collection to infusion, its legs carried by shippers[0]
// and shippers[1], the hospital's steps taken by its nurses (nurse1 and
// nurse2 with the suffix staff: "" without a network, HospitalStaff's
// otherwise).
func journey(coi custody.COI, staff string, shippers [2]string) []step {
	sig := func(user string, m custody.Meaning) custody.SignatureRequest {
		return custody.SignatureRequest{User: user, Password: Password(user), Meaning: m}
	}
	nurse1, nurse2 := "nurse1"+staff, "nurse2"+staff
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	fp1 := custody.LabelPayload(custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1})
	bedside, _ := json.Marshal(map[string]any{"bag_code": fp1, "wristband_code": Patient().MRN})
	return []step{
		{nurse1, custody.StepCollect, raw(`{"din":"A999926123456","volume_ml":212.5,"bags":2,"started_at":"2026-11-23T06:00:00Z","ended_at":"2026-11-23T07:30:00Z"}`),
			[]custody.SignatureRequest{sig(nurse1, custody.MeaningPerformed), sig(nurse2, custody.MeaningVerified)}},
		{nurse1, custody.StepShip, raw(fmt.Sprintf(`{"shipper":%q,"profile":"refrigerated"}`, shippers[0])),
			[]custody.SignatureRequest{sig(nurse1, custody.MeaningHandedOver), sig("courier1", custody.MeaningReceived)}},
		{"mfg1", custody.StepReceive, raw(`{"seal_intact":true}`), []custody.SignatureRequest{sig("mfg1", custody.MeaningReceived)}},
		{"mfg1", custody.StepManufacture, raw(`{"final_bags":2}`), []custody.SignatureRequest{sig("mfg1", custody.MeaningPerformed)}},
		{"qa1", custody.StepRelease, raw(`{}`), []custody.SignatureRequest{sig("qa1", custody.MeaningApproved)}},
		{"mfg1", custody.StepShip, raw(fmt.Sprintf(`{"shipper":%q,"profile":"cryogenic"}`, shippers[1])),
			[]custody.SignatureRequest{sig("mfg1", custody.MeaningHandedOver), sig("courier1", custody.MeaningReceived)}},
		{nurse1, custody.StepReceive, raw(`{"seal_intact":true}`), []custody.SignatureRequest{sig(nurse1, custody.MeaningReceived)}},
		{nurse1, custody.StepBedsideVerify, bedside,
			[]custody.SignatureRequest{sig(nurse1, custody.MeaningVerified), sig(nurse2, custody.MeaningVerified)}},
		{nurse1, custody.StepInfuse, raw(`{}`), []custody.SignatureRequest{sig(nurse1, custody.MeaningPerformed)}},
	}
}

// Generate builds the store of cfg in dir (which must hold no store) and
// closes it. The chains go through in cohorts of Cohort chains, each
// cohort phase by phase, every chain of it through a phase before the
// next: collection and the first shipment; the first legs' readings;
// receipt (sealing the first leg), manufacture, release and the second
// shipment; the second legs' readings; receipt (sealing the second leg),
// bedside verification and infusion. The service's clock moves forward
// from T0 with the cohorts, each a little over two legs later than the
// one before. Enrollment, whose COI reservation is a durable write of its
// own for each chain, runs ahead of the cohorts on its own callers, so
// its commits overlap the cohorts' work.
func Generate(ctx context.Context, dir string, cfg Config) (Stats, error) {
	cfg = cfg.withDefaults()
	if cfg.Chains < 1 {
		return Stats{}, fmt.Errorf("storegen: %d chains: %w", cfg.Chains, custody.ErrInvalid)
	}
	start, cpu0 := time.Now(), CPUTime()
	st, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		return Stats{}, fmt.Errorf("storegen: %w", err)
	}
	g := &gen{cfg: cfg, st: st, clock: NewClock(T0), users: map[string]custody.User{}}
	err = g.run(ctx)
	if cerr := st.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("storegen: close: %w", cerr)
	}
	if err != nil {
		return Stats{}, err
	}
	fi, err := os.Stat(filepath.Join(dir, boltstore.FileName))
	if err != nil {
		return Stats{}, fmt.Errorf("storegen: %w", err)
	}
	return Stats{Chains: cfg.Chains, Records: cfg.Chains * 10, Readings: cfg.Readings(),
		Took: time.Since(start), CPU: CPUTime() - cpu0, FileBytes: fi.Size()}, nil
}

// gen is one generation's state.
type gen struct {
	cfg   Config
	st    *boltstore.Store
	svc   *custody.Service
	clock *Clock
	users map[string]custody.User
	cois  []custody.COI
	steps [][]step
}

func (g *gen) run(ctx context.Context) error {
	var err error
	if g.svc, err = NewService(g.st, g.clock.Now, nil); err != nil {
		return fmt.Errorf("storegen: %w", err)
	}
	// The first account is the administrator who registers the network,
	// before the others are bound to it.
	for n, a := range g.cfg.accounts() {
		if n == 1 && g.cfg.Network > 0 {
			if err := g.registerNetwork(ctx); err != nil {
				return err
			}
		}
		if _, err := g.svc.AddUserIn(ctx, a.id, "Printed "+a.id, a.role, Password(a.id), a.org, a.sites); err != nil {
			return fmt.Errorf("storegen: user %s: %w", a.id, err)
		}
		if g.users[a.id], err = g.svc.User(ctx, a.id); err != nil {
			return fmt.Errorf("storegen: user %s: %w", a.id, err)
		}
	}
	g.cois = make([]custody.COI, g.cfg.Chains)
	g.steps = make([][]step, g.cfg.Chains)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The enroller closes each cohort's channel once its chains are all
	// enrolled, and stops at its first error, which it leaves in enrollErr.
	var cohorts []chan struct{}
	for lo := 0; lo < g.cfg.Chains; lo += g.cfg.Cohort {
		cohorts = append(cohorts, make(chan struct{}))
	}
	var enrollErr error
	enrolled := make(chan struct{})
	go func() {
		defer close(enrolled)
		for k, ready := range cohorts {
			lo := k * g.cfg.Cohort
			if enrollErr = g.enroll(ctx, lo, min(lo+g.cfg.Cohort, g.cfg.Chains)); enrollErr != nil {
				cancel()
				return
			}
			close(ready)
		}
	}()
	log, begin := g.cfg.Logger, time.Now()
	perLeg := time.Duration(g.cfg.PerLeg+1) * time.Minute
	t0 := T0
	for k, ready := range cohorts {
		select {
		case <-ready:
		case <-enrolled:
			// The enroller is done: it closed ready first, or failed.
			select {
			case <-ready:
			default:
				if enrollErr == nil {
					enrollErr = ctx.Err()
				}
				return enrollErr
			}
		}
		lo := k * g.cfg.Cohort
		hi := min(lo+g.cfg.Cohort, g.cfg.Chains)
		t1, t2 := t0.Add(perLeg), t0.Add(2*perLeg)
		for _, p := range []func() error{
			func() error { g.clock.Set(t0); return g.record(ctx, lo, hi, 0, 2) }, // collect, ship
			func() error { return g.readings(ctx, lo, hi, 0, t0, 4.5) },          // the first legs
			func() error { g.clock.Set(t1); return g.record(ctx, lo, hi, 2, 6) }, // receive, manufacture, release, ship
			func() error { return g.readings(ctx, lo, hi, 1, t1, -180) },         // the second legs
			func() error { g.clock.Set(t2); return g.record(ctx, lo, hi, 6, 9) }, // receive, bedside check, infuse
		} {
			if err := p(); err != nil {
				cancel()
				<-enrolled
				return err
			}
		}
		t0 = t2.Add(time.Minute)
		log.Info("storegen: cohort done", "chains", hi, "of", g.cfg.Chains, "took", time.Since(begin).Round(time.Millisecond))
	}
	<-enrolled
	return enrollErr
}

// parallel calls fn(i) for every chain i in [lo, hi) from callers
// goroutines, and returns the first error.
func (g *gen) parallel(ctx context.Context, lo, hi, callers int, fn func(i int) error) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		first error
		once  sync.Once
	)
	next.Store(int64(lo))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(callers, hi-lo) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(hi) && ctx.Err() == nil; i = next.Add(1) - 1 {
				if err := fn(int(i)); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// enrollCallers is how many goroutines enroll at once: each enrollment
// waits for its own COI reservation's commit, so more would only queue.
const enrollCallers = 64

// enroll enrolls chains [lo, hi).
func (g *gen) enroll(ctx context.Context, lo, hi int) error {
	return g.parallel(ctx, lo, hi, enrollCallers, func(i int) error {
		staff := ""
		if g.cfg.Network > 0 {
			staff = HospitalStaff(i % g.cfg.Network)
		}
		c, err := g.svc.Enroll(ctx, g.users["coord"+staff], custody.EnrollRequest{Patient: Patient(), Product: "Autologous CAR-T cells",
			Sites: g.cfg.Sites(i)})
		if err != nil {
			return fmt.Errorf("storegen: enroll chain %d: %w", i, err)
		}
		g.cois[i], g.steps[i] = c.COI, journey(c.COI, staff, [2]string{g.cfg.ShipperOf(i, 0), g.cfg.ShipperOf(i, 1)})
		return nil
	})
}

// record takes steps [from, to) of the journeys of chains [lo, hi).
func (g *gen) record(ctx context.Context, lo, hi, from, to int) error {
	return g.parallel(ctx, lo, hi, g.cfg.Callers, func(i int) error {
		for k := from; k < to; k++ {
			s := g.steps[i][k]
			if _, err := g.svc.Record(ctx, g.users[s.actor], g.cois[i], custody.StepRequest{Step: s.step, Data: s.data, Signatures: s.sigs}); err != nil {
				return fmt.Errorf("storegen: step %d (%s) of chain %s: %w", k, s.step, g.cois[i], err)
			}
		}
		return nil
	})
}

// readingsBatch is the readings of one AddReadings call, and
// readingsInFlight how many such calls wait for their commit at once.
const (
	readingsBatch    = 16384
	readingsInFlight = 4
)

// readings stores leg's minute readings for chains [lo, hi) from start, at
// tempC plus up to 0.6 degrees (a battery level on every tenth), in
// batches of readingsBatch in shipper order, built on one core while the
// store commits the previous ones on the other.
func (g *gen) readings(ctx context.Context, lo, hi, leg int, start time.Time, tempC float64) error {
	perLeg := g.cfg.PerLeg
	sem := make(chan struct{}, readingsInFlight)
	errs := make(chan error, readingsInFlight+1)
	var wg sync.WaitGroup
	submit := func(batch []custody.Reading) error {
		select {
		case err := <-errs:
			return err
		case sem <- struct{}{}:
		}
		wg.Add(1)
		err := g.st.AddReadingsAsync(batch, nil, func(_ custody.IngestResult, err error) {
			if err != nil {
				errs <- fmt.Errorf("storegen: readings: %w", err)
			}
			<-sem
			wg.Done()
		})
		if err != nil {
			<-sem
			wg.Done()
			return fmt.Errorf("storegen: readings: %w", err)
		}
		return nil
	}
	temps := make([]float64, 7)
	for k := range temps {
		temps[k] = tempC + float64(k)/10
	}
	battery := 90.0
	batch := make([]custody.Reading, 0, readingsBatch)
	var err error
	for i := lo; i < hi && err == nil; i++ {
		shipper, seq0 := g.cfg.ShipperOf(i, leg), g.cfg.seqBase(i)
		for k := range perLeg {
			t := start.Add(time.Duration(k+1) * time.Minute)
			r := custody.Reading{Shipper: shipper, Seq: seq0 + uint64(k+1), HasSeq: true,
				DeviceTime: t, ReceivedTime: t.Add(time.Second), TempC: &temps[k%7]}
			if k%10 == 0 {
				r.BatteryPct = &battery
			}
			if batch = append(batch, r); len(batch) == readingsBatch {
				if err = submit(batch); err != nil {
					break
				}
				batch = make([]custody.Reading, 0, readingsBatch)
			}
		}
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
	}
	if err == nil && len(batch) > 0 {
		err = submit(batch)
	}
	wg.Wait()
	if err != nil {
		return err
	}
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}
