package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// Scheduling: the sites' capacity (site code -> custody.Capacity JSON),
// the count of claims held per site, day and product (the index an
// availability query reads as one range per site), and the claims
// themselves by chain (so a release frees only a claim its chain holds).
// An open waiting-list offer holds its slot: the hold is counted with the
// claims of its slot (so no booking by another chain takes it) and kept by
// chain, until the offer is answered or expires, or the chain books the
// held slot, which turns the hold into its claim. Keys join their parts
// with a zero byte, which no code or date holds; a chair's product part is
// empty.
var (
	bucketCapacity   = []byte("capacity")    // site -> Capacity JSON
	bucketSlotUsed   = []byte("slot_used")   // site 0 date 0 product -> count (4 bytes BE)
	bucketSlotClaims = []byte("slot_claims") // site 0 date 0 product 0 COI -> record seq (8 bytes BE)
	bucketSlotHolds  = []byte("slot_holds")  // COI -> site 0 date 0 product of the slot its offer holds
	// scheduleBuckets are created by Open.
	scheduleBuckets = [][]byte{bucketCapacity, bucketSlotUsed, bucketSlotClaims, bucketSlotHolds}
)

var _ custody.ScheduleStore = (*Store)(nil)

func slotKey(c custody.Claim) []byte {
	k := make([]byte, 0, len(c.Site)+len(c.Date)+len(c.Product)+2)
	k = append(append(append(k, c.Site...), 0), c.Date...)
	return append(append(k, 0), c.Product...)
}

func claimKey(c custody.Claim, coi custody.COI) []byte {
	return append(append(slotKey(c), 0), coi...)
}

func validClaim(c custody.Claim) error {
	if c.Site == "" || len(c.Date) != len(custody.DateLayout) || bytes.IndexByte([]byte(c.Site+c.Date+c.Product), 0) >= 0 {
		return fmt.Errorf("claim %s is malformed: %w", c.ID(), custody.ErrInvalid)
	}
	return nil
}

// claimsTx checks and applies a draft's claims and releases inside the
// append's transaction.
type claimsTx struct {
	used, claims, capacity, holds *bolt.Bucket
	// caps holds the capacities decoded in this transaction.
	caps map[string]*custody.Capacity
}

func newClaimsTx(tx *bolt.Tx) *claimsTx {
	return &claimsTx{used: tx.Bucket(bucketSlotUsed), claims: tx.Bucket(bucketSlotClaims), capacity: tx.Bucket(bucketCapacity),
		holds: tx.Bucket(bucketSlotHolds), caps: map[string]*custody.Capacity{}}
}

// heldBy reports whether chain coi's offer holds claim c's slot.
func (c *claimsTx) heldBy(cl custody.Claim, coi custody.COI) bool {
	v := c.holds.Get([]byte(coi))
	return v != nil && bytes.Equal(v, slotKey(cl))
}

// setHold frees the slot chain coi holds, if any, then holds slot hold
// (nil: none) while the site can give it (else an error wrapping
// custody.ErrSlotTaken, returned as refused, before anything is written).
func (c *claimsTx) setHold(coi custody.COI, hold *custody.Claim) (refused, fatal error) {
	if c.used == nil || c.holds == nil || c.capacity == nil {
		return nil, fmt.Errorf("scheduling buckets are missing: %w", custody.ErrDamaged)
	}
	old := c.holds.Get([]byte(coi))
	if hold != nil {
		if err := validClaim(*hold); err != nil {
			return err, nil
		}
		k := slotKey(*hold)
		if bytes.Equal(old, k) {
			return nil, nil // held already
		}
		if hold.Product == "" {
			return fmt.Errorf("an offer holds a manufacturing slot, not a chair: %w", custody.ErrInvalid), nil
		}
		if c.claims.Get(claimKey(*hold, coi)) != nil {
			return fmt.Errorf("chain %s holds claim %s already: %w", coi, hold.ID(), custody.ErrConflict), nil
		}
		cp, err := c.capacityOf(hold.Site)
		if err != nil {
			return nil, err
		}
		if err := custody.CheckClaim(cp, *hold, c.count(k)); err != nil {
			return err, nil
		}
	}
	if old != nil {
		k := bytes.Clone(old)
		if err := c.holds.Delete([]byte(coi)); err != nil {
			return nil, err
		}
		if err := c.setCount(k, max(c.count(k)-1, 0)); err != nil {
			return nil, err
		}
	}
	if hold == nil {
		return nil, nil
	}
	k := slotKey(*hold)
	if err := c.holds.Put([]byte(coi), k); err != nil {
		return nil, err
	}
	return nil, c.setCount(k, c.count(k)+1)
}

