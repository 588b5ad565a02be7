package custody

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// MaxGIAILen is the longest GS1 global individual asset identifier
// (application identifier 8004): 30 characters.
const MaxGIAILen = 30

// gs1CSet82 is the GS1 AI encodable character set 82, the characters a
// GIAI may hold.
const gs1CSet82 = `!"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz`

// ValidateGIAI checks a GS1 global individual asset identifier: 1 to 30
// characters of the GS1 AI encodable character set 82 (letters, digits and
// !"%&'()*+,-./:;<=>?_), beginning with the digits of the owner's GS1
// company prefix. A GIAI has no check digit.
func ValidateGIAI(giai string) error {
	if giai == "" || len(giai) > MaxGIAILen {
		return fmt.Errorf("giai %q must be 1-%d characters: %w", giai, MaxGIAILen, ErrInvalid)
	}
	for i := 0; i < len(giai); i++ {
		if !strings.ContainsRune(gs1CSet82, rune(giai[i])) {
			return fmt.Errorf("giai %q: character %q at %d is not in the GS1 AI encodable character set 82: %w", giai, giai[i], i, ErrInvalid)
		}
	}
	if giai[0] < '0' || giai[0] > '9' {
		return fmt.Errorf("giai %q must begin with its GS1 company prefix (digits): %w", giai, ErrInvalid)
	}
	return nil
}

// GS1IDs are the GS1 identifiers the registries give a chain's sites and
// shippers: site names (as the chain holds them) to GLNs, and shipper IDs
// to GIAIs. A name or ID with none is absent.
type GS1IDs struct {
	SiteGLN     map[string]string
	ShipperGIAI map[string]string
}

// ChainGS1IDs returns the GLNs of c's registered sites (its three sites,
// every record's site and every leg's ends) and the GIAIs of its legs'
// registered shippers. A chain from before the network gives empty maps.
func (s *Service) ChainGS1IDs(ctx context.Context, c *Chain) (GS1IDs, error) {
	out := GS1IDs{SiteGLN: map[string]string{}, ShipperGIAI: map[string]string{}}
	seen := map[string]bool{}
	site := func(name string) error {
		if name == "" || seen[name] {
			return nil
		}
		seen[name] = true
		st, ok, err := s.registeredSite(ctx, name)
		if err != nil {
			return err
		}
		if ok && st.GLN != "" {
			out.SiteGLN[name] = st.GLN
		}
		return nil
	}
	names := []string{c.Sites.Collection, c.Sites.Manufacturing, c.Sites.Treatment}
	for i := range c.Records {
		names = append(names, c.Records[i].Site)
	}
	shippers := map[string]bool{}
	for _, l := range c.Legs {
		names = append(names, l.From, l.To)
		shippers[l.Shipper] = true
	}
	for i := range c.Records {
		if d, ok := c.Records[i].Body().(ExcursionData); ok {
			shippers[d.Shipper] = true
		}
	}
	for _, n := range names {
		if err := site(n); err != nil {
			return GS1IDs{}, fmt.Errorf("gs1 ids: %w", err)
		}
	}
	for id := range shippers {
		if id == "" {
			continue
		}
		sh, err := readEntry[Shipper](ctx, s, KindShipper, id)
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case err != nil:
			return GS1IDs{}, fmt.Errorf("gs1 ids: shipper %s: %w", id, err)
		}
		if sh.GIAI != "" {
			out.ShipperGIAI[id] = sh.GIAI
		}
	}
	return out, nil
}
