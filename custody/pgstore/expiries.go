package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/coid-project/coid/custody"
	"github.com/jackc/pgx/v5"
)

// The index of registry expiry dates (custody.QualificationExpiryIndex),
// the qualification_expiries table (migration 13).

var _ custody.QualificationExpiryIndex = (*Store)(nil)

// builtExpiries is the expiry index's name in index_builds.
const builtExpiries = "qualification_expiries"

// indexExpiries replaces, inside tx, the expiry rows of the registry
// entry of kind and code with those of value (nil: none).
func indexExpiries(ctx context.Context, tx pgx.Tx, kind custody.RegistryKind, code string, value []byte) error {
	if kind != custody.KindSite && kind != custody.KindShipper {
		return nil
	}
	list, err := custody.QualificationExpiriesOf(kind, value)
	if err != nil {
		return err
	}
	var b pgx.Batch
	b.Queue(`DELETE FROM qualification_expiries WHERE kind = $1 AND code = $2`, string(kind), code)
	for _, e := range list {
		b.Queue(`INSERT INTO qualification_expiries (date, kind, code, what, time_zone) VALUES ($1, $2, $3, $4, $5)`,
			e.Date, string(e.Kind), e.Code, e.What, e.TimeZone)
	}
	return tx.SendBatch(ctx, &b).Close()
}

// buildExpiryIndex makes the rows of the sites and shippers registered
// before the store kept the index (or imported since), in one
// transaction: the registries hold thousands of entries, not millions.
func (s *Store) buildExpiryIndex(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var built bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM index_builds WHERE name = $1)`, builtExpiries).Scan(&built); err != nil || built {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT kind, code, value FROM registry_entries WHERE kind = ANY($1) ORDER BY kind, code`,
			[]string{string(custody.KindSite), string(custody.KindShipper)})
		if err != nil {
			return err
		}
		type entry struct {
			kind, code string
			value      []byte
		}
		var all []entry
		for rows.Next() {
			var e entry
			if err := rows.Scan(&e.kind, &e.code, &e.value); err != nil {
				rows.Close()
				return err
			}
			all = append(all, e)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM qualification_expiries`); err != nil {
			return err
		}
		for _, e := range all {
			if err := indexExpiries(ctx, tx, custody.RegistryKind(e.kind), e.code, e.value); err != nil {
				return fmt.Errorf("%s %s: %w", e.kind, e.code, err)
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO index_builds (name) VALUES ($1) ON CONFLICT DO NOTHING`, builtExpiries)
		return err
	})
	if err != nil {
		return fmt.Errorf("build the expiry index: %w", err)
	}
	return nil
}

// QualificationExpiries implements custody.QualificationExpiryIndex: a
// range of the table's primary key.
func (s *Store) QualificationExpiries(ctx context.Context, until string, after custody.QualificationExpiry, limit int) ([]custody.QualificationExpiry, error) {
	if limit < 1 {
		return nil, fmt.Errorf("qualification expiries: limit %d must be 1 or more: %w", limit, custody.ErrInvalid)
	}
	out := []custody.QualificationExpiry{}
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var built bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM index_builds WHERE name = $1)`, builtExpiries).Scan(&built); err != nil {
			return err
		}
		if !built {
			return fmt.Errorf("qualification expiries: the index is not built yet: %w", errors.ErrUnsupported)
		}
		rows, err := tx.Query(ctx, `SELECT date, kind, code, what, time_zone FROM qualification_expiries
			WHERE (date, kind, code, what) > ($1, $2, $3, $4) AND date <= $5
			ORDER BY date, kind, code, what LIMIT $6`,
			after.Date, string(after.Kind), after.Code, after.What, until, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanExpiry)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("qualification expiries: %w", err)
	}
	return out, nil
}

func scanExpiry(row pgx.CollectableRow) (custody.QualificationExpiry, error) {
	var e custody.QualificationExpiry
	var kind string
	err := row.Scan(&e.Date, &kind, &e.Code, &e.What, &e.TimeZone)
	e.Kind = custody.RegistryKind(kind)
	return e, err
}

// checkExpiries compares the expiry index, once built, with the rows the
// sites and shippers registered give: a row missing, extra or different
// is an error wrapping custody.ErrChainBroken.
func checkExpiries(ctx context.Context, tx pgx.Tx) error {
	var built bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM index_builds WHERE name = $1)`, builtExpiries).Scan(&built); err != nil || !built {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT kind, code, value FROM registry_entries WHERE kind = ANY($1)`,
		[]string{string(custody.KindSite), string(custody.KindShipper)})
	if err != nil {
		return fmt.Errorf("check the expiry index: %w", err)
	}
	var want []custody.QualificationExpiry
	for rows.Next() {
		var kind, code string
		var value []byte
		if err := rows.Scan(&kind, &code, &value); err != nil {
			rows.Close()
			return fmt.Errorf("check the expiry index: %w", err)
		}
		list, err := custody.QualificationExpiriesOf(custody.RegistryKind(kind), value)
		if err != nil {
			rows.Close()
			return fmt.Errorf("check the expiry index: %s %s: %v: %w", kind, code, err, custody.ErrChainBroken)
		}
		want = append(want, list...)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check the expiry index: %w", err)
	}
	rows, err = tx.Query(ctx, `SELECT date, kind, code, what, time_zone FROM qualification_expiries`)
	if err != nil {
		return fmt.Errorf("check the expiry index: %w", err)
	}
	stored, err := pgx.CollectRows(rows, scanExpiry)
	if err != nil {
		return fmt.Errorf("check the expiry index: %w", err)
	}
	for _, e := range stored {
		i := slices.Index(want, e)
		if i < 0 {
			return fmt.Errorf("check the expiry index: %s %s's %s on %s (zone %q) is not in its registry entry: %w", e.Kind, e.Code, e.What, e.Date, e.TimeZone, custody.ErrChainBroken)
		}
		want = slices.Delete(want, i, i+1)
	}
	if len(want) > 0 {
		e := want[0]
		return fmt.Errorf("check the expiry index: %s %s's %s on %s is missing from the index: %w", e.Kind, e.Code, e.What, e.Date, custody.ErrChainBroken)
	}
	return nil
}