func (c *claimsTx) capacityOf(site string) (*custody.Capacity, error) {
	if cp, ok := c.caps[site]; ok {
		return cp, nil
	}
	var cp *custody.Capacity
	if v := c.capacity.Get([]byte(site)); v != nil {
		cp = new(custody.Capacity)
		if err := json.Unmarshal(v, cp); err != nil {
			return nil, fmt.Errorf("capacity of %s: malformed: %v: %w", site, err, custody.ErrDamaged)
		}
	}
	c.caps[site] = cp
	return cp, nil
}

func (c *claimsTx) count(k []byte) int {
	v := c.used.Get(k)
	if len(v) != 4 {
		return 0
	}
	return int(binary.BigEndian.Uint32(v))
}

func (c *claimsTx) setCount(k []byte, n int) error {
	if n == 0 {
		return c.used.Delete(k)
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(n))
	return c.used.Put(k, b[:])
}

// check refuses the draft's claims and releases without writing: a
// release the chain does not hold (ErrConflict), a claim it holds already
// (ErrConflict) or one the site cannot give (ErrSlotTaken). An error of
// the store itself is returned as fatal.
func (c *claimsTx) check(d *custody.Draft) (refused, fatal error) {
	if c.used == nil || c.claims == nil || c.capacity == nil {
		return nil, fmt.Errorf("scheduling buckets are missing: %w", custody.ErrDamaged)
	}
	coi := d.Record.Chain
	for _, r := range d.Releases {
		if err := validClaim(r); err != nil {
			return err, nil
		}
		if c.claims.Get(claimKey(r, coi)) == nil {
			return fmt.Errorf("chain %s holds no claim %s to free: %w", coi, r.ID(), custody.ErrConflict), nil
		}
	}
	for i, cl := range d.Claims {
		if err := validClaim(cl); err != nil {
			return err, nil
		}
		for _, o := range d.Claims[:i] {
			if o == cl {
				return fmt.Errorf("claim %s is given twice: %w", cl.ID(), custody.ErrInvalid), nil
			}
		}
		for _, r := range d.Releases {
			if r == cl {
				return fmt.Errorf("claim %s is both freed and taken: %w", cl.ID(), custody.ErrInvalid), nil
			}
		}
		if c.claims.Get(claimKey(cl, coi)) != nil {
			return fmt.Errorf("chain %s holds claim %s already: %w", coi, cl.ID(), custody.ErrConflict), nil
		}
		if c.holds != nil && c.heldBy(cl, coi) {
			continue // the chain's offer holds the slot, counted already
		}
		cp, err := c.capacityOf(cl.Site)
		if err != nil {
			return nil, err
		}
		if err := custody.CheckClaim(cp, cl, c.count(slotKey(cl))); err != nil {
			return err, nil
		}
	}
	return nil, nil
}

// apply writes the checked claims and releases of the draft appended as
// record seq.
func (c *claimsTx) apply(d *custody.Draft, seq uint64) error {
	coi := d.Record.Chain
	for _, r := range d.Releases {
		if err := c.claims.Delete(claimKey(r, coi)); err != nil {
			return err
		}
		k := slotKey(r)
		if err := c.setCount(k, max(c.count(k)-1, 0)); err != nil {
			return err
		}
	}
	for _, cl := range d.Claims {
		if err := c.claims.Put(claimKey(cl, coi), u64(seq)); err != nil {
			return err
		}
		k := slotKey(cl)
		if c.holds != nil && c.heldBy(cl, coi) {
			// The hold becomes the claim: the count stays.
			if err := c.holds.Delete([]byte(coi)); err != nil {
				return err
			}
			continue
		}
		if err := c.setCount(k, c.count(k)+1); err != nil {
			return err
		}
	}
	return nil
}

// UpdateCapacity implements custody.ScheduleStore.
func (s *Store) UpdateCapacity(ctx context.Context, site string, fn func(old []byte) ([]byte, custody.AuditEntry, error)) error {
	if s.readOnly {
		return fmt.Errorf("capacity: store opened read-only: %w", custody.ErrClosed)
	}
	if site == "" {
		return fmt.Errorf("capacity: empty site: %w", custody.ErrInvalid)
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCapacity)
		v, a, err := fn(bytes.Clone(b.Get([]byte(site))))
		if err != nil {
			return err
		}
		if len(v) == 0 {
			return fmt.Errorf("capacity %s: empty value: %w", site, custody.ErrInvalid)
		}
		if err := b.Put([]byte(site), v); err != nil {
			return err
		}
		_, err = putAudit(tx, a)
		return err
	})
}

// Capacity implements custody.ScheduleStore.
func (s *Store) Capacity(ctx context.Context, site string) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketCapacity); b != nil {
			out = bytes.Clone(b.Get([]byte(site)))
		}
		if out == nil {
			return fmt.Errorf("site %s has no capacity defined: %w", site, custody.ErrNotFound)
		}
		return nil
	})
	return out, err
}

