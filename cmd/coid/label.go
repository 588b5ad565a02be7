package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"
	_ "time/tzdata" // --zone works without the host's zoneinfo

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/labels"
)

const labelUsage = `usage: coid label [--data DIR] --user ID [--format pdf|png|zpl] [--symbology qr|datamatrix|both]
                  [--zone ZONE] [--dpi N] [--width-mm MM] [--height-mm MM] [--size PX] [-o FILE] BAG_ID_OR_COI

Prints bag labels offline from the data directory, byte for byte as the API
does with the same options. The argument is a bag ID (CHA999926000001-FP-01),
a scanned label payload (C1:...), or a COI (with or without its check
character), which prints every bag of the chain, one label per page (pdf) or
one format per label (zpl). Output goes to stdout unless -o names a file
(created 0600: labels show the patient's name and date of birth).

--user names the person printing; the label rules apply to that user's role
(coordinator, nurse, manufacturing or qa) and each label is logged on stderr
with the user, never the patient. Like the other offline commands, the
command trusts whoever can open the data directory.

`

// runLabel is "coid label".
func runLabel(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	var s settings
	var userID, format, symbology, zone, out string
	var o labels.Options
	o.Stock = labels.DefaultStock
	fs := newFlags("label", env, stderr, &s)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), labelUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&userID, "user", getenv(env, "COID_USER"), "ID of the user printing (COID_USER)")
	fs.StringVar(&format, "format", "pdf", "output format: pdf, png (one bag's code alone) or zpl")
	fs.StringVar(&symbology, "symbology", "", "2-D code: qr, datamatrix or both (default: the site's registered label symbol, else qr)")
	fs.StringVar(&zone, "zone", or(getenv(env, "COID_LABEL_ZONE"), "UTC"), "default IANA time zone printed above UTC, for sites with no registered zone (COID_LABEL_ZONE)")
	fs.IntVar(&o.Stock.DPI, "dpi", o.Stock.DPI, "printer resolution, dots per inch (pdf, zpl)")
	fs.Float64Var(&o.Stock.WidthMM, "width-mm", o.Stock.WidthMM, "label stock width in mm (pdf, zpl)")
	fs.Float64Var(&o.Stock.HeightMM, "height-mm", o.Stock.HeightMM, "label stock height in mm (pdf, zpl)")
	fs.IntVar(&o.PNGSize, "size", labels.DefaultPNGSize, "PNG side in pixels (png)")
	fs.StringVar(&out, "o", "", "write to FILE instead of stdout")

	// Flags may come before or after the bag ID or COI.
	target, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(target) != 1 {
		fmt.Fprint(stderr, labelUsage)
		return usagef("label: give exactly one bag ID or COI, got %d", len(target))
	}
	if userID == "" {
		return usagef("label: --user (or COID_USER) must name the user printing the labels")
	}
	f, err := labels.ParseFormat(format)
	if err != nil {
		return usagef("label: --format %q: want pdf, png or zpl", format)
	}
	if o.Symbology, err = labels.ParseSymbology(symbology); err != nil {
		return usagef("label: --symbology %q: want qr, datamatrix or both", symbology)
	}
	o.FromSite = symbology == ""
	if o.Zone, err = parseZone("label", "zone", zone); err != nil {
		return err
	}
	if f == labels.FormatPNG {
		o.Stock = labels.Stock{} // not used
	}
	if err := o.Validate(); err != nil {
		return fmt.Errorf("label: %w", err)
	}
	code, err := custody.ParseCode(target[0])
	if err != nil {
		return fmt.Errorf("label: %q is not a bag ID or COI: %w", target[0], err)
	}
	if code.Bag == nil && f == labels.FormatPNG {
		return usagef("label: a PNG is one bag's code; give a bag ID, or --format pdf or zpl for every bag of %s", code.COI.Display())
	}

	svc, st, err := openOffline(s, stderr, true, time.Now)
	if err != nil {
		return fmt.Errorf("label: %w", err)
	}
	defer st.close()
	u, err := offlineUser(ctx, st.ledger, "label", userID)
	if err != nil {
		return err
	}
	var contents []custody.LabelContent
	if code.Bag != nil {
		lc, err := svc.LabelContent(ctx, u, *code.Bag)
		if err != nil {
			return err
		}
		contents = append(contents, lc)
	} else if contents, err = svc.ChainLabelContents(ctx, u, code.COI); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := labels.Render(&buf, f, contents, o); err != nil {
		return fmt.Errorf("label: %w", err)
	}
	return writeOutput("label", stdout, out, buf.Bytes())
}