// SiteSlots implements custody.ScheduleStore: one cursor seek per site,
// then the counts of its days in order.
func (s *Store) SiteSlots(ctx context.Context, sites []string, after string, limit int, from, to string) ([]custody.SiteSlots, error) {
	out := []custody.SiteSlots{}
	err := s.view(func(tx *bolt.Tx) error {
		capB, used := tx.Bucket(bucketCapacity), tx.Bucket(bucketSlotUsed)
		if capB == nil || used == nil {
			return nil
		}
		read := func(site string, v []byte) {
			ss := custody.SiteSlots{Site: site, Capacity: bytes.Clone(v)}
			c := used.Cursor()
			prefix := append([]byte(site), 0)
			end := append(append(bytes.Clone(prefix), to...), 1)
			for k, n := c.Seek(append(bytes.Clone(prefix), from...)); k != nil && bytes.Compare(k, end) < 0; k, n = c.Next() {
				rest := k[len(prefix):]
				i := bytes.IndexByte(rest, 0)
				if i < 0 || len(n) != 4 {
					continue
				}
				ss.Uses = append(ss.Uses, custody.SlotUse{Date: string(rest[:i]), Product: string(rest[i+1:]), Used: int(binary.BigEndian.Uint32(n))})
			}
			out = append(out, ss)
		}
		if len(sites) > 0 {
			for _, site := range sites {
				if v := capB.Get([]byte(site)); v != nil {
					read(site, v)
				}
			}
			return nil
		}
		c := capB.Cursor()
		k, v := c.First()
		if after != "" {
			if k, v = c.Seek([]byte(after)); k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		for ; k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			read(string(k), v)
		}
		return nil
	})
	return out, err
}

// SiteClaims implements custody.ScheduleStore: one range of the claims
// bucket.
func (s *Store) SiteClaims(ctx context.Context, site, from, to string, limit int) ([]custody.HeldClaim, error) {
	out := []custody.HeldClaim{}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSlotClaims)
		if b == nil {
			return nil
		}
		prefix := append([]byte(site), 0)
		end := append(append(bytes.Clone(prefix), to...), 1)
		c := b.Cursor()
		for k, v := c.Seek(append(bytes.Clone(prefix), from...)); k != nil && bytes.Compare(k, end) < 0 && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			parts := bytes.SplitN(k[len(prefix):], []byte{0}, 3)
			if len(parts) != 3 || len(v) != 8 {
				return fmt.Errorf("claim %q of %s is malformed: %w", k, site, custody.ErrDamaged)
			}
			out = append(out, custody.HeldClaim{Claim: custody.Claim{Site: site, Date: string(parts[0]), Product: string(parts[1])},
				COI: custody.COI(parts[2]), Seq: binary.BigEndian.Uint64(v)})
		}
		return nil
	})
	return out, err
}

// scheduleBucketChecks returns the whole-file check's decoding of the
// scheduling buckets.
func scheduleBucketChecks() map[string]bucketCheck {
	return map[string]bucketCheck{
		string(bucketCapacity): {name: strName, entry: func(_ *bolt.Tx, k, v []byte) error {
			var c custody.Capacity
			if err := json.Unmarshal(v, &c); err != nil {
				return errors.New("the capacity is not a JSON object")
			}
			return nil
		}},
		// Each count is the number of claims and offers' holds under its
		// slot, and each claim and hold is counted.
		string(bucketSlotUsed): {name: strName, entry: func(tx *bolt.Tx, k, v []byte) error {
			if len(v) != 4 {
				return errors.New("the count is not 4 bytes")
			}
			n, prefix := 0, append(bytes.Clone(k), 0)
			if b := tx.Bucket(bucketSlotClaims); b != nil {
				c := b.Cursor()
				for ck, _ := c.Seek(prefix); ck != nil && bytes.HasPrefix(ck, prefix); ck, _ = c.Next() {
					n++
				}
			}
			if b := tx.Bucket(bucketSlotHolds); b != nil {
				// Holds are the open offers: few.
				if err := b.ForEach(func(_, hk []byte) error {
					if bytes.Equal(hk, k) {
						n++
					}
					return nil
				}); err != nil {
					return err
				}
			}
			if want := binary.BigEndian.Uint32(v); uint32(n) != want {
				return fmt.Errorf("the count says %d claims and holds and %d are held", want, n)
			}
			return nil
		}},
		string(bucketSlotHolds): {name: strName, entry: func(tx *bolt.Tx, _, v []byte) error {
			if b := tx.Bucket(bucketSlotUsed); b == nil || b.Get(v) == nil {
				return errors.New("the offer's hold is not counted")
			}
			return nil
		}},
		string(bucketSlotClaims): {name: strName, entry: func(tx *bolt.Tx, k, v []byte) error {
			if len(v) != 8 {
				return errors.New("the record position is not 8 bytes")
			}
			i := bytes.LastIndexByte(k, 0)
			if b := tx.Bucket(bucketSlotUsed); i < 0 || b == nil || b.Get(k[:i]) == nil {
				return errors.New("the claim is not counted")
			}
			return nil
		}},
	}
}
